package accounts_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/accounts"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"j1dev", true},
		{"J1Dev", true},
		{"0", true},
		{"a_b-c", true},
		{"5b5d7f1e-8f4e-4f3a-9c1a-2d3e4f5a6b7c", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{"a/b", false},
		{"../x", false},
		{"..", false},
		{"a.b", false},
		{"a:b", false},
		{"a b", false},
		{"a\tb", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"ü", false},
		{"aü", false},
		{strings.Repeat("a", 65), false},
		{"acct=1", false},
		{"-x", false},
		{"_x", false},
		{"a\\b", false},
	} {
		err := accounts.ValidateID(tc.id)
		if tc.ok {
			if err != nil {
				t.Errorf("ValidateID(%q) = %v, want nil", tc.id, err)
			}
			continue
		}
		var ve *accounts.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("ValidateID(%q) = %v, want *ValidationError", tc.id, err)
			continue
		}
		if ve.Field != "account id" || ve.Value != tc.id {
			t.Errorf("ValidateID(%q): field %q value %q", tc.id, ve.Field, ve.Value)
		}
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := accounts.ValidateID("a/b")
	want := `invalid account id "a/b": use 1-64 letters, digits, '-' or '_', starting with a letter or digit`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	long := accounts.ValidateID(strings.Repeat("x", 1000)).Error()
	if !strings.Contains(long, `"`+strings.Repeat("x", 64)+`"...`) || strings.Contains(long, strings.Repeat("x", 65)) {
		t.Errorf("long value not truncated to 64 chars: %s", long)
	}
}

func TestNormalizeEntitlements(t *testing.T) {
	ds := accounts.EntitlementDataStreaming
	for _, tc := range []struct {
		in   []string
		want []string
		bad  string // the rejected value, when one is
	}{
		{in: nil, want: []string{}},
		{in: []string{}, want: []string{}},
		{in: []string{ds}, want: []string{ds}},
		{in: []string{ds, ds}, want: []string{ds}},
		{in: []string{ds, "time-travel"}, bad: "time-travel"},
		{in: []string{""}, bad: ""},
		{in: []string{"Data-Streaming"}, bad: "Data-Streaming"},
	} {
		got, err := accounts.NormalizeEntitlements(tc.in)
		if tc.want != nil {
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("NormalizeEntitlements(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
			}
			continue
		}
		var ve *accounts.ValidationError
		if !errors.As(err, &ve) || ve.Field != "entitlements" || ve.Value != tc.bad || !strings.Contains(err.Error(), ds) {
			t.Errorf("NormalizeEntitlements(%q) = %v; want a ValidationError naming %q and listing %s", tc.in, err, tc.bad, ds)
		}
	}
}

func TestValidateRole(t *testing.T) {
	for _, tc := range []struct {
		role accounts.Role
		ok   bool
	}{
		{accounts.RoleAdmin, true},
		{accounts.RoleMember, true},
		{"owner", false},
		{"", false},
		{"Admin", false},
	} {
		err := accounts.ValidateRole(tc.role)
		var ve *accounts.ValidationError
		if tc.ok && err != nil || !tc.ok && (!errors.As(err, &ve) || ve.Field != "role") {
			t.Errorf("ValidateRole(%q) = %v, want ok=%v", tc.role, err, tc.ok)
		}
	}
}

func TestSecretFormat(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := accounts.NewSecret()
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, "j1ds_"))
		if !strings.HasPrefix(s, "j1ds_") || len(s) != 5+43 || err != nil || len(raw) != 32 {
			t.Fatalf("secret %q: want j1ds_ + 43 base64url chars of 32 bytes", s)
		}
		if !accounts.PlausibleSecret(s) {
			t.Errorf("PlausibleSecret(%q) = false", s)
		}
		if seen[s] {
			t.Fatalf("secret %q drawn twice", s)
		}
		seen[s] = true
		if got, want := accounts.HashSecret(s), sha256.Sum256([]byte(s)); got != want {
			t.Errorf("HashSecret(%q) = %x, want SHA-256 %x", s, got, want)
		}
	}
	for _, s := range []string{"", "j1ds", "J1DS_x", "x" + accounts.NewSecret(), "j1ds_" + strings.Repeat("A", 252)} {
		if accounts.PlausibleSecret(s) {
			t.Errorf("PlausibleSecret(%.20q) = true", s)
		}
	}
	if !accounts.PlausibleSecret("j1ds_" + strings.Repeat("A", 251)) {
		t.Error("PlausibleSecret rejects a 256-byte secret")
	}
}

func TestKeyID(t *testing.T) {
	for range 100 {
		id := accounts.NewKeyID()
		if len(id) != 12 || strings.Trim(id, "0123456789abcdef") != "" || !accounts.ValidKeyID(id) {
			t.Fatalf("key id %q: want 12 lowercase hex chars", id)
		}
	}
	for _, id := range []string{"", "00000000000", "0000000000000", "00000000000g", "0000000000/x", "j1ds_0000000"} {
		if accounts.ValidKeyID(id) {
			t.Errorf("ValidKeyID(%q) = true", id)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		is   error
		want string
	}{
		{accounts.AccountExistsError("acme"), accounts.ErrAccountExists,
			`account "acme" already exists: choose another id or change its entitlements instead`},
		{accounts.AccountNotFoundError("acme"), accounts.ErrAccountNotFound,
			`account "acme" not found: create it with the operator API first`},
		{accounts.UnknownKeyError(), accounts.ErrUnknownKey,
			`unknown API key: check it was copied in full, or create a new key`},
		{accounts.KeyNotFoundError("acme", "0123456789ab"), accounts.ErrKeyNotFound,
			`API key "0123456789ab" not found for account "acme": list the account's keys to find its id`},
		{accounts.KeyNotFoundError("acme", strings.Repeat("x", 100)), accounts.ErrKeyNotFound,
			`API key "` + strings.Repeat("x", 64) + `"... not found for account "acme": list the account's keys to find its id`},
		{accounts.KeyNotFoundError("acme", "j1ds_secret"), accounts.ErrKeyNotFound,
			`API key not found for account "acme": the key id given looks like an API key secret; give the key's 12-character id, never its secret`},
	} {
		if !errors.Is(tc.err, tc.is) || tc.err.Error() != tc.want {
			t.Errorf("got %v, want %q matching %v", tc.err, tc.want, tc.is)
		}
	}
}
