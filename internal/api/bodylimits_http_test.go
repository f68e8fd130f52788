package api_test

// The body limits as a client sees them: 429 and 503 answers with
// Retry-After and the Error shape, that change nothing.

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/api"
)

// heldBody hands out b, pausing after gate bytes until release is closed.
type heldBody struct {
	b       []byte
	off     int
	gate    int
	release <-chan struct{}
}

func (h *heldBody) Read(p []byte) (int, error) {
	if h.off == h.gate {
		<-h.release
		h.gate = -1
	}
	if h.off == len(h.b) {
		return 0, io.EOF
	}
	end := len(h.b)
	if h.gate > h.off {
		end = h.gate
	}
	n := copy(p, h.b[h.off:end])
	h.off += n
	return n, nil
}

// entitiesOfSize is an upload of about size bytes.
func entitiesOfSize(prefix string, size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"entities":[`)
	for i := 0; b.Len() < size-300; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"_key":"%s-%06d","_type":"test_thing","_class":"Thing","pad":%q}`, prefix, i, strings.Repeat("p", 200))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func TestBodyLimitsOverHTTP(t *testing.T) {
	e := newEnv(t)
	// A server of its own over the env's stores, whose budget the test
	// reads.
	reg := prometheus.NewRegistry()
	srv := api.New(api.Config{Graph: e.store, Log: e.store, Accounts: e.accts, Jobs: e.jobs, OperatorKey: operatorKey, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBody: 512 << 10, MaxBodyMemory: 1 << 20, MaxRequestsPerKey: 2})
	budget := func(name string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no gauge %s", name)
		return 0
	}
	e.srv = httptest.NewServer(srv)
	t.Cleanup(e.srv.Close)
	keyA := e.newAccount(t, acct)
	keyB := e.newKey(t, acct, "member")
	job := e.createJob(t, keyA, acct, map[string]any{"source": "api", "scope": "limits"})
	path := jobsPath + "/" + job["id"].(string) + "/entities"
	end := e.end(t, acct)

	// Key A holds two uploads of 500 KiB, each paused after 448 KiB.
	const gate = 448 << 10
	held := entitiesOfSize("held", 500<<10)
	release := make(chan struct{})
	// Registered after the server's cleanup, so run before it: a failing
	// test lets the held uploads end before the server closes.
	releaseHeld := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseHeld)
	var wg sync.WaitGroup
	answers := make([]int, 2)
	for i := range 2 {
		req, _ := http.NewRequest("POST", e.srv.URL+path, &heldBody{b: held, gate: gate, release: release})
		req.ContentLength = int64(len(held))
		req.Header.Set("Authorization", "Bearer "+keyA)
		req.Header.Set("Content-Type", "application/json")
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			answers[i] = res.StatusCode
		}()
	}
	// Both are in progress, their first 448 KiB read.
	waitFor(t, "key A's two uploads to be read up to their pause", func() bool { return srv.BodyBytesRead() == 2*gate })
	if used, all := budget("j1ds_http_body_budget_used_bytes"), budget("j1ds_http_body_budget_bytes"); used < 2*gate || used > all || all != 1<<20 {
		t.Errorf("body budget gauges: %v bytes used of %v, want the held %d of 1 MiB", used, all, 2*gate)
	}
	// A third body of key A waits for its slot: 429, before any of it is
	// read.
	probe := entitiesOfSize("probe", 300<<10)
	r := e.sync(t, keyA, acct, "POST", path, probe)
	wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "2 requests with a body in progress")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	// Key B is not held back by key A's limit, but the two held bodies
	// leave 128 KiB of the 1 MiB budget: 503 at its 129th KiB.
	r = e.sync(t, keyB, acct, "POST", path, probe)
	wantError(t, r, http.StatusServiceUnavailable, "SERVER_BUSY", "--max-body-memory")
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	e.untouched(t, acct, end)

	// Once the held uploads end, both keys are served again.
	releaseHeld()
	wg.Wait()
	for i, code := range answers {
		if code != http.StatusOK {
			t.Errorf("held upload %d: %d", i, code)
		}
	}
	wantStatus(t, e.sync(t, keyB, acct, "POST", path, entitiesOfSize("after-b", 300<<10)), http.StatusOK)
	wantStatus(t, e.sync(t, keyA, acct, "POST", path, entitiesOfSize("after-a", 300<<10)), http.StatusOK)
	waitFor(t, "the body budget to be given back", func() bool { return budget("j1ds_http_body_budget_used_bytes") == 0 })
}

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
