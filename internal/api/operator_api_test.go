package api_test

// The operator API (accounts, entitlements, API keys) and the service
// endpoints (/healthz, /readyz, /openapi.json).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/api"
)

func TestOperatorAccounts(t *testing.T) {
	e := newEnv(t)

	r := e.op(t, "POST", "/operator/v1/accounts", map[string]any{"id": "acme", "entitlements": []string{"data-streaming", "data-streaming"}})
	wantStatus(t, r, http.StatusCreated)
	a := decode(t, r)
	wantFields(t, "account", a, "id", "acme", "entitlements", []string{"data-streaming"})
	if s, _ := a["createdAt"].(string); s == "" {
		t.Errorf("account has no createdAt: %v", a)
	}
	r = e.op(t, "POST", "/operator/v1/accounts", map[string]any{"id": "Bare_01"})
	wantStatus(t, r, http.StatusCreated)
	wantFields(t, "account without entitlements", decode(t, r), "id", "Bare_01", "entitlements", []string{})

	for _, tc := range []struct {
		name    string
		body    any
		status  int
		code    string
		substrs []string
	}{
		{"duplicate", map[string]any{"id": "acme"}, 409, "ACCOUNT_EXISTS", []string{`"acme"`, "already exists"}},
		{"slash", map[string]any{"id": "a/b"}, 400, "INVALID_INPUT", []string{`invalid account id "a/b"`}},
		{"dot-dot", map[string]any{"id": "../x"}, 400, "INVALID_INPUT", []string{`invalid account id "../x"`}},
		{"colon", map[string]any{"id": "a:b"}, 400, "INVALID_INPUT", []string{`invalid account id "a:b"`}},
		{"space", map[string]any{"id": "a b"}, 400, "INVALID_INPUT", []string{`"a b"`}},
		{"leading dash", map[string]any{"id": "-acme"}, 400, "INVALID_INPUT", []string{`"-acme"`}},
		{"equals", map[string]any{"id": "accountid=x"}, 400, "INVALID_INPUT", []string{`"accountid=x"`}},
		{"non-ASCII", map[string]any{"id": "acmé"}, 400, "INVALID_INPUT", []string{`"acmé"`}},
		{"too long", map[string]any{"id": strings.Repeat("a", 65)}, 400, "INVALID_INPUT", []string{"invalid account id", "1-64"}},
		{"missing id", map[string]any{"entitlements": []string{}}, 400, "INVALID_INPUT", []string{"id is required"}},
		{"unknown entitlement", map[string]any{"id": "acme-2", "entitlements": []string{"data-streaming", "time-travel"}}, 400, "INVALID_INPUT", []string{`"time-travel"`, "data-streaming"}},
		{"id not a string", `{"id": 5}`, 400, "INVALID_JSON", []string{"id must be a string"}},
		{"malformed", `{"id": "acme-3"`, 400, "INVALID_JSON", []string{"not valid JSON"}},
	} {
		t.Run("create rejects "+tc.name, func(t *testing.T) {
			r := e.op(t, "POST", "/operator/v1/accounts", tc.body)
			wantError(t, r, tc.status, tc.code, tc.substrs...)
		})
	}

	// Nothing of the rejected requests was created.
	r = e.op(t, "GET", "/operator/v1/accounts", nil)
	wantStatus(t, r, http.StatusOK)
	var list struct {
		Accounts []struct{ ID string } `json:"accounts"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range list.Accounts {
		ids = append(ids, a.ID)
	}
	if strings.Join(ids, ",") != "Bare_01,acme" {
		t.Errorf("accounts %v, want [Bare_01 acme]", ids)
	}

	r = e.op(t, "GET", "/operator/v1/accounts/acme", nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "GET account", decode(t, r), "id", "acme", "entitlements", []string{"data-streaming"})
	r = e.op(t, "GET", "/operator/v1/accounts/ghost", nil)
	wantError(t, r, 404, "ACCOUNT_NOT_FOUND", `"ghost"`)
	r = e.op(t, "GET", "/operator/v1/accounts/a:b", nil)
	wantError(t, r, 400, "INVALID_INPUT", `"a:b"`)

	r = e.op(t, "PUT", "/operator/v1/accounts/Bare_01/entitlements", map[string]any{"entitlements": []string{"data-streaming"}})
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "entitled", decode(t, r), "entitlements", []string{"data-streaming"})
	r = e.op(t, "PUT", "/operator/v1/accounts/Bare_01/entitlements", map[string]any{"entitlements": []string{"nope"}})
	wantError(t, r, 400, "INVALID_INPUT", `"nope"`)
	r = e.op(t, "PUT", "/operator/v1/accounts/Bare_01/entitlements", map[string]any{})
	wantError(t, r, 400, "INVALID_INPUT", "entitlements is required")
	r = e.op(t, "PUT", "/operator/v1/accounts/ghost/entitlements", map[string]any{"entitlements": []string{}})
	wantError(t, r, 404, "ACCOUNT_NOT_FOUND", `"ghost"`)
	r = e.op(t, "GET", "/operator/v1/accounts/Bare_01", nil)
	wantFields(t, "after the rejected update", decode(t, r), "entitlements", []string{"data-streaming"})
}

func TestOperatorKeys(t *testing.T) {
	e := newEnv(t)
	wantStatus(t, e.op(t, "POST", "/operator/v1/accounts", map[string]any{"id": "acme"}), http.StatusCreated)
	wantStatus(t, e.op(t, "POST", "/operator/v1/accounts", map[string]any{"id": "other"}), http.StatusCreated)

	var secrets []string
	var keyIDs []string
	for _, role := range []string{"admin", "member"} {
		// Keys are listed oldest first; the store's clock stands still
		// unless moved.
		e.clock.Set(e.clock.Now().Add(time.Second))
		r := e.op(t, "POST", "/operator/v1/accounts/acme/api-keys", map[string]any{"role": role})
		wantStatus(t, r, http.StatusCreated)
		k := decode(t, r)
		wantFields(t, role+" key", k, "accountId", "acme", "role", role)
		secret, _ := k["key"].(string)
		id, _ := k["id"].(string)
		if !strings.HasPrefix(secret, "j1ds_") || len(secret) < 30 || id == "" || strings.Contains(secret, id) {
			t.Fatalf("%s key: secret %q, id %q", role, secret, id)
		}
		secrets, keyIDs = append(secrets, secret), append(keyIDs, id)
	}

	r := e.op(t, "GET", "/operator/v1/accounts/acme/api-keys", nil)
	wantStatus(t, r, http.StatusOK)
	for _, s := range secrets {
		if strings.Contains(string(r.Body), s) || strings.Contains(string(r.Body), s[5:]) {
			t.Errorf("the key list shows a secret: %s", r.Body)
		}
	}
	var list struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Keys) != 2 {
		t.Fatalf("%d keys listed, want 2: %s", len(list.Keys), r.Body)
	}
	for i, k := range list.Keys {
		wantFields(t, "listed key", k, "id", keyIDs[i], "accountId", "acme", "key", absent)
	}

	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		code       string
		substrs    []string
	}{
		{"bad role", "/operator/v1/accounts/acme/api-keys", map[string]any{"role": "owner"}, 400, "INVALID_INPUT", []string{`invalid role "owner"`, "admin", "member"}},
		{"no role", "/operator/v1/accounts/acme/api-keys", map[string]any{}, 400, "INVALID_INPUT", []string{"role is required"}},
		{"unknown account", "/operator/v1/accounts/ghost/api-keys", map[string]any{"role": "admin"}, 404, "ACCOUNT_NOT_FOUND", []string{`"ghost"`}},
		{"invalid account id", "/operator/v1/accounts/a:b/api-keys", map[string]any{"role": "admin"}, 400, "INVALID_INPUT", []string{`"a:b"`}},
	} {
		t.Run("create key rejects "+tc.name, func(t *testing.T) {
			r := e.op(t, "POST", tc.path, tc.body)
			wantError(t, r, tc.status, tc.code, tc.substrs...)
		})
	}
	r = e.op(t, "GET", "/operator/v1/accounts/ghost/api-keys", nil)
	wantError(t, r, 404, "ACCOUNT_NOT_FOUND", `"ghost"`)

	// Both keys work; revoking the admin key stops it and only it.
	for _, s := range secrets {
		wantStatus(t, e.rest(t, s, "GET", "/api/v1/accounts/acme/entities", nil), http.StatusOK)
	}
	r = e.op(t, "DELETE", "/operator/v1/accounts/other/api-keys/"+keyIDs[0], nil)
	wantError(t, r, 404, "KEY_NOT_FOUND", keyIDs[0])
	r = e.op(t, "DELETE", "/operator/v1/accounts/acme/api-keys/"+keyIDs[0], nil)
	wantStatus(t, r, http.StatusNoContent)
	r = e.rest(t, secrets[0], "GET", "/api/v1/accounts/acme/entities", nil)
	wantError(t, r, 401, "UNAUTHORIZED", "revoked")
	r = e.sync(t, secrets[0], "acme", "POST", jobsPath, map[string]any{"source": "api", "scope": "s-1"})
	wantError(t, r, 401, "UNAUTHORIZED", "revoked")
	wantStatus(t, e.rest(t, secrets[1], "GET", "/api/v1/accounts/acme/entities", nil), http.StatusOK)
	r = e.op(t, "DELETE", "/operator/v1/accounts/acme/api-keys/"+keyIDs[0], nil)
	wantError(t, r, 404, "KEY_NOT_FOUND", keyIDs[0])
	r = e.op(t, "GET", "/operator/v1/accounts/acme/api-keys", nil)
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.Keys) != 1 || list.Keys[0]["id"] != keyIDs[1] {
		t.Errorf("keys after revoke: %s", r.Body)
	}
}

func TestOperatorAuth(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, "acme")
	routes := []struct{ method, path string }{
		{"POST", "/operator/v1/accounts"},
		{"GET", "/operator/v1/accounts"},
		{"GET", "/operator/v1/accounts/acme"},
		{"PUT", "/operator/v1/accounts/acme/entitlements"},
		{"POST", "/operator/v1/accounts/acme/api-keys"},
		{"GET", "/operator/v1/accounts/acme/api-keys"},
		{"DELETE", "/operator/v1/accounts/acme/api-keys/0123456789ab"},
	}
	for _, rt := range routes {
		for _, tc := range []struct {
			name string
			h    hdr
			hint string
		}{
			{"no key", hdr{}, "Authorization: Bearer"},
			{"wrong key", hdr{"Authorization", "Bearer " + operatorKey + "x"}, "operator key is wrong"},
			{"an account key", hdr{"Authorization", "Bearer " + key}, "operator key is wrong"},
		} {
			r := e.do(t, rt.method, rt.path, `{"id":"sneaky","role":"admin","entitlements":[]}`, tc.h)
			wantError(t, r, 401, "UNAUTHORIZED", tc.hint)
		}
	}
	r := e.op(t, "GET", "/operator/v1/accounts", nil)
	if !strings.Contains(string(r.Body), `"acme"`) || strings.Contains(string(r.Body), "sneaky") {
		t.Errorf("accounts after the rejected calls: %s", r.Body)
	}

	off := newEnv(t, func(c *api.Config) { c.OperatorKey = "" })
	for _, rt := range routes {
		for _, h := range []hdr{{}, {"Authorization", "Bearer " + operatorKey}, {"Authorization", "Bearer "}} {
			r := off.do(t, rt.method, rt.path, `{"id":"sneaky","role":"admin"}`, h)
			wantError(t, r, 404, "OPERATOR_API_DISABLED", "--operator-key")
		}
	}
	if as, err := off.accts.Accounts(); err != nil || len(as) != 0 {
		t.Errorf("accounts with the operator API off: %v %v", as, err)
	}

	// A key of which only the hash is known (generated on a database).
	hash := sha256.Sum256([]byte(operatorKey))
	hashed := newEnv(t, func(c *api.Config) { c.OperatorKey, c.OperatorKeyHash = "", hash[:] })
	wantStatus(t, hashed.op(t, "GET", "/operator/v1/accounts", nil), http.StatusOK)
	for _, rt := range routes {
		for _, tc := range []struct {
			name string
			h    hdr
			hint string
		}{
			{"no key", hdr{}, "Authorization: Bearer"},
			{"wrong key", hdr{"Authorization", "Bearer " + operatorKey + "x"}, "operator key is wrong"},
			{"the hash in hex", hdr{"Authorization", "Bearer " + hex.EncodeToString(hash[:])}, "operator key is wrong"},
		} {
			r := hashed.do(t, rt.method, rt.path, `{"id":"sneaky","role":"admin","entitlements":[]}`, tc.h)
			wantError(t, r, 401, "UNAUTHORIZED", tc.hint)
		}
	}
}

func TestServiceEndpoints(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/healthz", nil, nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "healthz", decode(t, r), "status", "ok")
	r = e.do(t, "GET", "/readyz", nil, nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "readyz", decode(t, r), "status", "ready")

	r = e.do(t, "GET", "/openapi.json", nil, nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("openapi.json served as %q", ct)
	}
	if doc := decode(t, r); doc["openapi"] == nil {
		t.Errorf("openapi.json has no openapi version field")
	}

	r = e.do(t, "GET", "/no/such/thing", nil, nil)
	wantError(t, r, 404, "NOT_FOUND", "/no/such/thing", "/openapi.json")

	down := newEnv(t, func(c *api.Config) {
		c.Ready = func() error { return errors.New("graph store is replaying its log") }
	})
	r = down.do(t, "GET", "/readyz", nil, nil)
	wantError(t, r, 503, "NOT_READY", "replaying")
	wantStatus(t, down.do(t, "GET", "/healthz", nil, nil), http.StatusOK)
}
