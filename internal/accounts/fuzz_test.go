package accounts_test

// ValidateID is the only gate between a caller's account id and the S3
// keys, Pebble keys and file paths built from it. These tests pin it
// against an independent statement of the rule: a property test over ids
// holding each dangerous character, and a fuzz test (go test -fuzz
// FuzzValidateID) that compares it with a regexp.

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/j1ds/j1ds/internal/accounts"
)

// idRule is the account id rule, written independently of ValidateID.
var idRule = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// dangerous are the substrings no accepted id may hold: path and key
// separators, dot segments, the S3 key's '=' and Hadoop's ':', NUL,
// blanks and control characters, and non-ASCII letters that look like
// ASCII ones.
var dangerous = []string{"/", "\\", "..", ".", ":", "=", "\x00", " ", "\t", "\n", "\r", "\x7f", "%", "é", "а", "\u200b", "\ufeff"}

func checkID(t *testing.T, id string) {
	t.Helper()
	err := accounts.ValidateID(id)
	if want := idRule.MatchString(id); (err == nil) != want {
		t.Fatalf("ValidateID(%q) = %v; the rule says accepted=%v", id, err, want)
	}
	if err == nil {
		for _, d := range dangerous {
			if strings.Contains(id, d) {
				t.Fatalf("ValidateID accepted %q, which holds %q", id, d)
			}
		}
		for i := 0; i < len(id); i++ {
			if id[i] >= utf8.RuneSelf || id[i] < 0x21 {
				t.Fatalf("ValidateID accepted %q, which holds byte %#x", id, id[i])
			}
		}
		return
	}
	// The error names the field and quotes a bounded, printable value.
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid account id ") || len(msg) > 400 || !utf8.ValidString(msg) || strings.ContainsAny(msg, "\x00\n\r") {
		t.Fatalf("ValidateID(%q): error message %q", id, msg)
	}
}

func TestValidateIDRejectsEscapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcXYZ019-_"
	for range 5000 {
		// A valid-looking id with one dangerous substring at a random place.
		n := 1 + rng.IntN(20)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		d := dangerous[rng.IntN(len(dangerous))]
		at := rng.IntN(n + 1)
		id := string(b[:at]) + d + string(b[at:])
		if err := accounts.ValidateID(id); err == nil {
			t.Fatalf("ValidateID accepted %q (holds %q)", id, d)
		}
		checkID(t, id)
		checkID(t, string(b))
	}
	for _, id := range []string{"", "-a", "_a", strings.Repeat("a", 65), "a/../b", "accountId=x", "a%2fb", "..", "a..b", "A", strings.Repeat("z", 64), "0-_"} {
		checkID(t, id)
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"acme", "a", "A-b_9", "../x", "a/b", "a:b", "a=b", "a\x00b", "a b", "é", strings.Repeat("a", 64), strings.Repeat("a", 65), "-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) { checkID(t, id) })
}
