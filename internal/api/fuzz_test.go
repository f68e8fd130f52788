package api_test

// Fuzz tests of the API handlers with arbitrary bodies (go test -fuzz
// FuzzSyncUpload, -fuzz FuzzRESTBody; go test runs the seeds). Whatever
// the body: no panic, no 5xx, every 4xx has the {"error":{code,message}}
// shape, and a refused request changes nothing (the log end, the job,
// the settings, the accounts and keys are as before).

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

const (
	fuzzAcct  = "fuzz-acct"
	fuzzOther = "fuzz-other" // the operator routes change this one
)

// fuzzAPI is an API over a real store, called in process (no network).
type fuzzAPI struct {
	h        http.Handler
	store    *pebblestore.Store
	jobs     *syncjobs.Service
	accts    accounts.Store
	st       *settings.Service
	key      string
	job      string
	entity   string // ids of objects PATCH targets
	relation string
}

func newFuzzAPI(f *testing.F) *fuzzAPI {
	f.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := pebblestore.Open(f.TempDir(), pebblestore.Options{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	jobs, err := syncjobs.Open(store, store.Jobs(), syncjobs.Options{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(jobs.Close)
	a := &fuzzAPI{store: store, jobs: jobs, accts: store.Accounts()}
	cfg := api.Config{Graph: store, Log: store, Accounts: a.accts, Jobs: jobs, OperatorKey: operatorKey, Logger: quiet, MaxBody: 1 << 20}
	withStreaming(&streamStub{}, &a.st)(&cfg)
	a.h = api.New(cfg)
	for _, id := range []string{fuzzAcct, fuzzOther} {
		if _, err := a.accts.CreateAccount(id, []string{accounts.EntitlementDataStreaming}); err != nil {
			f.Fatal(err)
		}
	}
	if a.key, _, err = a.accts.CreateKey(fuzzAcct, accounts.RoleAdmin); err != nil {
		f.Fatal(err)
	}
	for _, o := range []string{
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","n":1}`,
		`{"_key":"fuzz-entity-0002","_type":"fuzz_thing","_class":"Thing"}`,
	} {
		st, b := a.call(f, "POST", "/api/v1/accounts/"+fuzzAcct+"/entities", []byte(o), false)
		if st != http.StatusCreated {
			f.Fatalf("create entity: %d %s", st, b)
		}
		if a.entity == "" {
			a.entity = jsonField(b, "_id")
		}
	}
	st, b := a.call(f, "POST", "/api/v1/accounts/"+fuzzAcct+"/relationships",
		[]byte(`{"_key":"fuzz-rel-000001","_type":"fuzz_thing_has","_class":"HAS","_fromEntityKey":"fuzz-entity-0001","_toEntityKey":"fuzz-entity-0002"}`), false)
	if st != http.StatusCreated {
		f.Fatalf("create relationship: %d %s", st, b)
	}
	a.relation = jsonField(b, "_id")
	return a
}

func jsonField(b []byte, name string) string {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	s, _ := m[name].(string)
	return s
}

// call serves one request with the account's admin key (the operator key
// for /operator paths).
func (a *fuzzAPI) call(tb testing.TB, method, path string, body []byte, gz bool, extra ...string) (int, []byte) {
	tb.Helper()
	if gz {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(body)
		_ = w.Close()
		body = buf.Bytes()
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	key := a.key
	if strings.HasPrefix(path, "/operator/") {
		key = operatorKey
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(path, jobsPath) {
		req.Header.Set("JupiterOne-Account", fuzzAcct)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// state is what a refused request must leave as it was.
func (a *fuzzAPI) state(tb testing.TB) string {
	tb.Helper()
	var b strings.Builder
	as, err := a.accts.Accounts()
	if err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintf(&b, "accounts %v\n", as)
	for _, acct := range as {
		end, err := a.store.End(acct.ID)
		if err != nil {
			tb.Fatal(err)
		}
		ks, err := a.accts.Keys(acct.ID)
		if err != nil {
			tb.Fatal(err)
		}
		rec, err := a.st.Get(acct.ID)
		if err != nil {
			tb.Fatal(err)
		}
		js, _ := json.Marshal(rec)
		fmt.Fprintf(&b, "%s end %d keys %v settings %s\n", acct.ID, end, ks, js)
	}
	if a.job != "" {
		j, err := a.jobs.Get(fuzzAcct, a.job)
		if err != nil {
			tb.Fatal(err)
		}
		js, _ := json.Marshal(j)
		fmt.Fprintf(&b, "job %s\n", js)
	}
	return b.String()
}

// openJob makes sure a.job awaits uploads, starting a new job when the
// last one was finalized or aborted.
func (a *fuzzAPI) openJob(tb testing.TB) {
	tb.Helper()
	if a.job != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := a.jobs.Wait(ctx, a.job); err != nil {
			tb.Fatal(err)
		}
		if j, err := a.jobs.Get(fuzzAcct, a.job); err == nil && j.Status == syncjobs.StatusAwaitingUploads {
			return
		}
	}
	j, err := a.jobs.Create(fuzzAcct, syncjobs.CreateRequest{Source: "api", Scope: "fuzz"})
	if err != nil {
		tb.Fatal(err)
	}
	a.job = j.ID
}

// checkAnswer fails on a 5xx, on a 4xx that is not an error object, and
// on a refused request that changed something.
func (a *fuzzAPI) checkAnswer(t *testing.T, what string, body []byte, status int, answer []byte, before string) {
	t.Helper()
	switch {
	case status >= 500:
		t.Fatalf("%s with body %q: HTTP %d %s", what, body, status, answer)
	case status >= 400:
		var shape map[string]map[string]any
		if err := json.Unmarshal(answer, &shape); err != nil || len(shape) != 1 || len(shape["error"]) != 2 {
			t.Fatalf("%s with body %q: HTTP %d answer is not {\"error\":{code,message}}: %s", what, body, status, answer)
		}
		code, _ := shape["error"]["code"].(string)
		msg, _ := shape["error"]["message"].(string)
		if code == "" || msg == "" {
			t.Fatalf("%s with body %q: HTTP %d answer has an empty code or message: %s", what, body, status, answer)
		}
		if after := a.state(t); after != before {
			t.Fatalf("%s with body %q was refused (HTTP %d %s) but changed the store:\nbefore:\n%s\nafter:\n%s", what, body, status, answer, before, after)
		}
	case status >= 200 && status < 300:
		if status != http.StatusNoContent && !json.Valid(answer) {
			t.Fatalf("%s with body %q: HTTP %d answer is not JSON: %q", what, body, status, answer)
		}
	default:
		t.Fatalf("%s with body %q: HTTP %d", what, body, status)
	}
}

var syncFuzzRoutes = []string{"upload", "entities", "relationships", "events", "finalize", "abort", "create"}

func FuzzSyncUpload(f *testing.F) {
	for _, s := range []string{
		`{"entities":[{"_key":"fuzz-sync-0001","_type":"fuzz_thing","_class":"Thing","n":1}]}`,
		`{"relationships":[{"_key":"fuzz-rel-000009","_type":"fuzz_thing_has","_class":"HAS","_fromEntityKey":"fuzz-entity-0001","_toEntityKey":"fuzz-entity-0002"}]}`,
		`{"entities":[{"_key":"fuzz-sync-0001","_type":"fuzz_thing","_class":"Thing"},{"_key":"x"}]}`,
		`{"entities":null,"relationships":[]}`,
		`{"events":[{"name":"a","description":"b","level":"warn"}]}`,
		`{"partialDatasets":{"types":["fuzz_thing"]}}`,
		`{"reason":"stop"}`,
		`{"source":"integration-managed","scope":"s","syncMode":"CREATE_OR_UPDATE"}`,
		`[`, `{"entities":{}}`, "{\"entities\":[\"\xff\"]}", ``, `null`,
	} {
		for i := range syncFuzzRoutes {
			f.Add(uint8(i), false, []byte(s))
		}
	}
	f.Add(uint8(0), true, []byte(`{"entities":[{"_key":"fuzz-sync-gzip1","_type":"fuzz_thing","_class":"Thing"}]}`))
	a := newFuzzAPI(f)
	f.Fuzz(func(t *testing.T, route uint8, gz bool, body []byte) {
		a.openJob(t)
		r := syncFuzzRoutes[int(route)%len(syncFuzzRoutes)]
		path := jobsPath + "/" + a.job + "/" + r
		if r == "create" {
			path = jobsPath
		}
		before := a.state(t)
		status, answer := a.call(t, "POST", path, body, gz)
		a.checkAnswer(t, "POST "+r, body, status, answer, before)
	})
}

type restFuzzRoute struct{ method, path string }

func (a *fuzzAPI) restRoutes() []restFuzzRoute {
	base := "/api/v1/accounts/" + fuzzAcct
	return []restFuzzRoute{
		{"POST", base + "/entities"},
		{"POST", base + "/relationships"},
		{"PATCH", base + "/entities/" + a.entity},
		{"PATCH", base + "/relationships/" + a.relation},
		{"PUT", base + "/data-streaming"},
		{"POST", base + "/data-streaming/test-connection"},
		{"POST", "/operator/v1/accounts"},
		{"PUT", "/operator/v1/accounts/" + fuzzOther + "/entitlements"},
		{"POST", "/operator/v1/accounts/" + fuzzOther + "/api-keys"},
		// The body becomes the query string of these.
		{"GET", base + "/entities?"},
		{"GET", base + "/data-streaming/bucket-policy?"},
	}
}

func FuzzRESTBody(f *testing.F) {
	for i, s := range []string{
		`{"_key":"fuzz-rest-0001","_type":"fuzz_thing","_class":"Thing","tags":["a"]}`,
		`{"_key":"fuzz-rel-000002","_type":"fuzz_thing_has","_class":"HAS","_fromEntityKey":"fuzz-entity-0001","_toEntityKey":"fuzz-entity-0002"}`,
		`{"n":2,"gone":null,"_key":"fuzz-entity-0001"}`,
		`{"n":3,"_class":"OTHER"}`,
		`{"enabled":false,"bucketName":"fuzz-bucket","awsAccountId":"123456789012"}`,
		`{"bucketName":"fuzz-bucket","awsAccountId":"123456789012","regionConfirmed":true}`,
		`{"id":"fuzz-new-acct","entitlements":["data-streaming"]}`,
		`{"entitlements":[]}`,
		`{"role":"member"}`,
		`limit=2&type=fuzz_thing&cursor=abc`,
		`bucket=fuzz-bucket`,
	} {
		f.Add(uint8(i), []byte(s))
	}
	for _, s := range []string{`{"_key":`, `[1,2]`, `{"a":{"b":1}}`, "{\"\xff\":1}", `{"enabled":"yes"}`, `{"unknown":1}`, `cursor=%ff%00`, ``} {
		f.Add(uint8(0), []byte(s))
		f.Add(uint8(4), []byte(s))
	}
	a := newFuzzAPI(f)
	routes := a.restRoutes()
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		path := rt.path
		var send []byte
		if strings.HasSuffix(path, "?") {
			q := string(body)
			if _, err := url.ParseQuery(q); err != nil || strings.ContainsAny(q, " #\x7f") || strings.IndexFunc(q, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
				q = url.QueryEscape(q)
			}
			path += q
		} else {
			send = body
		}
		before := a.state(t)
		status, answer := a.call(t, rt.method, path, send, false)
		a.checkAnswer(t, rt.method+" "+rt.path, body, status, answer, before)
	})
}
