package api_test

// The API test harness: a real j1ds server (api.New over a Pebble store in
// t.TempDir()) behind httptest, a clock the test moves, a recorder of the
// requests the server saw, and helpers that speak the APIs over HTTP and
// read the store and its log directly to check what a request left behind.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/syncjobs"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

const (
	operatorKey = "op-key-for-the-api-tests"
	jobsPath    = "/persister/synchronization/jobs"
)

// testClock is the clock of the store and the sync jobs. It stands still
// until the test moves it, so metadata timestamps are exact.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// seenRequest is what the recorder keeps of a request.
type seenRequest struct {
	Method, Path, ContentEncoding string
}

// testStore is what the tests read of a backend beside the API.
type testStore interface {
	graph.Graph
	changelog.Reader
}

type env struct {
	srv   *httptest.Server
	store testStore
	accts accounts.Store
	jobs  *syncjobs.Service
	clock *testClock

	mu   sync.Mutex
	seen []seenRequest
}

// newEnv starts a server over a fresh store. opts adjust the API config
// (MaxBody, OperatorKey, Ready) before the server is built.
func newEnv(t *testing.T, opts ...func(*api.Config)) *env {
	t.Helper()
	return newEnvOn(t, "pebble", opts...)
}

// backends are the stores newEnvOn opens.
var backends = []string{"pebble", "postgres"}

// newEnvOn is newEnv on a backend: "pebble" (the embedded store in a
// temporary directory) or "postgres" (a fresh database of the test
// binary's PostgreSQL).
func newEnvOn(t *testing.T, backend string, opts ...func(*api.Config)) *env {
	t.Helper()
	clk := &testClock{}
	clk.Set(time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	var (
		store     testStore
		accts     accounts.Store
		jobStore  syncjobs.Store
		closeFunc func() error
	)
	switch backend {
	case "pebble":
		s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Now: clk.Now, Logger: quiet})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		store, accts, jobStore, closeFunc = s, s.Accounts(), s.Jobs(), s.Close
	case "postgres":
		_, url := localpg.Shared(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := pgstore.Open(ctx, url, pgstore.Options{Now: clk.Now, Logger: quiet})
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		store, accts, jobStore, closeFunc = s, s.Accounts(), s.Jobs(), s.Close
	default:
		t.Fatalf("no backend %q", backend)
	}
	t.Cleanup(func() {
		if err := closeFunc(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	jobs, err := syncjobs.Open(store, jobStore, syncjobs.Options{Logger: quiet, Now: clk.Now})
	if err != nil {
		t.Fatalf("open sync jobs: %v", err)
	}
	t.Cleanup(jobs.Close)

	e := &env{store: store, accts: accts, jobs: jobs, clock: clk}
	cfg := api.Config{Graph: store, Log: store, Accounts: e.accts, Jobs: jobs, OperatorKey: operatorKey, Logger: quiet}
	for _, o := range opts {
		o(&cfg)
	}
	h := api.New(cfg)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.seen = append(e.seen, seenRequest{r.Method, r.URL.Path, r.Header.Get("Content-Encoding")})
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// requests returns the recorded requests matching method and path suffix.
func (e *env) requests(method, pathSuffix string) []seenRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []seenRequest
	for _, r := range e.seen {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			out = append(out, r)
		}
	}
	return out
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string { return fmt.Sprintf("HTTP %d %s", r.Status, r.Body) }

// hdr is a request header list: name, value, name, value...
type hdr []string

// do sends a request. body is nil (none), []byte or string (sent as is),
// or any other value (sent as JSON).
func (e *env) do(t *testing.T, method, path string, body any, h hdr) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return response{res.StatusCode, res.Header, b}
}

// op calls the operator API with the operator key.
func (e *env) op(t *testing.T, method, path string, body any) response {
	t.Helper()
	return e.do(t, method, path, body, hdr{"Authorization", "Bearer " + operatorKey})
}

// sync calls the sync API the way the SDK does: bearer key and
// JupiterOne-Account header (left out when account is "").
func (e *env) sync(t *testing.T, key, account, method, path string, body any, extra ...string) response {
	t.Helper()
	h := hdr{"Authorization", "Bearer " + key}
	if account != "" {
		h = append(h, "JupiterOne-Account", account)
	}
	return e.do(t, method, path, body, append(h, extra...))
}

// rest calls the REST API with a key.
func (e *env) rest(t *testing.T, key, method, path string, body any) response {
	t.Helper()
	return e.do(t, method, path, body, hdr{"Authorization", "Bearer " + key})
}

// newAccount creates an account through the operator API and returns an
// admin key of it.
func (e *env) newAccount(t *testing.T, id string) string {
	t.Helper()
	r := e.op(t, "POST", "/operator/v1/accounts", map[string]any{"id": id, "entitlements": []string{"data-streaming"}})
	wantStatus(t, r, http.StatusCreated)
	return e.newKey(t, id, "admin")
}

// newKey creates an API key through the operator API.
func (e *env) newKey(t *testing.T, account, role string) string {
	t.Helper()
	r := e.op(t, "POST", "/operator/v1/accounts/"+account+"/api-keys", map[string]any{"role": role})
	wantStatus(t, r, http.StatusCreated)
	k, _ := decode(t, r)["key"].(string)
	if k == "" {
		t.Fatalf("create key: no key in %s", r)
	}
	return k
}

// createJob starts a sync job and returns it.
func (e *env) createJob(t *testing.T, key, account string, req map[string]any) map[string]any {
	t.Helper()
	r := e.sync(t, key, account, "POST", jobsPath, req)
	wantStatus(t, r, http.StatusOK)
	return jobOf(t, r)
}

// upload posts {"<list>": objs} to .../jobs/{id}/<list> and wants 200.
func (e *env) upload(t *testing.T, key, account, jobID, list string, objs []map[string]any) map[string]any {
	t.Helper()
	r := e.sync(t, key, account, "POST", jobsPath+"/"+jobID+"/"+list, map[string]any{list: objs})
	wantStatus(t, r, http.StatusOK)
	return jobOf(t, r)
}

// finalize finalizes a job, waits until its finalization stopped running
// (the server answers after a bounded wait, so a slow machine may see a
// job still FINALIZING) and returns the job as GET then shows it.
func (e *env) finalize(t *testing.T, key, account, jobID string, body any) map[string]any {
	t.Helper()
	if body == nil {
		body = map[string]any{}
	}
	r := e.sync(t, key, account, "POST", jobsPath+"/"+jobID+"/finalize", body)
	wantStatus(t, r, http.StatusOK)
	if id := jobOf(t, r)["id"]; id != jobID {
		t.Fatalf("finalize answered job %v, want %s", id, jobID)
	}
	return e.waitJob(t, key, account, jobID)
}

// waitJob waits for a job's finalization in this process to stop and
// returns the job from GET.
func (e *env) waitJob(t *testing.T, key, account, jobID string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.jobs.Wait(ctx, jobID); err != nil {
		t.Fatalf("wait for job %s: %v", jobID, err)
	}
	r := e.sync(t, key, account, "GET", jobsPath+"/"+jobID, nil)
	wantStatus(t, r, http.StatusOK)
	return jobOf(t, r)
}

// end returns the LSN of the account's last log entry.
func (e *env) end(t *testing.T, account string) uint64 {
	t.Helper()
	n, err := e.store.End(account)
	if err != nil {
		t.Fatalf("log end of %s: %v", account, err)
	}
	return n
}

// change is one change record of the log, decoded.
type change struct {
	LSN   uint64
	Op    string
	Kind  string
	ID    string
	Props map[string]any
	Label []string
}

// summary is "<op> <eventType> <_key> v<_version>".
func (c change) summary() string {
	return fmt.Sprintf("%s %s %v v%v", c.Op, c.Kind, c.Props["_key"], c.Props["_version"])
}

// logSince returns every change record of the account after LSN after, and
// the entries' sizes (changes per entry) in order.
func (e *env) logSince(t *testing.T, account string, after uint64) ([]change, []int) {
	t.Helper()
	entries, err := e.store.ReadLog(account, after, 1<<30, 1<<40)
	if err != nil {
		t.Fatalf("read log of %s after %d: %v", account, after, err)
	}
	var out []change
	var sizes []int
	for _, en := range entries {
		sizes = append(sizes, len(en.Changes))
		for _, c := range en.Changes {
			var rec struct {
				Operation  string         `json:"operation"`
				EventType  string         `json:"eventType"`
				Properties map[string]any `json:"properties"`
				Labels     []string       `json:"labels"`
			}
			if err := json.Unmarshal(c.Record, &rec); err != nil {
				t.Fatalf("log record at LSN %d is not JSON: %v\n%s", en.LSN, err, c.Record)
			}
			if rec.Operation != string(c.Op) || rec.EventType != c.Kind.String() || rec.Properties["_id"] != c.ID {
				t.Fatalf("log record at LSN %d disagrees with its change %c %c %s: %s", en.LSN, c.Op, c.Kind, c.ID, c.Record)
			}
			out = append(out, change{en.LSN, rec.Operation, rec.EventType, c.ID, rec.Properties, rec.Labels})
		}
	}
	return out, sizes
}

// logSummary returns the sorted summaries of the changes after LSN after.
func (e *env) logSummary(t *testing.T, account string, after uint64) []string {
	t.Helper()
	cs, _ := e.logSince(t, account, after)
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.summary()
	}
	slices.Sort(out)
	return out
}

// stored returns the object's stored state, or nil when the store has no
// object with that id (deleted objects are returned).
func (e *env) stored(t *testing.T, account, id string) map[string]any {
	t.Helper()
	_, raw, err := e.store.Get(account, id)
	if errors.Is(err, graph.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("stored object %s is not JSON: %v", id, err)
	}
	return m
}

// wantAbsent fails unless the store never held the object of scope+key.
func (e *env) wantAbsent(t *testing.T, account, scope, key string) {
	t.Helper()
	if m := e.stored(t, account, graph.ObjectID(account, scope, key)); m != nil {
		t.Errorf("object %q of scope %q should not exist, store has %v", key, scope, m)
	}
}

// untouched fails if the account's log moved past end.
func (e *env) untouched(t *testing.T, account string, end uint64) {
	t.Helper()
	if got := e.end(t, account); got != end {
		cs, _ := e.logSince(t, account, end)
		var s []string
		for _, c := range cs {
			s = append(s, c.summary())
		}
		t.Errorf("log of %s moved from LSN %d to %d: %v", account, end, got, s)
	}
}

func decode(t *testing.T, r response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r)
	}
	return m
}

func jobOf(t *testing.T, r response) map[string]any {
	t.Helper()
	j, ok := decode(t, r)["job"].(map[string]any)
	if !ok {
		t.Fatalf("answer has no job object: %s", r)
	}
	return j
}

func wantStatus(t *testing.T, r response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %s, want HTTP %d", r, status)
	}
}

// wantError checks an error answer: the status, the JSON content type, the
// exact shape {"error":{"code","message"}}, the code, and that the message
// holds every one of substrs.
func wantError(t *testing.T, r response, status int, code string, substrs ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got %s, want HTTP %d %s", r, status, code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error answer has Content-Type %q, want application/json", ct)
	}
	var shape map[string]map[string]any
	if err := json.Unmarshal(r.Body, &shape); err != nil || len(shape) != 1 || shape["error"] == nil {
		t.Fatalf("error answer is not {\"error\":{...}}: %s", r)
	}
	eb := shape["error"]
	gotCode, _ := eb["code"].(string)
	msg, _ := eb["message"].(string)
	if len(eb) != 2 || gotCode == "" || msg == "" {
		t.Fatalf("error object must hold exactly a code and a message: %s", r)
	}
	if gotCode != code {
		t.Errorf("error code %s, want %s (message %q)", gotCode, code, msg)
	}
	for _, s := range substrs {
		if !strings.Contains(msg, s) {
			t.Errorf("error message %q does not contain %q", msg, s)
		}
	}
}

// absent marks a field that must not be present in wantFields.
type absentT struct{}

var absent absentT

// wantFields compares fields of a decoded JSON object with wanted values
// (pairs name, value); values are compared as JSON, absent means the field
// must be missing.
func wantFields(t *testing.T, what string, got map[string]any, pairs ...any) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no object", what)
		return
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		name := pairs[i].(string)
		v, ok := got[name]
		if pairs[i+1] == absent {
			if ok {
				t.Errorf("%s: %s = %v, want it absent", what, name, v)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: %s missing, want %v", what, name, pairs[i+1])
			continue
		}
		if want := asJSON(t, pairs[i+1]); !reflect.DeepEqual(v, want) {
			t.Errorf("%s: %s = %v, want %v", what, name, v, want)
		}
	}
}

func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantCounts compares a job's counters with the wanted ones (pairs
// name, value).
func wantCounts(t *testing.T, job map[string]any, pairs ...any) {
	t.Helper()
	wantFields(t, fmt.Sprintf("job %v", job["id"]), job, pairs...)
}

// obj builds a graph object: key, type, class, then property pairs.
func obj(key, typ string, class any, props ...any) map[string]any {
	m := map[string]any{"_key": key, "_type": typ, "_class": class}
	for i := 0; i+1 < len(props); i += 2 {
		m[props[i].(string)] = props[i+1]
	}
	return m
}

// rel builds a relationship by keys.
func rel(key, typ, class, from, to string, props ...any) map[string]any {
	m := obj(key, typ, class, props...)
	m["_fromEntityKey"], m["_toEntityKey"] = from, to
	return m
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// keysOf returns the sorted _key values of objects.
func keysOf(items []any) []string {
	var out []string
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			k, _ := m["_key"].(string)
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// listAll pages through a REST list and returns every item.
func (e *env) listAll(t *testing.T, key, path string) []any {
	t.Helper()
	var all []any
	cursor := ""
	for range 1000 {
		p := path
		if cursor != "" {
			sep := "?"
			if strings.Contains(p, "?") {
				sep = "&"
			}
			p += sep + "cursor=" + cursor
		}
		r := e.rest(t, key, "GET", p, nil)
		wantStatus(t, r, http.StatusOK)
		m := decode(t, r)
		items, _ := m["items"].([]any)
		all = append(all, items...)
		next, _ := m["nextCursor"].(string)
		if next == "" {
			return all
		}
		cursor = next
	}
	t.Fatalf("list %s did not end", path)
	return nil
}
