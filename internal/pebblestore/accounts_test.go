package pebblestore_test

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

func openAccountsStore(t *testing.T, dir string, o pebblestore.Options) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// withRawDB opens the closed store in dir as a bare Pebble database.
func withRawDB(t *testing.T, dir string, fn func(db *pebble.DB)) {
	t.Helper()
	o := pebblestore.PebbleOptions()
	o.Logger = testLogger{t}
	db, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	fn(db)
}

// testLogger keeps the engine's chatter out of the test output unless
// something goes wrong.
type testLogger struct{ t *testing.T }

func (testLogger) Infof(string, ...any)                {}
func (l testLogger) Errorf(format string, args ...any) { l.t.Errorf(format, args...) }
func (l testLogger) Fatalf(format string, args ...any) { l.t.Fatalf(format, args...) }

// TestAccountsLayout pins the records of an account and a key, byte for
// byte, and that the secret is stored only hashed.
func TestAccountsLayout(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := openAccountsStore(t, dir, pebblestore.Options{Now: func() time.Time { return at }})
	a := s.Accounts()
	if _, err := a.CreateAccount("acme", []string{accounts.EntitlementDataStreaming}); err != nil {
		t.Fatal(err)
	}
	secret, k, err := a.CreateKey("acme", accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	sum := accounts.HashSecret(secret)
	var got strings.Builder
	withRawDB(t, dir, func(db *pebble.DB) {
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		// Neither the secret nor its random part is stored anywhere.
		body := []byte(strings.TrimPrefix(secret, accounts.SecretPrefix))
		for it.First(); it.Valid(); it.Next() {
			if bytes.Contains(it.Key(), body) || bytes.Contains(it.Value(), body) {
				t.Errorf("secret stored in %q", it.Key())
			}
			if c := it.Key()[0]; c != 'A' && c != 'K' {
				continue
			}
			show := func(b []byte) []byte {
				b = bytes.ReplaceAll(b, sum[:], []byte("<sha256(secret)>"))
				return bytes.ReplaceAll(b, []byte(k.ID), []byte("<key id>"))
			}
			fmt.Fprintf(&got, "%s -> %s\n", show(it.Key()), show(it.Value()))
		}
		if err := it.Error(); err != nil {
			t.Fatal(err)
		}
	})
	want := `Aacme -> {"id":"acme","entitlements":["data-streaming"],"createdAt":"2026-01-02T03:04:05Z"}
Kh<sha256(secret)> -> {"id":"<key id>","accountId":"acme","role":"admin","createdAt":"2026-01-02T03:04:05Z"}
Kiacme/<key id> -> <sha256(secret)>
`
	if got.String() != want {
		t.Errorf("records:\n%s\nwant:\n%s", got.String(), want)
	}
}

func TestAccountsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := openAccountsStore(t, dir, pebblestore.Options{})
	created, err := s.Accounts().CreateAccount("acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	secret, k, err := s.Accounts().CreateKey("acme", accounts.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	a := openAccountsStore(t, dir, pebblestore.Options{}).Accounts()
	if got, err := a.Account("acme"); err != nil || !reflect.DeepEqual(got, created) {
		t.Errorf("after reopen: Account = %+v, %v; want %+v", got, err, created)
	}
	if got, err := a.Authenticate(secret); err != nil || !reflect.DeepEqual(got, k) {
		t.Errorf("after reopen: Authenticate = %+v, %v; want %+v", got, err, k)
	}
}

// TestAccountsLeaveOtherKeysAlone surrounds the 'A' and 'K' families with
// keys of other families and checks they are neither listed nor changed.
func TestAccountsLeaveOtherKeysAlone(t *testing.T) {
	dir := t.TempDir()
	foreign := map[string]string{"@": "x", "@acme": "u", "B": "y", "Bacme": "v", "J": "z", "L": "w"}
	withRawDB(t, dir, func(db *pebble.DB) {
		for k, v := range foreign {
			if err := db.Set([]byte(k), []byte(v), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
	})
	s := openAccountsStore(t, dir, pebblestore.Options{})
	a := s.Accounts()
	if _, err := a.CreateAccount("acme", nil); err != nil {
		t.Fatal(err)
	}
	if list, err := a.Accounts(); err != nil || len(list) != 1 {
		t.Errorf("Accounts() = %+v, %v; want only acme", list, err)
	}
	_, k, err := a.CreateKey("acme", accounts.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeKey("acme", k.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	withRawDB(t, dir, func(db *pebble.DB) {
		for k, v := range foreign {
			got, closer, err := db.Get([]byte(k))
			if err != nil || string(got) != v {
				t.Errorf("foreign key %q = %q, %v", k, got, err)
			}
			if err == nil {
				closer.Close()
			}
		}
	})
}
