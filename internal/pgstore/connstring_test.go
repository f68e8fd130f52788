package pgstore_test

import (
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/pgstore"
)

func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://j1ds@db:5432/j1ds?sslmode=require", "postgres://j1ds@db:5432/j1ds?sslmode=require"},
		{"postgres://j1ds:s3cret@db:5432/j1ds", "postgres://j1ds:xxxxx@db:5432/j1ds"},
		{"postgresql://j1ds@db/j1ds?password=s3cret&sslmode=disable", "postgresql://j1ds@db/j1ds?password=xxxxx&sslmode=disable"},
		{"postgres://j1ds@db/j1ds?sslpassword=s3cret", "postgres://j1ds@db/j1ds?sslpassword=xxxxx"},
		{"postgres://j1ds:s3cret@db:x/j1ds", "(a connection string that is not a postgres:// URL, not shown)"},
		{"host=db password=s3cret", "(a connection string that is not a postgres:// URL, not shown)"},
		{"mysql://j1ds:s3cret@db/j1ds", "(a connection string that is not a postgres:// URL, not shown)"},
	} {
		if got := pgstore.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	const u = "postgres://j1ds:p%40ss%20word@db/j1ds?sslpassword=k3y"
	got := pgstore.Redact("user j1ds, password p@ss word (p%40ss%20word), key k3y", u)
	if want := "user j1ds, password xxxxx (xxxxx), key xxxxx"; got != want {
		t.Errorf("Redact: %q, want %q", got, want)
	}
}

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://j1ds@db:5432/j1ds?sslmode=verify-full", ""},
		{"postgresql://j1ds:s3cret@db/j1ds", ""},
		{"mysql://j1ds:s3cret@db/j1ds", `the scheme is "mysql"`},
		{"host=db password=s3cret", `the scheme is ""`},
		{"postgres://j1ds:s3cret@db:x/j1ds", "not a URL: invalid port"},
		{"postgres://j1ds:s3cret@db/j1ds?sslmode=maybe", "sslmode is invalid"},
	} {
		err := pgstore.CheckURL(tt.in)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckURL(%q): %v", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckURL(%q): %v, want an error containing %q", tt.in, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("CheckURL(%q): %v shows the password", tt.in, err)
		}
	}
}
