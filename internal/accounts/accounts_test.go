package accounts_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/j1ds/j1ds/internal/accounts"
)

func openDB(t *testing.T, dir string) *pebble.DB {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	return db
}

func newStore(t *testing.T) (*accounts.Store, *pebble.DB) {
	t.Helper()
	db := openDB(t, t.TempDir())
	t.Cleanup(func() { db.Close() })
	return accounts.New(db), db
}

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

func TestAccounts(t *testing.T) {
	s, _ := newStore(t)
	ds := accounts.EntitlementDataStreaming

	b, err := s.CreateAccount("beta", []string{ds, ds})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Entitlements, []string{ds}) || !b.Entitled(ds) {
		t.Errorf("entitlements not deduplicated: %v", b.Entitlements)
	}
	a, err := s.CreateAccount("alpha", nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Entitlements == nil || a.Entitled(ds) {
		t.Errorf("alpha entitlements = %#v, want empty non-nil", a.Entitlements)
	}
	got, err := s.Account("beta")
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Errorf("Account(beta) = %+v, %v; want %+v", got, err, b)
	}
	list, err := s.Accounts()
	if err != nil || !reflect.DeepEqual(list, []accounts.Account{a, b}) {
		t.Errorf("Accounts() = %+v, %v; want [alpha beta]", list, err)
	}

	if _, err := s.CreateAccount("alpha", nil); !errors.Is(err, accounts.ErrAccountExists) {
		t.Errorf("duplicate create: %v, want ErrAccountExists", err)
	}
	if _, err := s.Account("nope"); !errors.Is(err, accounts.ErrAccountNotFound) ||
		!strings.Contains(err.Error(), "create it with the operator API") {
		t.Errorf("Account(nope) = %v, want ErrAccountNotFound", err)
	}

	var ve *accounts.ValidationError
	_, err = s.CreateAccount("gamma", []string{ds, "time-travel"})
	if !errors.As(err, &ve) || ve.Field != "entitlements" || ve.Value != "time-travel" ||
		!strings.Contains(err.Error(), ds) {
		t.Errorf("unknown entitlement: %v", err)
	}
	if _, err := s.Account("gamma"); !errors.Is(err, accounts.ErrAccountNotFound) {
		t.Errorf("account created despite bad entitlement: %v", err)
	}
	if _, err := s.CreateAccount("a/b", nil); !errors.As(err, &ve) {
		t.Errorf("bad id: %v", err)
	}

	a, err = s.SetEntitlements("alpha", []string{ds})
	if err != nil || !a.Entitled(ds) {
		t.Fatalf("SetEntitlements = %+v, %v", a, err)
	}
	if got, _ := s.Account("alpha"); !got.Entitled(ds) {
		t.Errorf("SetEntitlements not persisted: %+v", got)
	}
	if _, err := s.SetEntitlements("nope", nil); !errors.Is(err, accounts.ErrAccountNotFound) {
		t.Errorf("SetEntitlements(nope) = %v", err)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	db := openDB(t, dir)
	s := accounts.New(db)
	if _, err := s.CreateAccount("acme", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateAccount("acme2", nil); err != nil {
		t.Fatal(err)
	}

	if _, _, err := s.CreateKey("nope", accounts.RoleAdmin); !errors.Is(err, accounts.ErrAccountNotFound) {
		t.Errorf("CreateKey(nope) = %v, want ErrAccountNotFound", err)
	}
	var ve *accounts.ValidationError
	if _, _, err := s.CreateKey("acme", "owner"); !errors.As(err, &ve) || ve.Field != "role" {
		t.Errorf("CreateKey(bad role) = %v, want role ValidationError", err)
	}

	adminSecret, admin, err := s.CreateKey("acme", accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	memberSecret, member, err := s.CreateKey("acme", accounts.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	otherSecret, other, err := s.CreateKey("acme2", accounts.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(adminSecret, "j1ds_") || len(adminSecret) != 5+43 {
		t.Errorf("secret %q: want j1ds_ + 43 chars", adminSecret)
	}
	if len(admin.ID) != 12 || strings.Contains(adminSecret, admin.ID) {
		t.Errorf("key id %q: want 12 hex chars unrelated to the secret", admin.ID)
	}

	for secret, want := range map[string]accounts.Key{adminSecret: admin, memberSecret: member, otherSecret: other} {
		if got, err := s.Authenticate(secret); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Authenticate = %+v, %v; want %+v", got, err, want)
		}
	}
	for _, bad := range []string{"", "j1ds_", adminSecret[:len(adminSecret)-1], adminSecret + "x",
		"x" + adminSecret, strings.Repeat("j1ds_", 1000), "j1ds_" + strings.Repeat("A", 43)} {
		_, err := s.Authenticate(bad)
		if !errors.Is(err, accounts.ErrUnknownKey) {
			t.Errorf("Authenticate(%.20q) = %v, want ErrUnknownKey", bad, err)
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}

	keys, err := s.Keys("acme")
	if err != nil || !reflect.DeepEqual(keys, []accounts.Key{admin, member}) {
		t.Errorf("Keys(acme) = %+v, %v", keys, err)
	}

	// Keys survive close and reopen.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	t.Cleanup(func() { db.Close() })
	s = accounts.New(db)
	if got, err := s.Authenticate(adminSecret); err != nil || !reflect.DeepEqual(got, admin) {
		t.Errorf("after reopen: Authenticate = %+v, %v", got, err)
	}

	for _, tc := range []struct{ account, id string }{
		{"acme2", admin.ID}, // another account's key
		{"acme", "000000000000"},
		{"acme", ""},
		{"acme", admin.ID + "/x"},
		{"nope", admin.ID},
	} {
		if err := s.RevokeKey(tc.account, tc.id); !errors.Is(err, accounts.ErrKeyNotFound) {
			t.Errorf("RevokeKey(%q, %q) = %v, want ErrKeyNotFound", tc.account, tc.id, err)
		}
	}
	if err := s.RevokeKey("acme", admin.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(adminSecret); !errors.Is(err, accounts.ErrUnknownKey) {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if err := s.RevokeKey("acme", admin.ID); !errors.Is(err, accounts.ErrKeyNotFound) {
		t.Errorf("second revoke = %v, want ErrKeyNotFound", err)
	}
	if keys, err := s.Keys("acme"); err != nil || !reflect.DeepEqual(keys, []accounts.Key{member}) {
		t.Errorf("Keys(acme) after revoke = %+v, %v", keys, err)
	}
	if keys, err := s.Keys("acme2"); err != nil || !reflect.DeepEqual(keys, []accounts.Key{other}) {
		t.Errorf("Keys(acme2) = %+v, %v", keys, err)
	}
	if _, err := s.Keys("nope"); !errors.Is(err, accounts.ErrAccountNotFound) {
		t.Errorf("Keys(nope) = %v, want ErrAccountNotFound", err)
	}
}

func TestSecretNeverStored(t *testing.T) {
	s, db := newStore(t)
	if _, err := s.CreateAccount("acme", nil); err != nil {
		t.Fatal(err)
	}
	secret, _, err := s.CreateKey("acme", accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	// The random part alone must not appear either.
	body := []byte(strings.TrimPrefix(secret, "j1ds_"))
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
		if k := it.Key(); k[0] != 'A' && k[0] != 'K' {
			t.Errorf("key outside the package's prefixes: %q", k)
		}
		if bytes.Contains(it.Key(), body) || bytes.Contains(it.Value(), body) {
			t.Errorf("secret stored in %q", it.Key())
		}
	}
	if n != 3 { // account, key record, key index
		t.Errorf("scanned %d records, want 3", n)
	}
}

func TestOtherKeysUntouched(t *testing.T) {
	s, db := newStore(t)
	foreign := map[string]string{"@": "x", "B": "y", "J": "z", "L": "w", "Bacme": "v"}
	for k, v := range foreign {
		if err := db.Set([]byte(k), []byte(v), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateAccount("acme", nil); err != nil {
		t.Fatal(err)
	}
	if list, err := s.Accounts(); err != nil || len(list) != 1 {
		t.Errorf("Accounts() = %+v, %v; want only acme", list, err)
	}
	_, k, err := s.CreateKey("acme", accounts.RoleMember)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey("acme", k.ID); err != nil {
		t.Fatal(err)
	}
	for k, v := range foreign {
		got, closer, err := db.Get([]byte(k))
		if err != nil || string(got) != v {
			t.Errorf("foreign key %q = %q, %v", k, got, err)
		}
		if err == nil {
			closer.Close()
		}
	}
}

func TestConcurrentCreateAccount(t *testing.T) {
	s, _ := newStore(t)
	const n = 16
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = s.CreateAccount("race", nil) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, accounts.ErrAccountExists):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent creates succeeded, want exactly 1", ok, n)
	}
}
