// Package accountstest checks that an implementation of accounts.Store
// keeps the contract its doc comments state. A backend runs it from its
// own tests:
//
//	func TestAccounts(t *testing.T) {
//		accountstest.Run(t, func(t *testing.T) accounts.Store { ... })
//	}
//
// What the contract cannot observe through the interface (that secrets are
// stored only hashed, that records survive a restart) each backend tests
// itself.
package accountstest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/j1ds/j1ds/internal/accounts"
)

const ds = accounts.EntitlementDataStreaming

// Run runs the suite. open returns an empty store that stays usable until
// the test given to it ends.
func Run(t *testing.T, open func(t *testing.T) accounts.Store) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, accounts.Store)
	}{
		{"CreateAndList", testCreateAndList},
		{"CreateRejects", testCreateRejects},
		{"AccountRejects", testAccountRejects},
		{"SetEntitlements", testSetEntitlements},
		{"SetEntitlementsRejects", testSetEntitlementsRejects},
		{"CreateKeyAndAuthenticate", testCreateKeyAndAuthenticate},
		{"CreateKeyRejects", testCreateKeyRejects},
		{"AuthenticateRejects", testAuthenticateRejects},
		{"RevokeKey", testRevokeKey},
		{"RevokeKeyRejects", testRevokeKeyRejects},
		{"KeysOfOneAccountInvisibleToAnother", testKeysIsolated},
		{"ConcurrentCreateAccount", testConcurrentCreateAccount},
		{"ConcurrentCreateKey", testConcurrentCreateKey},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

func create(t *testing.T, s accounts.Store, id string, entitlements ...string) accounts.Account {
	t.Helper()
	a, err := s.CreateAccount(id, entitlements)
	if err != nil {
		t.Fatalf("CreateAccount(%q): %v", id, err)
	}
	return a
}

func createKey(t *testing.T, s accounts.Store, account string, role accounts.Role) (string, accounts.Key) {
	t.Helper()
	secret, k, err := s.CreateKey(account, role)
	if err != nil {
		t.Fatalf("CreateKey(%q, %q): %v", account, role, err)
	}
	return secret, k
}

// sorted returns keys in the order Keys promises.
func sorted(keys ...accounts.Key) []accounts.Key {
	keys = slices.Clone(keys)
	accounts.SortKeys(keys)
	return keys
}

// checkErr fails unless err matches is (with errors.Is) or, when is is
// nil, is a *accounts.ValidationError of field.
func checkErr(t *testing.T, what string, err, is error, field string) {
	t.Helper()
	if is != nil {
		if !errors.Is(err, is) {
			t.Errorf("%s = %v, want %v", what, err, is)
		}
		return
	}
	var ve *accounts.ValidationError
	if !errors.As(err, &ve) || ve.Field != field {
		t.Errorf("%s = %v, want a ValidationError of %s", what, err, field)
	}
}

func testCreateAndList(t *testing.T, s accounts.Store) {
	if list, err := s.Accounts(); err != nil || len(list) != 0 {
		t.Errorf("Accounts() of an empty store = %+v, %v", list, err)
	}
	b := create(t, s, "beta", ds, ds)
	if !reflect.DeepEqual(b.Entitlements, []string{ds}) || !b.Entitled(ds) {
		t.Errorf("entitlements not deduplicated: %v", b.Entitlements)
	}
	if b.ID != "beta" || b.CreatedAt.IsZero() {
		t.Errorf("created %+v, want id beta and a creation time", b)
	}
	a := create(t, s, "alpha")
	if a.Entitlements == nil || a.Entitled(ds) {
		t.Errorf("alpha entitlements = %#v, want empty non-nil", a.Entitlements)
	}
	for _, want := range []accounts.Account{a, b} {
		if got, err := s.Account(want.ID); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Account(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	if list, err := s.Accounts(); err != nil || !reflect.DeepEqual(list, []accounts.Account{a, b}) {
		t.Errorf("Accounts() = %+v, %v; want [alpha beta]", list, err)
	}
	if keys, err := s.Keys("alpha"); err != nil || len(keys) != 0 {
		t.Errorf("Keys of a new account = %+v, %v; want none", keys, err)
	}
}

func testCreateRejects(t *testing.T, s accounts.Store) {
	existing := create(t, s, "alpha", ds)
	for _, tc := range []struct {
		id           string
		entitlements []string
		is           error  // the error matched, or
		field        string // the field of the ValidationError
	}{
		{id: "alpha", is: accounts.ErrAccountExists},
		{id: "alpha", entitlements: []string{ds}, is: accounts.ErrAccountExists},
		{id: "gamma", entitlements: []string{ds, "time-travel"}, field: "entitlements"},
		{id: "a/b", field: "account id"},
		{id: "", field: "account id"},
		{id: strings.Repeat("a", 65), field: "account id"},
	} {
		_, err := s.CreateAccount(tc.id, tc.entitlements)
		checkErr(t, fmt.Sprintf("CreateAccount(%.20q, %q)", tc.id, tc.entitlements), err, tc.is, tc.field)
	}
	// Nothing was created or changed.
	if list, err := s.Accounts(); err != nil || !reflect.DeepEqual(list, []accounts.Account{existing}) {
		t.Errorf("Accounts() after rejected creates = %+v, %v; want only %+v", list, err, existing)
	}
}

func testAccountRejects(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	_, err := s.Account("nope")
	checkErr(t, "Account(nope)", err, accounts.ErrAccountNotFound, "")
	if err != nil && !strings.Contains(err.Error(), "create it with the operator API") {
		t.Errorf("Account(nope) = %v, want a message saying what to do", err)
	}
	for _, id := range []string{"a/b", "", "acme/", "ACME\x00"} {
		_, err := s.Account(id)
		checkErr(t, fmt.Sprintf("Account(%q)", id), err, nil, "account id")
	}
}

func testSetEntitlements(t *testing.T, s accounts.Store) {
	created := create(t, s, "alpha")
	for _, es := range [][]string{{ds}, {ds, ds}, nil, {}, {ds}} {
		a, err := s.SetEntitlements("alpha", es)
		want := created
		want.Entitlements = []string{}
		if len(es) > 0 {
			want.Entitlements = []string{ds}
		}
		if err != nil || !reflect.DeepEqual(a, want) {
			t.Errorf("SetEntitlements(alpha, %q) = %+v, %v; want %+v", es, a, err, want)
		}
		if got, err := s.Account("alpha"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("after SetEntitlements(alpha, %q): Account = %+v, %v; want %+v", es, got, err, want)
		}
	}
}

func testSetEntitlementsRejects(t *testing.T, s accounts.Store) {
	alpha := create(t, s, "alpha", ds)
	for _, tc := range []struct {
		id           string
		entitlements []string
		is           error
		field        string
	}{
		{id: "nope", is: accounts.ErrAccountNotFound},
		{id: "nope", entitlements: []string{ds}, is: accounts.ErrAccountNotFound},
		{id: "alpha", entitlements: []string{"time-travel"}, field: "entitlements"},
		{id: "a/b", field: "account id"},
	} {
		_, err := s.SetEntitlements(tc.id, tc.entitlements)
		checkErr(t, fmt.Sprintf("SetEntitlements(%q, %q)", tc.id, tc.entitlements), err, tc.is, tc.field)
	}
	if list, err := s.Accounts(); err != nil || !reflect.DeepEqual(list, []accounts.Account{alpha}) {
		t.Errorf("Accounts() after rejected updates = %+v, %v; want only %+v", list, err, alpha)
	}
}

func testCreateKeyAndAuthenticate(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	adminSecret, admin := createKey(t, s, "acme", accounts.RoleAdmin)
	memberSecret, member := createKey(t, s, "acme", accounts.RoleMember)

	for _, k := range []accounts.Key{admin, member} {
		if k.Account != "acme" || k.CreatedAt.IsZero() || !accounts.ValidKeyID(k.ID) {
			t.Errorf("key %+v: want account acme, a creation time and a 12-hex-char id", k)
		}
	}
	if admin.Role != accounts.RoleAdmin || member.Role != accounts.RoleMember || admin.ID == member.ID {
		t.Errorf("keys %+v and %+v: want roles admin, member and distinct ids", admin, member)
	}
	for _, secret := range []string{adminSecret, memberSecret} {
		if !strings.HasPrefix(secret, accounts.SecretPrefix) || len(secret) != 5+43 {
			t.Errorf("secret %q: want j1ds_ + 43 chars", secret)
		}
	}
	if adminSecret == memberSecret || strings.Contains(adminSecret, admin.ID) {
		t.Errorf("secrets must differ and hold no key id: %q (id %s), %q", adminSecret, admin.ID, memberSecret)
	}
	for secret, want := range map[string]accounts.Key{adminSecret: admin, memberSecret: member} {
		if got, err := s.Authenticate(secret); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Authenticate = %+v, %v; want %+v", got, err, want)
		}
	}
	if keys, err := s.Keys("acme"); err != nil || !reflect.DeepEqual(keys, sorted(admin, member)) {
		t.Errorf("Keys(acme) = %+v, %v; want %+v", keys, err, sorted(admin, member))
	}
}

func testCreateKeyRejects(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	for _, tc := range []struct {
		account string
		role    accounts.Role
		is      error
		field   string
	}{
		{account: "nope", role: accounts.RoleAdmin, is: accounts.ErrAccountNotFound},
		{account: "acme", role: "owner", field: "role"},
		{account: "acme", role: "", field: "role"},
		{account: "a/b", role: accounts.RoleMember, field: "account id"},
	} {
		_, _, err := s.CreateKey(tc.account, tc.role)
		checkErr(t, fmt.Sprintf("CreateKey(%q, %q)", tc.account, tc.role), err, tc.is, tc.field)
	}
	if keys, err := s.Keys("acme"); err != nil || len(keys) != 0 {
		t.Errorf("Keys(acme) after rejected creates = %+v, %v; want none", keys, err)
	}
}

func testAuthenticateRejects(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	secret, _ := createKey(t, s, "acme", accounts.RoleAdmin)
	for _, bad := range []string{
		"",
		"j1ds_",
		secret[:len(secret)-1],
		secret + "x",
		"x" + secret,
		strings.ToUpper(secret),
		strings.Repeat("j1ds_", 1000),
		"j1ds_" + strings.Repeat("A", 43),
		accounts.NewSecret(), // well formed, never issued
	} {
		_, err := s.Authenticate(bad)
		if !errors.Is(err, accounts.ErrUnknownKey) {
			t.Errorf("Authenticate(%.20q) = %v, want ErrUnknownKey", bad, err)
		}
		if bad != "" && err != nil && strings.Contains(err.Error(), bad) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
}

func testRevokeKey(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	adminSecret, admin := createKey(t, s, "acme", accounts.RoleAdmin)
	memberSecret, member := createKey(t, s, "acme", accounts.RoleMember)

	if err := s.RevokeKey("acme", admin.ID); err != nil {
		t.Fatalf("RevokeKey(acme, %s): %v", admin.ID, err)
	}
	if _, err := s.Authenticate(adminSecret); !errors.Is(err, accounts.ErrUnknownKey) {
		t.Errorf("revoked key authenticates: %v", err)
	}
	if err := s.RevokeKey("acme", admin.ID); !errors.Is(err, accounts.ErrKeyNotFound) {
		t.Errorf("second revoke = %v, want ErrKeyNotFound", err)
	}
	if keys, err := s.Keys("acme"); err != nil || !reflect.DeepEqual(keys, []accounts.Key{member}) {
		t.Errorf("Keys(acme) after revoke = %+v, %v; want %+v", keys, err, member)
	}
	if got, err := s.Authenticate(memberSecret); err != nil || !reflect.DeepEqual(got, member) {
		t.Errorf("the other key after revoke: Authenticate = %+v, %v; want %+v", got, err, member)
	}
}

func testRevokeKeyRejects(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	secret, k := createKey(t, s, "acme", accounts.RoleAdmin)
	for _, tc := range []struct {
		account, id string
		is          error
		field       string
	}{
		{account: "acme", id: "000000000000", is: accounts.ErrKeyNotFound},
		{account: "acme", id: "", is: accounts.ErrKeyNotFound},
		{account: "acme", id: k.ID + "/x", is: accounts.ErrKeyNotFound},
		{account: "acme", id: k.ID[:len(k.ID)-1], is: accounts.ErrKeyNotFound},
		{account: "acme", id: secret, is: accounts.ErrKeyNotFound},
		{account: "nope", id: k.ID, is: accounts.ErrKeyNotFound},
		{account: "a/b", id: k.ID, field: "account id"},
	} {
		err := s.RevokeKey(tc.account, tc.id)
		checkErr(t, fmt.Sprintf("RevokeKey(%q, %.20q)", tc.account, tc.id), err, tc.is, tc.field)
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
	if got, err := s.Authenticate(secret); err != nil || !reflect.DeepEqual(got, k) {
		t.Errorf("after rejected revokes: Authenticate = %+v, %v; want %+v", got, err, k)
	}
}

// testKeysIsolated uses account ids where one is a prefix of the other.
func testKeysIsolated(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	create(t, s, "acme2")
	create(t, s, "idle")
	secret, k := createKey(t, s, "acme", accounts.RoleAdmin)
	otherSecret, other := createKey(t, s, "acme2", accounts.RoleMember)

	for account, want := range map[string][]accounts.Key{"acme": {k}, "acme2": {other}, "idle": {}} {
		if keys, err := s.Keys(account); err != nil || len(keys) != len(want) || len(want) > 0 && !reflect.DeepEqual(keys, want) {
			t.Errorf("Keys(%s) = %+v, %v; want %+v", account, keys, err, want)
		}
	}
	if _, err := s.Keys("nope"); !errors.Is(err, accounts.ErrAccountNotFound) {
		t.Errorf("Keys(nope) = %v, want ErrAccountNotFound", err)
	}
	_, err := s.Keys("a/b")
	checkErr(t, "Keys(a/b)", err, nil, "account id")
	for secret, account := range map[string]string{secret: "acme", otherSecret: "acme2"} {
		if got, err := s.Authenticate(secret); err != nil || got.Account != account {
			t.Errorf("Authenticate = %+v, %v; want a key of %s", got, err, account)
		}
	}
	for _, tc := range []struct{ account, id string }{{"acme2", k.ID}, {"idle", k.ID}, {"acme", other.ID}} {
		if err := s.RevokeKey(tc.account, tc.id); !errors.Is(err, accounts.ErrKeyNotFound) {
			t.Errorf("RevokeKey(%s, another account's key) = %v, want ErrKeyNotFound", tc.account, err)
		}
	}
	if _, err := s.Authenticate(secret); err != nil {
		t.Errorf("a key survives revokes through other accounts: %v", err)
	}
}

func testConcurrentCreateAccount(t *testing.T, s accounts.Store) {
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

func testConcurrentCreateKey(t *testing.T, s accounts.Store) {
	create(t, s, "acme")
	const n = 16
	secrets := make([]string, n)
	keys := make([]accounts.Key, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { secrets[i], keys[i], errs[i] = s.CreateKey("acme", accounts.RoleMember) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CreateKey %d: %v", i, err)
		}
	}
	if got, err := s.Keys("acme"); err != nil || !reflect.DeepEqual(got, sorted(keys...)) {
		t.Errorf("Keys(acme) = %d keys, %v; want the %d created", len(got), err, n)
	}
	for i, secret := range secrets {
		if got, err := s.Authenticate(secret); err != nil || !reflect.DeepEqual(got, keys[i]) {
			t.Errorf("Authenticate(secret %d) = %+v, %v; want %+v", i, got, err, keys[i])
		}
	}
}
