package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/audit"
)

// TestAuditAuthFailures: failed authentications are logged with the
// reason and the key id when one is known, never a secret, even one sent
// where the account id goes; a client repeating them gets the budget of
// its address a minute and one notice, not a line per request.
func TestAuditAuthFailures(t *testing.T) {
	stub := &streamStub{}
	logs := &auditCapture{}
	e := newEnv(t, withStreamingOn(stub, logs))
	admin := e.newAccount(t, "acme")
	member := e.newKey(t, "acme", "member")
	bogus := accounts.NewSecret()

	// A key of acme sent with its own secret as the account (J1_API_KEY
	// and J1_ACCOUNT swapped), on the REST and sync APIs; a member key on
	// the settings; a wrong operator key that looks like a key.
	wantStatus(t, e.rest(t, admin, "GET", "/api/v1/accounts/"+admin+"/entities", nil), http.StatusForbidden)
	wantStatus(t, e.sync(t, admin, admin, "POST", jobsPath, map[string]any{"source": "api", "scope": "s"}), http.StatusForbidden)
	wantStatus(t, e.rest(t, member, "GET", "/api/v1/accounts/acme/data-streaming", nil), http.StatusForbidden)
	wantStatus(t, e.do(t, "GET", "/operator/v1/accounts/"+bogus, nil, hdr{"Authorization", "Bearer " + admin}), http.StatusUnauthorized)
	// Then a flood of unknown keys.
	for range 50 {
		wantStatus(t, e.rest(t, bogus, "GET", "/api/v1/accounts/acme/entities", nil), http.StatusUnauthorized)
	}

	got := e.auditEvents(t, logs, "reason", "remote")
	var failures []string
	for _, s := range got {
		if strings.HasPrefix(s, "auth.failed") || strings.HasPrefix(s, "audit.") {
			failures = append(failures, s)
		}
	}
	want := []string{
		`auth.failed account="" actor=KEY reason="key_of_another_account" remote="127.0.0.1"`,
		`auth.failed account="" actor=KEY reason="key_of_another_account" remote="127.0.0.1"`,
	}
	want = append(want,
		`auth.failed account="acme" actor=KEY reason="admin_required" remote="127.0.0.1"`,
		`auth.failed account="" actor="" reason="wrong_operator_key" remote="127.0.0.1"`)
	for range audit.DefaultAuthFailuresPerMinute - 4 {
		want = append(want, `auth.failed account="acme" actor="" reason="unknown_api_key" remote="127.0.0.1"`)
	}
	want = append(want, `audit.rate_limited remote="127.0.0.1"`)
	if strings.Join(failures, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit of the failures:\n%s\nwant:\n%s", strings.Join(failures, "\n"), strings.Join(want, "\n"))
	}
	// Revoking a key is logged with its id.
	r := e.op(t, "POST", "/operator/v1/accounts/acme/api-keys", map[string]any{"role": "member"})
	wantStatus(t, r, http.StatusCreated)
	created := decode(t, r)
	id, _ := created["id"].(string)
	revoked, _ := created["key"].(string)
	wantStatus(t, e.op(t, "DELETE", "/operator/v1/accounts/acme/api-keys/"+id, nil), http.StatusNoContent)
	got = logs.events(t, "key_id", "role")
	if tail := strings.Join(got[len(got)-2:], "\n"); tail != `key.created account="acme" actor="operator" key_id="`+id+`" role="member"`+"\n"+`key.revoked account="acme" actor="operator" key_id="`+id+`"` {
		t.Fatalf("audit of a key created and revoked:\n%s", tail)
	}
	for _, secret := range []string{admin, member, bogus, operatorKey, revoked} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log holds a secret:\n%s", logs.String())
		}
	}
}
