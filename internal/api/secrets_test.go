package api_test

// Secrets stay secret: a realistic session (accounts and keys, a sync, the
// REST API, Data Streaming settings, a connection test that fails, and
// requests with wrong, revoked and misplaced keys) runs with every
// component logging at debug level into one buffer and registering its
// metrics on one registry. No API key secret, the operator key or the AWS
// secret key appears in the logs, in any answer but the one that creates
// a key, in the metrics, in /openapi.json or in the settings page.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/syncjobs"
	"github.com/j1ds/j1ds/internal/web"
)

const (
	secretOperatorKey = "op-SECRET-7f3c9a1e5b2d4c6e8a0b"
	fakeAWSAccessKey  = "AKIAJ1DSFAKEACCESS01"
	fakeAWSSecretKey  = "j1dsFakeAWSSecret/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

// lockedBuffer is a log sink shared by every component.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fakeS3 answers every request as S3 does when the bucket policy does not
// let j1ds write, so connection tests fail through the real S3 client.
func fakeS3(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>J1DSREQ</RequestId><HostId>j1ds</HostId></Error>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSecretsNeverLeak(t *testing.T) {
	logs := &lockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()

	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	jobs, err := syncjobs.Open(store, store.Jobs(), syncjobs.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(jobs.Close)
	s3c, err := s3dest.New(context.Background(), s3dest.Config{
		Endpoint: fakeS3(t).URL, AllowInsecureEndpoint: true,
		Credentials: credentials.NewStaticCredentialsProvider(fakeAWSAccessKey, fakeAWSSecretKey, ""),
		Registerer:  reg, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := settings.New(store.Settings(), nil)
	stub := &streamStub{}
	h := api.New(api.Config{
		Graph: store, Log: store, Accounts: store.Accounts(), Jobs: jobs,
		OperatorKey: secretOperatorKey, Logger: log, Registerer: reg, Gatherer: reg,
		Streaming: &api.Streaming{
			Settings: st, Exporter: stub,
			TestConnection: func(ctx context.Context, bucket, owner string, body []byte) error {
				return s3c.TestConnection(ctx, s3bucket.Target{Bucket: bucket, Owner: owner}, body)
			},
			Explain: func(err error, bucket, owner string) stream.Problem {
				e := s3dest.Classify(err, s3bucket.Target{Bucket: bucket, Owner: owner}, s3c.Region())
				return stream.Problem{Code: e.Code, Message: e.Message, ActionBy: e.ActionBy}
			},
			RequiredRegion: s3c.Region(), PlatformAccountID: "111122223333",
			FlushInterval: time.Minute, Now: time.Now,
		},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	var answers bytes.Buffer // every answer but those that create a key
	secrets := []string{secretOperatorKey, fakeAWSSecretKey}
	call := func(method, path, auth string, body any, hd ...string) []byte {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hd); i += 2 {
			req.Header.Set(hd[i], hd[i+1])
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 500 {
			t.Errorf("%s %s: HTTP %d %s", method, path, res.StatusCode, b)
		}
		for k, vs := range res.Header {
			answers.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		return b
	}
	op := "Bearer " + secretOperatorKey
	keyIDs := map[string]string{}
	newKey := func(acct, role string) string {
		t.Helper()
		b := call("POST", "/operator/v1/accounts/"+acct+"/api-keys", op, map[string]any{"role": role})
		var k struct{ Key, ID string }
		if err := json.Unmarshal(b, &k); err != nil || k.Key == "" {
			t.Fatalf("create key: %s", b)
		}
		secrets = append(secrets, k.Key)
		keyIDs[k.Key] = k.ID
		return k.Key
	}
	record := func(b []byte) { answers.Write(b) }

	// Operator: accounts and keys.
	record(call("POST", "/operator/v1/accounts", op, map[string]any{"id": "secret-acct", "entitlements": []string{"data-streaming"}}))
	record(call("POST", "/operator/v1/accounts", op, map[string]any{"id": "secret-other", "entitlements": []string{}}))
	admin := newKey("secret-acct", "admin")
	member := newKey("secret-acct", "member")
	other := newKey("secret-other", "admin")
	revoked := newKey("secret-acct", "member")
	record(call("GET", "/operator/v1/accounts/secret-acct/api-keys", op, nil))
	record(call("DELETE", "/operator/v1/accounts/secret-acct/api-keys/"+keyIDs[revoked], op, nil))

	// Sync with a member key.
	bearer := func(k string) string { return "Bearer " + k }
	jb := call("POST", jobsPath, bearer(member), map[string]any{"source": "api", "scope": "secrets"}, "JupiterOne-Account", "secret-acct")
	record(jb)
	var job struct{ Job struct{ ID string } }
	_ = json.Unmarshal(jb, &job)
	record(call("POST", jobsPath+"/"+job.Job.ID+"/entities", bearer(member), map[string]any{"entities": []any{obj("secret-thing-0001", "secret_thing", "Thing")}}, "JupiterOne-Account", "secret-acct"))
	record(call("POST", jobsPath+"/"+job.Job.ID+"/finalize", bearer(member), map[string]any{}, "JupiterOne-Account", "secret-acct"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := jobs.Wait(ctx, job.Job.ID); err != nil {
		t.Fatal(err)
	}

	// REST with the admin key.
	base := "/api/v1/accounts/secret-acct"
	eb := call("POST", base+"/entities", bearer(admin), obj("secret-thing-0002", "secret_thing", "Thing", "n", 1))
	record(eb)
	id := jsonField(eb, "_id")
	record(call("PATCH", base+"/entities/"+id, bearer(admin), map[string]any{"n": 2}))
	record(call("GET", base+"/entities", bearer(admin), nil))
	record(call("DELETE", base+"/entities/"+id, bearer(admin), nil))

	// Data Streaming: a failing connection test through the S3 client,
	// settings, the policy.
	tb := call("POST", base+"/data-streaming/test-connection", bearer(admin), map[string]any{"bucketName": "secret-bucket", "awsAccountId": "123456789012", "regionConfirmed": true})
	record(tb)
	var res struct {
		OK    bool
		Error *stream.Problem
	}
	if err := json.Unmarshal(tb, &res); err != nil || res.OK || res.Error == nil {
		t.Fatalf("the connection test should fail: %s", tb)
	}
	record(call("PUT", base+"/data-streaming", bearer(admin), map[string]any{"enabled": false, "bucketName": "secret-bucket", "awsAccountId": "123456789012"}))
	record(call("GET", base+"/data-streaming", bearer(admin), nil))
	record(call("GET", base+"/data-streaming/bucket-policy?bucket=secret-bucket", bearer(admin), nil))

	// Wrong, revoked and misplaced keys.
	for _, c := range []struct {
		method, path, auth string
		hd                 []string
	}{
		{"GET", base + "/entities", bearer(revoked), nil},
		{"GET", base + "/entities", bearer(admin + "x"), nil},
		{"GET", base + "/entities", bearer(admin[:len(admin)-1]), nil},
		{"GET", base + "/entities", "Basic " + admin, nil},
		{"GET", base + "/entities", admin, nil},
		{"GET", base + "/entities", bearer(other), nil},
		{"GET", base + "/entities", bearer(secretOperatorKey), nil},
		{"GET", base + "/data-streaming", bearer(member), nil},
		{"GET", "/operator/v1/accounts", bearer(admin), nil},
		{"GET", "/operator/v1/accounts", bearer(secretOperatorKey + "x"), nil},
		{"GET", "/operator/v1/accounts", "Basic " + secretOperatorKey, nil},
		// The key where the account id goes.
		{"GET", "/api/v1/accounts/" + admin + "/entities", bearer(admin), nil},
		{"POST", jobsPath, bearer(admin), []string{"JupiterOne-Account", admin}},
		{"POST", jobsPath, bearer(member), []string{"JupiterOne-Account", other}},
		{"GET", "/operator/v1/accounts/" + secretOperatorKey, op, nil},
	} {
		var body any
		if c.method == "POST" {
			body = map[string]any{"source": "api"}
		}
		record(call(c.method, c.path, c.auth, body, c.hd...))
	}

	// Everything the server exposes.
	var exposed bytes.Buffer
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&exposed, mf); err != nil {
			t.Fatal(err)
		}
	}
	metricsText := exposed.String()
	for _, p := range []string{"/metrics", "/openapi.json", web.Path, "/settings/assets/app.js", "/settings/assets/app.css", "/"} {
		exposed.Write(call("GET", p, "", nil))
	}
	if !strings.Contains(metricsText, "j1ds_http_requests_total") {
		t.Fatalf("the registry has no API metrics:\n%.2000s", metricsText)
	}
	if logs.String() == "" {
		t.Fatal("nothing was logged")
	}
	for name, text := range map[string]string{"logs": logs.String(), "answers": answers.String(), "metrics, openapi.json and the page": exposed.String()} {
		for _, s := range secrets {
			// The whole secret, or a long piece of it (a truncated echo).
			for _, piece := range []string{s, s[len(s)-20:], s[:20]} {
				if strings.Contains(text, piece) {
					i := strings.Index(text, piece)
					t.Errorf("%s hold a secret (%q...): ...%s...", name, piece[:8], text[max(0, i-200):min(len(text), i+len(piece)+50)])
					break
				}
			}
		}
	}
	// Nor does anything exposed hold a string shaped like a key.
	if m := keyShape.FindString(exposed.String()); m != "" {
		t.Errorf("exposed text holds a key-shaped string %q", m)
	}
}

// keyShape matches an API key secret: j1ds_ and 43 base64url characters.
var keyShape = regexp.MustCompile(`j1ds_[A-Za-z0-9_-]{43}`)
