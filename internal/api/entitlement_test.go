package api_test

// The data-streaming entitlement gates streaming: the operator removing
// it stops the account's stream as a disable would; an administrator can
// still read the settings and disable, not enable, test or retarget.

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"log/slog"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/audit"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
)

// auditCapture keeps the API's log as JSON lines.
type auditCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *auditCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *auditCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// events returns the audit records logged, as "event account actor" and
// the values of keys, in order.
func (c *auditCapture) events(t *testing.T, keys ...string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(c.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] != "audit" {
			continue
		}
		s, _ := m["event"].(string)
		for _, k := range append([]string{"account", "actor"}, keys...) {
			if v, ok := m[k]; ok {
				b, _ := json.Marshal(v)
				s += " " + k + "=" + string(b)
			}
		}
		out = append(out, s)
	}
	return out
}

// withStreamingOn is withStreaming on either backend, with the API's log
// (and its audit log) captured in logs.
func withStreamingOn(stub *streamStub, logs *auditCapture) func(*api.Config) {
	return func(c *api.Config) {
		var store settings.Store
		switch g := c.Graph.(type) {
		case *pebblestore.Store:
			store = g.Settings()
		case *pgstore.Store:
			store = g.Settings()
		}
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		c.Audit = audit.New(c.Logger, audit.Config{Now: streamNow})
		c.Streaming = &api.Streaming{
			Settings: settings.New(store, streamNow), Exporter: stub, TestConnection: stub.TestConnection,
			Explain: func(err error, bucket, owner string) stream.Problem {
				return stream.Problem{Code: "CONNECTION_FAILED", Message: "the connection test failed", ActionBy: stream.ActionCustomer}
			},
			RequiredRegion: "us-east-1", PlatformAccountID: "111122223333",
			FlushInterval: time.Minute, Now: streamNow,
		}
	}
}

// streamingView is what these tests read of GET .../data-streaming.
type streamingView struct {
	Enabled    bool   `json:"enabled"`
	BucketName string `json:"bucketName"`
	Entitled   bool   `json:"entitled"`
	Status     struct {
		Enabled   bool `json:"enabled"`
		LastError *struct {
			Code, Message string
		} `json:"lastError"`
		Periods []settings.Period `json:"periods"`
	} `json:"status"`
}

func readView(t *testing.T, r response) streamingView {
	t.Helper()
	wantStatus(t, r, http.StatusOK)
	var v streamingView
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	return v
}

func TestEntitlementRemovalStopsStreaming(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testEntitlementRemovalStopsStreaming(t, b) })
	}
}

func testEntitlementRemovalStopsStreaming(t *testing.T, backend string) {
	stub := &streamStub{}
	logs := &auditCapture{}
	e := newEnvOn(t, backend, withStreamingOn(stub, logs))
	const acct = "acme"
	base := "/api/v1/accounts/" + acct + "/data-streaming"
	admin := e.newAccount(t, acct)
	member := e.newKey(t, acct, "member")
	on := map[string]any{"enabled": true, "bucketName": "acme-bucket", "awsAccountId": "123456789012", "regionConfirmed": true}
	test := map[string]any{"bucketName": "acme-bucket", "awsAccountId": "123456789012", "regionConfirmed": true}
	wantStatus(t, e.rest(t, admin, "POST", base+"/test-connection", test), http.StatusOK)
	if v := readView(t, e.rest(t, admin, "PUT", base, on)); !v.Enabled || !v.Status.Enabled || !v.Entitled {
		t.Fatalf("enabled: %+v", v)
	}

	// The operator removes the entitlement: the stream stops at once and
	// the exporter is told.
	stub.mu.Lock()
	stub.reloads = nil
	stub.mu.Unlock()
	wantStatus(t, e.op(t, "PUT", "/operator/v1/accounts/"+acct+"/entitlements", map[string]any{"entitlements": []string{}}), http.StatusOK)
	stub.mu.Lock()
	reloads := slices.Clone(stub.reloads)
	stub.mu.Unlock()
	if !slices.Equal(reloads, []string{acct}) {
		t.Fatalf("exporter reloads after the removal: %q, want [%s]", reloads, acct)
	}

	// The administrator reads the settings: stopped, with the reason.
	v := readView(t, e.rest(t, admin, "GET", base, nil))
	last := v.Status.Periods[len(v.Status.Periods)-1]
	switch {
	case v.Enabled || v.Status.Enabled || v.Entitled:
		t.Fatalf("after the removal: %+v, want disabled and not entitled", v)
	case v.BucketName != "acme-bucket":
		t.Fatalf("after the removal the bucket is %q, want it kept", v.BucketName)
	case v.Status.LastError == nil || v.Status.LastError.Code != settings.CodeEntitlementRemoved || !strings.Contains(v.Status.LastError.Message, "entitlement was removed"):
		t.Fatalf("status after the removal: last error %+v, want %s", v.Status.LastError, settings.CodeEntitlementRemoved)
	case last.EndAt.IsZero() || last.EndReason != settings.ReasonEntitlementRemoved:
		t.Fatalf("enabled period after the removal: %+v, want ended with the reason", last)
	}
	wantStatus(t, e.rest(t, admin, "GET", base+"/bucket-policy", nil), http.StatusOK)
	wantError(t, e.rest(t, member, "GET", base, nil), http.StatusForbidden, "NOT_ENTITLED", "administrator key")

	// Enabling, testing and retargeting need the entitlement; each refusal
	// says what to do and changes nothing.
	before := e.rest(t, admin, "GET", base, nil).Body
	wantError(t, e.rest(t, admin, "PUT", base, on), http.StatusForbidden, "NOT_ENTITLED", "ask your JupiterOne operator to add it", "disable")
	wantError(t, e.rest(t, admin, "POST", base+"/test-connection", test), http.StatusForbidden, "NOT_ENTITLED", "ask your JupiterOne operator")
	wantError(t, e.rest(t, admin, "PUT", base, map[string]any{"enabled": false, "bucketName": "other-bucket"}), http.StatusForbidden, "NOT_ENTITLED")
	if after := e.rest(t, admin, "GET", base, nil).Body; !bytes.Equal(after, before) {
		t.Fatalf("a refused request changed the settings:\n%s\n%s", before, after)
	}
	// Disabling (again) works, the form sent as the page sends it.
	if v := readView(t, e.rest(t, admin, "PUT", base, map[string]any{"enabled": false, "bucketName": "acme-bucket", "awsAccountId": "123456789012", "regionConfirmed": true})); v.Enabled {
		t.Fatalf("disable: %+v", v)
	}

	// The entitlement back, the stream stays off until enabled again.
	wantStatus(t, e.op(t, "PUT", "/operator/v1/accounts/"+acct+"/entitlements", map[string]any{"entitlements": []string{"data-streaming"}}), http.StatusOK)
	if v := readView(t, e.rest(t, admin, "GET", base, nil)); v.Enabled || !v.Entitled {
		t.Fatalf("the entitlement re-added: %+v, want entitled and still disabled", v)
	}
	if v := readView(t, e.rest(t, admin, "PUT", base, on)); !v.Enabled || v.Status.LastError != nil {
		t.Fatalf("re-enabled: %+v", v)
	}

	// An enabled account whose entitlement is removed through the store
	// alone (the stop after it never ran) cannot be saved enabled again.
	if _, err := e.accts.SetEntitlements(acct, []string{}); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.rest(t, admin, "PUT", base, on), http.StatusForbidden, "NOT_ENTITLED")
	// The operator sending the same entitlements again stops it.
	wantStatus(t, e.op(t, "PUT", "/operator/v1/accounts/"+acct+"/entitlements", map[string]any{"entitlements": []string{}}), http.StatusOK)
	if v := readView(t, e.rest(t, admin, "GET", base, nil)); v.Enabled || v.Status.Enabled {
		t.Fatalf("after the operator's retry: %+v, want stopped", v)
	}

	got := e.auditEvents(t, logs, "reason")
	want := []string{
		`account.created account="acme" actor="operator"`,
		`key.created account="acme" actor="operator"`,
		`key.created account="acme" actor="operator"`,
		`settings.enabled account="acme" actor=KEY`,
		`entitlements.changed account="acme" actor="operator"`,
		`settings.disabled account="acme" actor="operator" reason="the data-streaming entitlement was removed"`,
		`auth.failed account="acme" actor=KEY reason="admin_required"`, // the member's GET
		`settings.saved account="acme" actor=KEY`,
		`entitlements.changed account="acme" actor="operator"`,
		`settings.enabled account="acme" actor=KEY`,
		`entitlements.changed account="acme" actor="operator"`,
		`settings.disabled account="acme" actor="operator" reason="the data-streaming entitlement was removed"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, secret := range []string{admin, member, operatorKey} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the log holds a secret")
		}
	}
}

// auditEvents is logs.events with each admin key id shown as KEY.
func (e *env) auditEvents(t *testing.T, logs *auditCapture, keys ...string) []string {
	t.Helper()
	got := logs.events(t, keys...)
	for i, s := range got {
		if j := strings.Index(s, ` actor="`); j >= 0 {
			id := s[j+8:]
			id = id[:strings.IndexByte(id, '"')]
			if len(id) == 12 && id != audit.ActorOperator {
				got[i] = strings.Replace(s, `"`+id+`"`, "KEY", 1)
			}
		}
	}
	return got
}
