package serve

// j1ds serve on PostgreSQL (--store), against a real server
// (internal/testbed/localpg): the generated operator key, what the
// operator sees while the database is unreachable, and that the
// connection URL's password shows nowhere.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// pgConfig is a configuration on the database at dbURL with a data
// directory that must never be created, and an S3 side that is never
// called (no account streams).
func pgConfig(t *testing.T, dbURL string) Config {
	cfg := DefaultConfig()
	cfg.Store = dbURL
	cfg.Data = filepath.Join(t.TempDir(), "never-created")
	cfg.Listen = "127.0.0.1:0"
	cfg.PlatformAccountID = "123456789012"
	cfg.S3.Endpoint = "https://127.0.0.1:1"
	cfg.S3.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "example-secret-key", "")
	cfg.LogLevel = "debug"
	t.Cleanup(func() {
		if _, err := os.Stat(cfg.Data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("with --store, the data directory %s was created (stat: %v)", cfg.Data, err)
		}
	})
	return cfg
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// running is a j1ds serve run in-process.
type running struct {
	url  string
	logs *syncBuffer
	stop func() error
}

// startRun runs serve with cfg until the test ends (or stop), its log at
// level, and waits until it listens.
func startRun(t *testing.T, cfg Config, level slog.Level) *running {
	t.Helper()
	r := &running{logs: &syncBuffer{}}
	log := slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, log, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		r.url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v\n%s", err, r.logs)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatalf("serve did not listen within 2 minutes\n%s", r.logs)
	}
	var once sync.Once
	var err error
	r.stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("serve returned %v on shutdown", err)
		}
		if t.Failed() {
			t.Logf("j1ds log:\n%s", r.logs)
		}
	})
	return r
}

// call sends a request and returns the status, the answer's headers and
// its body.
func call(t *testing.T, method, u, key string, body any) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// logLines returns the JSON log lines whose message starts with prefix.
func logLines(t *testing.T, logs, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(logs) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// TestPostgresOperatorKey: three processes start at once on a new
// database without --operator-key: exactly one generates the key and
// logs it (even at --log-level error), the others say a key exists, and
// the key opens the operator API of all three. A later start generates
// none; --operator-key, when given, is the key.
func TestPostgresOperatorKey(t *testing.T) {
	_, dbURL := localpg.Shared(t)
	var runs [3]*running
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { runs[i] = startRun(t, pgConfig(t, dbURL), slog.LevelError) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var key string
	generated := 0
	for _, r := range runs {
		for _, l := range logLines(t, r.logs.String(), "operator key generated") {
			generated++
			key, _ = l["operator_key"].(string)
		}
	}
	if generated != 1 || !strings.HasPrefix(key, "j1op_") {
		t.Fatalf("%d processes logged a generated key (last %q), want exactly one", generated, key)
	}
	for i, r := range runs {
		if code, _, b := call(t, "GET", r.url+"/operator/v1/accounts", key, nil); code != http.StatusOK {
			t.Errorf("process %d: the generated key: %d %s", i, code, b)
		}
		if code, _, _ := call(t, "GET", r.url+"/operator/v1/accounts", key+"x", nil); code != http.StatusUnauthorized {
			t.Errorf("process %d: a wrong key: %d, want 401", i, code)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}

	later := startRun(t, pgConfig(t, dbURL), slog.LevelInfo)
	if n := len(logLines(t, later.logs.String(), "operator key generated")); n != 0 {
		t.Errorf("a later start generated a key again")
	}
	if n := len(logLines(t, later.logs.String(), "operator key: the database holds")); n != 1 {
		t.Errorf("a later start logged %d lines saying a key exists, want 1", n)
	}
	if code, _, b := call(t, "GET", later.url+"/operator/v1/accounts", key, nil); code != http.StatusOK {
		t.Errorf("a later start: the generated key: %d %s", code, b)
	}
	if err := later.stop(); err != nil {
		t.Fatal(err)
	}

	cfg := pgConfig(t, dbURL)
	cfg.OperatorKey = "configured-operator-key-0123456789"
	given := startRun(t, cfg, slog.LevelInfo)
	if code, _, b := call(t, "GET", given.url+"/operator/v1/accounts", cfg.OperatorKey, nil); code != http.StatusOK {
		t.Errorf("--operator-key: %d %s", code, b)
	}
	if code, _, _ := call(t, "GET", given.url+"/operator/v1/accounts", key, nil); code != http.StatusUnauthorized {
		t.Errorf("with --operator-key, the generated key: %d, want 401", code)
	}
}

// withPassword returns dbURL with a password in it. The test servers
// trust loopback connections, so any password is accepted: what is
// tested is that it shows nowhere.
func withPassword(t *testing.T, dbURL, pw string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), pw)
	return u.String()
}

// TestPostgresUnreachable: j1ds started while its database is down waits
// for it and says so; once serving, a database outage makes /readyz
// answer 503 with the reason and every API call 503
// DATABASE_UNAVAILABLE, while the process goes on (/healthz); when the
// database is back, j1ds serves again without a restart. The password of
// the connection URL is in no log line and no answer.
func TestPostgresUnreachable(t *testing.T) {
	srv, dbURL := localpg.Own(t) // its own server, to stop: the shared one stays up
	const password = "pw-Never-Shown-7c1e"
	cfg := pgConfig(t, withPassword(t, dbURL, password))
	cfg.OperatorKey = "operator-key-for-this-test-0123"

	// Started while the database is down: it waits, then serves.
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	var r *running
	started := make(chan struct{})
	go func() {
		defer close(started)
		r = startRun(t, cfg, slog.LevelDebug)
	}()
	time.Sleep(3 * time.Second) // a few attempts to connect
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	<-started
	if t.Failed() {
		t.FailNow()
	}
	if n := len(logLines(t, r.logs.String(), "the database is unreachable; j1ds retries")); n == 0 {
		t.Errorf("the start while the database was down logged no retry")
	}
	// The store's metrics, registered by the attempt that opened it.
	if code, _, b := call(t, "GET", r.url+"/metrics", "", nil); code != http.StatusOK || !strings.Contains(string(b), "\nj1ds_log_last_lsn ") {
		t.Errorf("/metrics after a start that waited for the database: %d, j1ds_log_last_lsn missing", code)
	}

	code, _, b := call(t, "POST", r.url+"/operator/v1/accounts", cfg.OperatorKey, map[string]any{"id": "acme", "entitlements": []string{}})
	if code != http.StatusCreated {
		t.Fatalf("create account: %d %s", code, b)
	}
	var k struct{ Key string }
	_, _, b = call(t, "POST", r.url+"/operator/v1/accounts/acme/api-keys", cfg.OperatorKey, map[string]any{"role": "admin"})
	if err := json.Unmarshal(b, &k); err != nil || k.Key == "" {
		t.Fatalf("create key: %s", b)
	}
	entities := r.url + "/api/v1/accounts/acme/entities"
	entity := func(key string) map[string]any {
		return map[string]any{"_key": key, "_type": "test_user", "_class": "User"}
	}
	if code, _, b := call(t, "POST", entities, k.Key, entity("user-before")); code != http.StatusCreated {
		t.Fatalf("create before the outage: %d %s", code, b)
	}
	if code, _, b := call(t, "GET", r.url+"/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz before the outage: %d %s", code, b)
	}

	// The outage.
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	var answers []string
	code, _, b = call(t, "GET", r.url+"/readyz", "", nil)
	answers = append(answers, string(b))
	var eb struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &eb); err != nil || code != http.StatusServiceUnavailable || eb.Error.Code != "NOT_READY" ||
		!strings.Contains(eb.Error.Message, "database is unreachable") {
		t.Errorf("readyz during the outage: %d %s, want 503 NOT_READY saying the database is unreachable", code, b)
	}
	for _, c := range []struct {
		method, url string
		body        any
	}{
		{"POST", entities, entity("user-during")},
		{"GET", entities, nil},
		{"GET", r.url + "/operator/v1/accounts", nil},
	} {
		key := k.Key
		if strings.Contains(c.url, "/operator/") {
			key = cfg.OperatorKey
		}
		code, h, b := call(t, c.method, c.url, key, c.body)
		answers = append(answers, string(b))
		eb.Error.Code, eb.Error.Message = "", ""
		if err := json.Unmarshal(b, &eb); err != nil || code != http.StatusServiceUnavailable || eb.Error.Code != "DATABASE_UNAVAILABLE" ||
			!strings.Contains(eb.Error.Message, "cannot reach its database") || h.Get("Retry-After") == "" {
			t.Errorf("%s %s during the outage: %d %s (Retry-After %q), want 503 DATABASE_UNAVAILABLE with Retry-After", c.method, c.url, code, b, h.Get("Retry-After"))
		}
	}
	if code, _, b := call(t, "GET", r.url+"/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz during the outage: %d %s: the process must go on", code, b)
	}

	// Back: no restart of j1ds.
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		code, _, b := call(t, "GET", r.url+"/readyz", "", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz a minute after the database came back: %d %s", code, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _, b := call(t, "POST", entities, k.Key, entity("user-after")); code != http.StatusCreated {
		t.Errorf("create after the outage: %d %s", code, b)
	}
	code, _, b = call(t, "GET", entities, k.Key, nil)
	var list struct {
		Items []struct {
			Key string `json:"_key"`
		}
	}
	if err := json.Unmarshal(b, &list); err != nil || code != http.StatusOK {
		t.Fatalf("list after the outage: %d %s", code, b)
	}
	var keys []string
	for _, it := range list.Items {
		keys = append(keys, it.Key)
	}
	// The create refused during the outage left nothing.
	slices.Sort(keys)
	if strings.Join(keys, ",") != "user-after,user-before" {
		t.Errorf("entities after the outage: %v, want user-after and user-before", keys)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	logs := r.logs.String()
	if n := len(logLines(t, logs, "not ready: the database is unreachable")); n != 1 {
		t.Errorf("%d log lines say readiness was lost, want 1", n)
	}
	if n := len(logLines(t, logs, "ready: the database answers again")); n != 1 {
		t.Errorf("%d log lines say readiness came back, want 1", n)
	}
	for _, s := range append(answers, logs) {
		if strings.Contains(s, password) {
			t.Errorf("the password shows in %q", s)
		}
	}
	if !strings.Contains(logs, "xxxxx@127.0.0.1") {
		t.Errorf("the log does not name the database with its password redacted")
	}
}

// TestPostgresOpenErrors: a database that answers with an error (here: no
// such database) fails the start at once, saying why, and a stop while
// the database is unreachable ends the wait; neither error holds the
// password.
func TestPostgresOpenErrors(t *testing.T) {
	srv, _ := localpg.Shared(t)
	const password = "pw-Never-Shown-9d2a"
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))

	cfg := pgConfig(t, withPassword(t, srv.URL("no_such_database"), password))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	err := Run(ctx, cfg, log, nil)
	if err == nil || !strings.Contains(err.Error(), `database "no_such_database" does not exist`) || strings.Contains(err.Error(), password) {
		t.Errorf("start on a missing database: %v; want the cause, without the password", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("start on a missing database took %s: it must fail at once", d)
	}

	u, _ := url.Parse(srv.URL("postgres"))
	u.Host = "127.0.0.1:1" // nothing listens
	cfg = pgConfig(t, withPassword(t, u.String(), password))
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = Run(ctx, cfg, log, nil)
	if err == nil || !strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), password) {
		t.Errorf("start stopped while the database is unreachable: %v; want it said, without the password", err)
	}
}
