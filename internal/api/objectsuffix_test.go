package api_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/stream"
)

// TestObjectSuffixSetting: an administrator chooses the account's object
// suffix with PUT objectSuffix; until then the account follows the
// deployment's default. The choice needs no new connection test and
// starts no new generation (the exporter applies it from its next
// object). A bad value, or a member key, is refused and changes nothing.
// On both settings backends.
func TestObjectSuffixSetting(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testObjectSuffixSetting(t, b) })
	}
}

func testObjectSuffixSetting(t *testing.T, backend string) {
	stub := &streamStub{}
	e := newEnvOn(t, backend, withStreamingOn(stub, &auditCapture{}), func(c *api.Config) { c.Streaming.DefaultObjectSuffix = ".jsonl" })
	const acct = "acme"
	base := "/api/v1/accounts/" + acct + "/data-streaming"
	admin := e.newAccount(t, acct)
	member := e.newKey(t, acct, "member")
	cp := checkpointOf(t, e)

	type view struct {
		Enabled             bool   `json:"enabled"`
		ObjectSuffix        string `json:"objectSuffix"`
		DefaultObjectSuffix string `json:"defaultObjectSuffix"`
	}
	read := func(r response) view {
		t.Helper()
		wantStatus(t, r, http.StatusOK)
		var v view
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		return v
	}
	if v := read(e.rest(t, admin, "GET", base, nil)); v.ObjectSuffix != ".jsonl" || v.DefaultObjectSuffix != ".jsonl" {
		t.Fatalf("a new account: objectSuffix %q, defaultObjectSuffix %q; want the deployment's .jsonl for both", v.ObjectSuffix, v.DefaultObjectSuffix)
	}

	test := map[string]any{"bucketName": "acme-bucket", "awsAccountId": "123456789012"}
	wantStatus(t, e.rest(t, admin, "POST", base+"/test-connection", test), http.StatusOK)
	wantStatus(t, e.rest(t, admin, "PUT", base, map[string]any{"enabled": true, "bucketName": "acme-bucket", "awsAccountId": "123456789012", "regionConfirmed": true}), http.StatusOK)
	before := load(t, cp, acct)
	if before.Suffix != "" {
		t.Fatalf("stream state suffix %q before any choice, want empty (the exporter's default)", before.Suffix)
	}

	// The last connection test fails now: a save that needed one would
	// be refused.
	stub.mu.Lock()
	stub.err = errors.New("denied")
	stub.mu.Unlock()
	wantStatus(t, e.rest(t, admin, "POST", base+"/test-connection", test), http.StatusOK)
	tests := len(stub.testsSeen())

	v := read(e.rest(t, admin, "PUT", base, map[string]any{"enabled": true, "objectSuffix": ".jsonl.gz"}))
	if !v.Enabled || v.ObjectSuffix != ".jsonl.gz" {
		t.Fatalf("after choosing .jsonl.gz: %+v", v)
	}
	if n := len(stub.testsSeen()); n != tests {
		t.Fatalf("choosing the suffix ran %d connection tests", n-tests)
	}
	after := load(t, cp, acct)
	if after.Suffix != ".jsonl.gz" || after.Generation != before.Generation || !after.Enabled {
		t.Fatalf("stream state after choosing .jsonl.gz: suffix %q generation %d enabled %v; want .jsonl.gz, generation %d, enabled",
			after.Suffix, after.Generation, after.Enabled, before.Generation)
	}
	if v := read(e.rest(t, admin, "GET", base, nil)); v.ObjectSuffix != ".jsonl.gz" {
		t.Fatalf("GET after the choice: objectSuffix %q", v.ObjectSuffix)
	}
	stub.mu.Lock()
	reloads := slices.Clone(stub.reloads)
	stub.mu.Unlock()
	if len(reloads) == 0 || reloads[len(reloads)-1] != acct {
		t.Fatalf("the exporter was not told of the choice: reloads %q", reloads)
	}

	// Refused requests change nothing.
	for _, c := range []struct {
		name, key string
		body      any
		status    int
		code      string
		says      []string
	}{
		{"unknown suffix", admin, map[string]any{"enabled": true, "objectSuffix": ".json.gz"}, http.StatusUnprocessableEntity, "INVALID_SETTINGS", []string{"objectSuffix", `".json.gz"`, ".jsonl.gz"}},
		{"unknown suffix while disabling", admin, map[string]any{"enabled": false, "objectSuffix": "gz"}, http.StatusUnprocessableEntity, "INVALID_SETTINGS", []string{"objectSuffix"}},
		{"not a string", admin, map[string]any{"enabled": true, "objectSuffix": true}, http.StatusBadRequest, "INVALID_JSON", []string{"objectSuffix"}},
		{"member key", member, map[string]any{"enabled": true, "objectSuffix": ".jsonl"}, http.StatusForbidden, "ADMIN_REQUIRED", nil},
	} {
		wantError(t, e.rest(t, c.key, "PUT", base, c.body), c.status, c.code, c.says...)
		if v := read(e.rest(t, admin, "GET", base, nil)); !v.Enabled || v.ObjectSuffix != ".jsonl.gz" {
			t.Fatalf("%s: the settings changed: %+v", c.name, v)
		}
		if st := load(t, cp, acct); st.Suffix != ".jsonl.gz" || st.Generation != after.Generation || !st.Enabled {
			t.Fatalf("%s: the stream state changed: suffix %q generation %d enabled %v", c.name, st.Suffix, st.Generation, st.Enabled)
		}
	}

	// Back to .jsonl, and to the deployment's default with "".
	if v := read(e.rest(t, admin, "PUT", base, map[string]any{"enabled": true, "objectSuffix": ".jsonl"})); v.ObjectSuffix != ".jsonl" {
		t.Fatalf("after choosing .jsonl: %+v", v)
	}
	if st := load(t, cp, acct); st.Suffix != ".jsonl" {
		t.Fatalf("stream state suffix %q after choosing .jsonl", st.Suffix)
	}
	if v := read(e.rest(t, admin, "PUT", base, map[string]any{"enabled": true, "objectSuffix": ""})); v.ObjectSuffix != ".jsonl" {
		t.Fatalf("after choosing the default: %+v", v)
	}
	if st := load(t, cp, acct); st.Suffix != "" {
		t.Fatalf("stream state suffix %q after choosing the default, want empty", st.Suffix)
	}
}

// checkpointOf is the stream state store of the env's backend.
func checkpointOf(t *testing.T, e *env) stream.Checkpoint {
	t.Helper()
	switch s := e.store.(type) {
	case *pebblestore.Store:
		return s.Settings()
	case *pgstore.Store:
		return s.Settings()
	}
	t.Fatalf("no checkpoint for store %T", e.store)
	return nil
}

func load(t *testing.T, cp stream.Checkpoint, account string) stream.State {
	t.Helper()
	st, err := cp.Load(account)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
