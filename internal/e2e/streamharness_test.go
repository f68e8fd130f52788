package e2e

// The data streaming harness: a real versitygw over TLS (locals3) with the
// customer's side ready (an owner account, the writer j1ds signs as, a
// bucket with the seed's write-only policy), a recording proxy in front of
// it, and j1ds itself, run in-process with serve.Run (or in a child process,
// for the crash test), driven only through its HTTP APIs as an operator and
// an account administrator would. Objects are read back with versitygw's
// root client, which bypasses bucket policies.

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/serve"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// The customer's side. The writer's access key is what j1ds signs with; it
// doubles as the operator's AWS account id (versitygw names policy
// principals by access key where AWS names the role).
const (
	s3Owner        = "111122223333"
	s3OwnerSecret  = "owner-secret-0123456789"
	s3Writer       = "123456789012"
	s3WriterSecret = "writer-secret-0123456789"
	s3Stranger     = "999988887777"
	streamBucket   = "customer-bucket"
	flushInterval  = time.Second // the minimum
)

// keyRE is the object layout of DESIGN.md.
var keyRE = regexp.MustCompile(`^jupiterone/graph/cdc/accountId=([A-Za-z0-9_-]+)/year=(\d{4})/month=(\d{2})/day=(\d{2})/time=(\d{6})\.(\d{6})Z\.jsonl$`)

// s3Env is a versitygw with the owner and the writer, and a recording
// proxy in front of it that j1ds talks to.
type s3Env struct {
	srv   *locals3.Server
	proxy *locals3.Proxy
}

// startS3 starts versitygw requiring region, creates the owner and writer
// accounts and the customer's bucket with the writer's policy, and a proxy.
// Both stop when the test ends.
func startS3(t *testing.T, region string) *s3Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold build of versitygw
	defer cancel()
	srv, err := locals3.Start(ctx, locals3.Options{Dir: t.TempDir(), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, a := range [][2]string{{s3Owner, s3OwnerSecret}, {s3Writer, s3WriterSecret}} {
		if err := srv.CreateAccount(ctx, a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	proxy, err := srv.NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() }) // before srv.Close: cleanups run last-in first-out
	e := &s3Env{srv: srv, proxy: proxy}
	e.bucket(t, streamBucket, s3Owner, locals3.WriterPolicy(streamBucket, s3Writer))
	return e
}

// bucket creates a bucket owned by owner with policy (none when empty).
func (e *s3Env) bucket(t *testing.T, name, owner, policy string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.srv.CreateBucket(ctx, name, owner); err != nil {
		t.Fatal(err)
	}
	if policy != "" {
		if err := e.srv.PutBucketPolicy(ctx, name, policy); err != nil {
			t.Fatal(err)
		}
	}
}

// s3Object is an object read back from a bucket, its gzip body decoded
// into lines.
type s3Object struct {
	Key                          string
	ContentType, ContentEncoding string
	Lines                        [][]byte
}

// keys lists the keys under prefix, sorted.
func (e *s3Env) keys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	p := s3.NewListObjectsV2Paginator(e.srv.RootClient(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys
}

// get reads one object back and decodes its lines.
func (e *s3Env) get(t *testing.T, bucket, key string) s3Object {
	t.Helper()
	o, err := e.read(bucket, key)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// read is get for any goroutine: it returns its failure.
func (e *s3Env) read(bucket, key string) (s3Object, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := e.srv.RootClient().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return s3Object{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(out.Body)
	if err != nil {
		return s3Object{}, fmt.Errorf("read %s/%s: %w", bucket, key, err)
	}
	o := s3Object{Key: key, ContentType: aws.ToString(out.ContentType), ContentEncoding: aws.ToString(out.ContentEncoding)}
	if key == settingsConnectionTestKey {
		o.Lines = [][]byte{raw}
		return o, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return o, fmt.Errorf("object %s is not gzip data: %w", key, err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return o, fmt.Errorf("object %s: gunzip: %w", key, err)
	}
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return o, fmt.Errorf("object %s: %d bytes not ending in a newline", key, len(data))
	}
	o.Lines = bytes.Split(data[:len(data)-1], []byte{'\n'})
	return o, nil
}

const settingsConnectionTestKey = "jupiterone/.connection-test"

// objects reads every object under an account's prefix, sorted by key.
func (e *s3Env) objects(t *testing.T, bucket, account string) []s3Object {
	t.Helper()
	var out []s3Object
	for _, k := range e.keys(t, bucket, accountPrefix(account)) {
		out = append(out, e.get(t, bucket, k))
	}
	return out
}

func accountPrefix(account string) string {
	return "jupiterone/graph/cdc/accountId=" + account + "/"
}

// lines concatenates the lines of objects in key order.
func lines(objs []s3Object) [][]byte {
	var out [][]byte
	for _, o := range objs {
		out = append(out, o.Lines...)
	}
	return out
}

// exportRequests returns the proxy's recorded requests that write export
// objects of account (not connection tests).
func exportRequests(p *locals3.Proxy, account string) []locals3.Request {
	var out []locals3.Request
	for _, r := range p.Requests() {
		if strings.Contains(r.Path, "/"+accountPrefix(account)) {
			out = append(out, r)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// j1 is a running j1ds and a client of its APIs.
type j1 struct {
	url   string
	opKey string
	cfg   serve.Config
	http  *http.Client
	stop  func()
}

// streamConfig is the serve configuration of these tests: j1ds writes
// through the proxy, trusts versitygw's CA, signs as the writer, and
// flushes every second.
func streamConfig(t *testing.T, e *s3Env) serve.Config {
	cfg := serve.DefaultConfig()
	cfg.Data, cfg.Listen = t.TempDir(), "127.0.0.1:0"
	cfg.OperatorKey = "op-" + randomText(24)
	cfg.LogLevel = "debug"
	cfg.FlushInterval = flushInterval
	cfg.PlatformAccountID = s3Writer
	cfg.S3.Endpoint = e.proxy.URL
	cfg.S3.RootCAs = e.srv.CAPool
	cfg.S3.Credentials = credentials.NewStaticCredentialsProvider(s3Writer, s3WriterSecret, "")
	return cfg
}

// startServe runs serve in-process until the test ends (or stop). Its log
// goes to the test log when the test fails.
func startServe(t *testing.T, cfg serve.Config) *j1 {
	t.Helper()
	j, _ := startServeLogged(t, cfg)
	return j
}

// startServeLogged runs serve in-process until the test ends (or stop),
// and returns its log (JSON lines), which goes to the test log when the
// test fails.
func startServeLogged(t *testing.T, cfg serve.Config) (*j1, *testLog) {
	t.Helper()
	logs := &testLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("j1ds log:\n%s", logs.String())
		}
	})
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve.Run(ctx, cfg, log, func(a string) { addr <- a }) }()
	j := &j1{opKey: cfg.OperatorKey, cfg: cfg, http: &http.Client{Timeout: time.Minute}}
	select {
	case a := <-addr:
		j.url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	var once sync.Once
	j.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve returned %v on shutdown", err)
			}
		})
	}
	t.Cleanup(j.stop)
	return j, logs
}

// testLog collects a server's log lines.
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// call sends a JSON request with key as the bearer token and returns the
// status and body. A request that gets no answer fails the test (with
// t.Error, so call is safe in any goroutine) and returns status 0.
func (j *j1) call(t *testing.T, method, path, key string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0, nil
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, j.url+path, rd)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := j.http.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("%s %s: read answer: %v", method, path, err)
		return 0, nil
	}
	return resp.StatusCode, b
}

// must is call that fails the test unless the status is want.
func (j *j1) must(t *testing.T, want int, method, path, key string, body any) []byte {
	t.Helper()
	code, b := j.call(t, method, path, key, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	return b
}

// account creates an account (with the data-streaming entitlement when
// entitled) through the operator API and returns a new admin key of it.
func (j *j1) account(t *testing.T, id string, entitled bool) string {
	t.Helper()
	ents := []string{}
	if entitled {
		ents = append(ents, "data-streaming")
	}
	j.must(t, http.StatusCreated, "POST", "/operator/v1/accounts", j.opKey, map[string]any{"id": id, "entitlements": ents})
	return j.key(t, id, "admin")
}

// key creates an API key of account with role.
func (j *j1) key(t *testing.T, account, role string) string {
	t.Helper()
	var k struct{ Key string }
	decode(t, j.must(t, http.StatusCreated, "POST", "/operator/v1/accounts/"+account+"/api-keys", j.opKey, map[string]any{"role": role}), &k)
	return k.Key
}

// problem is an error as the APIs show it.
type problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// connTest is the answer of POST .../test-connection.
type connTest struct {
	OK    bool     `json:"ok"`
	Error *problem `json:"error"`
}

func streamingPath(account string) string { return "/api/v1/accounts/" + account + "/data-streaming" }

// testConnection runs Test Connection through the API.
func (j *j1) testConnection(t *testing.T, key, account, bucket, owner string) connTest {
	t.Helper()
	var r connTest
	decode(t, j.must(t, http.StatusOK, "POST", streamingPath(account)+"/test-connection", key,
		map[string]any{"bucketName": bucket, "awsAccountId": owner, "regionConfirmed": true}), &r)
	return r
}

// enable enables streaming as a user does: Test Connection, then save.
func (j *j1) enable(t *testing.T, key, account, bucket, owner string) {
	t.Helper()
	if r := j.testConnection(t, key, account, bucket, owner); !r.OK {
		t.Fatalf("test connection of %s to %s: %+v", account, bucket, r.Error)
	}
	j.save(t, key, account, true, bucket, owner)
}

// save PUTs the settings and checks they were applied.
func (j *j1) save(t *testing.T, key, account string, enabled bool, bucket, owner string) {
	t.Helper()
	var v streamingState
	decode(t, j.must(t, http.StatusOK, "PUT", streamingPath(account), key,
		map[string]any{"enabled": enabled, "bucketName": bucket, "awsAccountId": owner, "regionConfirmed": true}), &v)
	if v.Enabled != enabled || v.Status.Enabled != enabled {
		t.Fatalf("saved enabled=%v, the answer says %v/%v", enabled, v.Enabled, v.Status.Enabled)
	}
}

// streamingState is the answer of GET .../data-streaming, as far as the
// tests read it.
type streamingState struct {
	Enabled        bool   `json:"enabled"`
	BucketName     string `json:"bucketName"`
	AWSAccountID   string `json:"awsAccountId"`
	RequiredRegion string `json:"requiredRegion"`
	Status         struct {
		Enabled         bool       `json:"enabled"`
		LastExportKey   string     `json:"lastExportKey"`
		ObjectsExported int64      `json:"objectsExported"`
		EventsExported  int64      `json:"eventsExported"`
		PendingSince    *time.Time `json:"pendingSince"`
		Failures        int        `json:"failures"`
		LastError       *problem   `json:"lastError"`
		Gaps            []any      `json:"gaps"`
	} `json:"status"`
}

func (j *j1) state(t *testing.T, key, account string) streamingState {
	t.Helper()
	var v streamingState
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account), key, nil), &v)
	return v
}

// write is one graph change made through the REST API and the record the
// bucket must hold for it.
type write struct {
	op, kind string
	props    json.RawMessage // the object as the API answered
}

// record returns the expected export record of w, decoded.
func (w write) record(t *testing.T) map[string]any {
	t.Helper()
	var p map[string]any
	decodeNumber(t, w.props, &p)
	var labels []any
	if w.kind == "entity" {
		labels = append(labels, "Entity")
		labels = append(labels, p["_class"].([]any)...)
	} else {
		labels = append(labels, "Relationship", p["_class"])
	}
	labels = append(labels, p["_type"])
	return map[string]any{"operation": w.op, "eventType": w.kind, "properties": p, "labels": labels}
}

// create POSTs an entity or relationship (kind "entities" or
// "relationships") and returns the change.
func (j *j1) create(t *testing.T, key, account, kinds string, obj map[string]any) write {
	t.Helper()
	b := j.must(t, http.StatusCreated, "POST", "/api/v1/accounts/"+account+"/"+kinds, key, obj)
	return write{op: "c", kind: kindOf(kinds), props: b}
}

func (j *j1) patch(t *testing.T, key, account, kinds, id string, obj map[string]any) write {
	t.Helper()
	b := j.must(t, http.StatusOK, "PATCH", "/api/v1/accounts/"+account+"/"+kinds+"/"+id, key, obj)
	return write{op: "u", kind: kindOf(kinds), props: b}
}

func (j *j1) del(t *testing.T, key, account, kinds, id string) write {
	t.Helper()
	b := j.must(t, http.StatusOK, "DELETE", "/api/v1/accounts/"+account+"/"+kinds+"/"+id, key, nil)
	return write{op: "d", kind: kindOf(kinds), props: b}
}

// get reads an object (deleted ones too) as the REST API shows it.
func (j *j1) get(t *testing.T, key, account, kinds, id string) json.RawMessage {
	t.Helper()
	return j.must(t, http.StatusOK, "GET", "/api/v1/accounts/"+account+"/"+kinds+"/"+id, key, nil)
}

func kindOf(kinds string) string {
	if kinds == "entities" {
		return "entity"
	}
	return "relationship"
}

// entity is a small entity body.
func entity(key, typ string, class []string, props ...any) map[string]any {
	m := map[string]any{"_key": key, "_type": typ, "_class": class}
	for i := 0; i+1 < len(props); i += 2 {
		m[props[i].(string)] = props[i+1]
	}
	return m
}

// idOf returns the _id of an object the API answered with.
func idOf(t *testing.T, w write) string {
	t.Helper()
	var m struct {
		ID string `json:"_id"`
	}
	decode(t, w.props, &m)
	if m.ID == "" {
		t.Fatalf("no _id in %s", w.props)
	}
	return m.ID
}

// compareRecords checks, field for field, that the bucket's lines are the
// records of the writes, in order.
func compareRecords(t *testing.T, what string, got [][]byte, want []write) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d records in the bucket, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		var g map[string]any
		decodeNumber(t, got[i], &g)
		if w := want[i].record(t); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: record %d\n got %s\nwant %s", what, i, got[i], mustJSON(w))
		}
	}
}

// logState is what a stopped j1ds's data directory holds for an account:
// its log entries after the start of the current stream, and its stream
// state.
type logState struct {
	entries []changelog.Entry
	rec     settings.Record
	end     uint64
}

// readLogState opens the store of a j1ds (the data directory of a
// stopped one, or its database) and reads the account's log after the
// start of its current enabled period.
func readLogState(t *testing.T, cfg serve.Config, account string) logState {
	t.Helper()
	return readLogStateSince(t, cfg, account, false)
}

// readLogStateSince reads the log after the start of the current enabled
// period, or of the first one when fromFirstPeriod (for an account disabled
// and re-enabled with no change in between, every entry since the first
// enable must be in the bucket).
func readLogStateSince(t *testing.T, cfg serve.Config, account string, fromFirstPeriod bool) logState {
	t.Helper()
	store := openStore(t, cfg)
	defer store.close()
	return logStateOf(t, store, account, fromFirstPeriod)
}

// logStateOf is readLogStateSince on an open store.
func logStateOf(t *testing.T, store *storeView, account string, fromFirstPeriod bool) logState {
	t.Helper()
	rec, err := settings.New(store.settings, nil).Get(account)
	if err != nil {
		t.Fatal(err)
	}
	end, err := store.log.End(account)
	if err != nil {
		t.Fatal(err)
	}
	st := logState{rec: rec, end: end}
	after := rec.Stream.EnabledAtLSN
	if fromFirstPeriod && len(rec.Periods) > 0 {
		after = rec.Periods[0].StartLSN
	}
	for {
		es, err := store.log.ReadLog(account, after, 1000, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return st
		}
		st.entries = append(st.entries, es...)
		after = es[len(es)-1].LSN
	}
}

// checkAgainstLog checks the objects of an account against its log: the
// lines are the log's records byte for byte, in commit order; each object
// holds whole transactions and is keyed by its first commit time; and the
// cursor reached the log's end with no gap.
func checkAgainstLog(t *testing.T, objs []s3Object, ls logState, account string) {
	t.Helper()
	type rec struct {
		line  []byte
		entry changelog.Entry
		first bool // the first change of its transaction
	}
	var want []rec
	for _, e := range ls.entries {
		for i, c := range e.Changes {
			want = append(want, rec{line: c.Record, entry: e, first: i == 0})
		}
	}
	i := 0
	for _, o := range objs {
		if m := keyRE.FindStringSubmatch(o.Key); m == nil || m[1] != account {
			t.Errorf("key %q does not follow the layout for account %s", o.Key, account)
		}
		if o.ContentType != "application/x-ndjson" || o.ContentEncoding != "gzip" {
			t.Errorf("object %s: Content-Type %q, Content-Encoding %q", o.Key, o.ContentType, o.ContentEncoding)
		}
		if i < len(want) {
			if !want[i].first {
				t.Errorf("object %s starts inside transaction LSN %d", o.Key, want[i].entry.LSN)
			}
			tm := time.UnixMicro(want[i].entry.CommitTime).UTC()
			wantKey := fmt.Sprintf("%saccountId=%s/year=%04d/month=%02d/day=%02d/time=%s.%06dZ.jsonl",
				"jupiterone/graph/cdc/", account, tm.Year(), tm.Month(), tm.Day(), tm.Format("150405"), tm.Nanosecond()/1000)
			if o.Key != wantKey {
				t.Errorf("object %s: its first change was committed at %s, so its key is %s", o.Key, tm.Format(time.RFC3339Nano), wantKey)
			}
		}
		for _, l := range o.Lines {
			if i >= len(want) {
				t.Errorf("object %s: record beyond the log's end: %s", o.Key, l)
			} else if !bytes.Equal(l, want[i].line) {
				t.Errorf("object %s: record %d\n got %s\nwant %s", o.Key, i, l, want[i].line)
			}
			i++
		}
	}
	if i < len(want) {
		t.Errorf("%d of the log's %d records of %s are missing from the bucket", len(want)-i, len(want), account)
	}
	if ls.rec.Stream.Cursor != ls.end {
		t.Errorf("cursor %d, log end %d: not everything was exported", ls.rec.Stream.Cursor, ls.end)
	}
	if len(ls.rec.Stream.Gaps) != 0 {
		t.Errorf("gaps recorded: %+v", ls.rec.Stream.Gaps)
	}
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func decodeNumber(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// randomText returns n characters of URL-safe base64 of random bytes:
// text that gzip cannot shrink much.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range b {
		b[i] = alphabet[b[i]&63]
	}
	return string(b)
}

// syncEntities writes entities through the sync API in one PATCH job and
// waits for it to finish: its objects are applied in one transaction
// when there are at most a few hundred.
func (j *j1) syncEntities(t *testing.T, key string, entities []map[string]any) {
	t.Helper()
	var job struct {
		Job struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"job"`
	}
	const jobs = "/persister/synchronization/jobs"
	decode(t, j.must(t, http.StatusOK, "POST", jobs, key, map[string]any{"source": "api", "scope": "bulk", "syncMode": "PATCH"}), &job)
	id := job.Job.ID
	j.must(t, http.StatusOK, "POST", jobs+"/"+id+"/entities", key, map[string]any{"entities": entities})
	j.must(t, http.StatusOK, "POST", jobs+"/"+id+"/finalize", key, map[string]any{})
	waitFor(t, time.Minute, "sync job "+id+" to finish", func() bool {
		decode(t, j.must(t, http.StatusOK, "GET", jobs+"/"+id, key, nil), &job)
		return job.Job.Status == "FINISHED"
	})
}

// child is j1ds serve running in a child process from a built binary (see
// startBinaryChild), so that it can be killed and its memory is its own.
type child struct {
	*j1
	cmd    *exec.Cmd
	stderr *testLog
	done   chan struct{} // closed when the process has exited
	err    error         // cmd.Wait's error, set before done is closed
}

// spawnChild starts cmd, a j1ds serve with --listen on port 0 and its log
// (JSON, info level or below) on stderr, and waits until it listens: until
// its log says "j1ds serving" and at which address. A child whose
// failpoint (J1DS_FAILPOINT in cmd.Env) fires while it starts is returned
// without a url. The child is killed when the test ends.
func spawnChild(t *testing.T, cfg serve.Config, cmd *exec.Cmd) *child {
	t.Helper()
	var failpoints []string
	for _, v := range cmd.Env {
		if strings.HasPrefix(v, "J1DS_FAILPOINT=") {
			failpoints = append(failpoints, v)
		}
	}
	c := &child{cmd: cmd, stderr: &testLog{}, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.stderr, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
		if t.Failed() {
			t.Logf("child j1ds log (%s):\n%s", strings.Join(append(slices.Clone(c.cmd.Args), failpoints...), " "), tail(c.stderr.String(), 200))
		}
	})
	var addr string
	c.j1 = &j1{opKey: cfg.OperatorKey, cfg: cfg, http: &http.Client{Timeout: time.Minute}}
	waitFor(t, time.Minute, "the child j1ds to listen", func() bool {
		select {
		case <-c.done:
			if len(failpoints) > 0 && c.err != nil && strings.Contains(c.stderr.String(), "failpoint ") {
				return true // its failpoint fired during the start
			}
			t.Fatalf("the child j1ds exited before it listened: %v\n%s", c.err, c.stderr.String())
		default:
		}
		addr = servingAddr(c.stderr.String())
		return addr != ""
	})
	if addr != "" {
		c.url = "http://" + addr
	}
	c.stop = func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(time.Minute):
			t.Errorf("the child j1ds did not stop within a minute of SIGTERM")
			return
		}
		if c.err != nil {
			t.Errorf("the child j1ds stopped with %v", c.err)
		}
	}
	return c
}

// servingAddr returns the address of the "j1ds serving" line of a j1ds's
// JSON log, or "" before it listens.
func servingAddr(log string) string {
	for l := range strings.Lines(log) {
		var line struct{ Msg, Addr string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "j1ds serving" {
			return line.Addr
		}
	}
	return ""
}

// killed waits for the child to die of SIGKILL.
func (c *child) killed(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		t.Fatal("the child j1ds was not killed by its failpoint within a minute")
	}
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) {
		t.Fatalf("the child j1ds ended with %v, want death by SIGKILL", c.err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child j1ds ended with %v, want death by SIGKILL", c.err)
	}
}

// parallel runs fn(0..n-1) on 16 goroutines. fn must report failures
// with t.Error, not t.Fatal (which is for the test's own goroutine).
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 16 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				fn(i)
			}
		})
	}
	wg.Wait()
}

// enableOffline creates the accounts id(first) to id(n-1), each with an
// admin key, and enables their streams into target(i)'s bucket and owner
// directly in the store of a j1ds not running, as if saved earlier through
// the API (a connection test and a save per account would only slow the
// start of tests with many accounts). It returns the keys by index; those
// below first are left empty for the caller.
func enableOffline(t *testing.T, cfg serve.Config, first, n int, id func(int) string, target func(int) (bucket, owner string)) []string {
	t.Helper()
	store := openStore(t, cfg)
	defer store.close()
	as, st := store.accounts, settings.New(store.settings, nil)
	keys := make([]string, n)
	parallel(n-first, func(k int) {
		i := first + k
		a := id(i)
		bucket, owner := target(i)
		var err error
		if _, err = as.CreateAccount(a, []string{accounts.EntitlementDataStreaming}); err == nil {
			keys[i], _, err = as.CreateKey(a, accounts.RoleAdmin)
		}
		if err == nil {
			_, err = st.SaveTest(a, settings.ConnectionTest{OK: true, At: time.Now().UTC(), BucketName: bucket, AWSAccountID: owner})
		}
		if err == nil {
			_, err = st.Apply(a, settings.Settings{Enabled: true, BucketName: bucket, AWSAccountID: owner, RegionConfirmed: true},
				func() (uint64, error) { return store.log.End(a) })
		}
		if err != nil {
			t.Errorf("enable %s: %v", a, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return keys
}
