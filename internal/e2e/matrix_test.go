package e2e

// Shared by the crash matrix (crash_test.go), the S3 fault matrix
// (fault_test.go) and the soak (soak_test.go): the short/full switch, a
// serve child configured beyond what the stream tests need, clients that
// ride out a j1ds that is down, and the end-of-run checks (j1ds verify
// --compare on a copy of the bucket, the bucket against the store's log).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/serve"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/verify"
)

// matrixEnv selects the full matrices: J1DS_MATRIX=full (make matrix).
// Without it each matrix runs a shortened version and says so in the log.
const matrixEnv = "J1DS_MATRIX"

// matrixFull reports whether the full version runs, and logs which one
// does: a short run is never silently mistaken for the full one.
func matrixFull(t *testing.T) bool {
	t.Helper()
	if os.Getenv(matrixEnv) == "full" {
		t.Logf("full version (%s=full)", matrixEnv)
		return true
	}
	t.Logf("short version: fewer rounds and a smaller load; %s=full (make matrix) runs the full one", matrixEnv)
	return false
}

// matrixChildEnv names the JSON matrixChildConfig of a serve child started
// by startMatrixChild. The child is the test binary itself: init, below,
// runs serve instead of the tests.
const matrixChildEnv = "J1DS_TEST_MATRIX_CHILD"

func init() {
	if path := os.Getenv(matrixChildEnv); path != "" {
		os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
		os.Exit(serveMatrixChild(path))
	}
}

// matrixChildConfig is the serve configuration of a matrix child.
type matrixChildConfig struct {
	Data, OperatorKey, Endpoint, CAFile string
	FlushInterval                       time.Duration
	LogRetention, LogRetentionInterval  time.Duration
	LogRetentionBytes, PartSize         int64
	ExportWorkers                       int
}

// serveMatrixChild runs serve as configured by the JSON in path until
// SIGTERM, its log on stderr, and returns the exit code.
func serveMatrixChild(path string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "matrix child:", err)
		return 1
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	var c matrixChildConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return fail(err)
	}
	pem, err := os.ReadFile(c.CAFile)
	if err != nil {
		return fail(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cfg := serve.DefaultConfig()
	cfg.Data, cfg.Listen, cfg.OperatorKey = c.Data, "127.0.0.1:0", c.OperatorKey
	cfg.FlushInterval, cfg.PlatformAccountID = c.FlushInterval, s3Writer
	if c.LogRetention > 0 {
		cfg.LogRetention = c.LogRetention
	}
	if c.LogRetentionBytes > 0 {
		cfg.LogRetentionBytes = c.LogRetentionBytes
	}
	if c.LogRetentionInterval > 0 {
		cfg.LogRetentionInterval = c.LogRetentionInterval
	}
	if c.PartSize > 0 {
		cfg.S3.PartSize = c.PartSize
	}
	if c.ExportWorkers > 0 {
		cfg.ExportWorkers = c.ExportWorkers
	}
	cfg.S3.Endpoint, cfg.S3.RootCAs = c.Endpoint, pool
	cfg.S3.Credentials = credentials.NewStaticCredentialsProvider(s3Writer, s3WriterSecret, "")
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := serve.Run(ctx, cfg, log, nil); err != nil {
		return fail(err)
	}
	return 0
}

// startMatrixChild runs serve in a child process on cfg's data directory
// with the matrix settings of mc (its Data, OperatorKey, Endpoint and
// FlushInterval are taken from cfg), extraEnv added to its environment,
// and waits until it listens (its url is empty if a failpoint killed it
// before). The child is killed when the test ends.
func startMatrixChild(t *testing.T, e *s3Env, cfg serve.Config, mc matrixChildConfig, extraEnv ...string) *child {
	t.Helper()
	mc.Data, mc.OperatorKey, mc.Endpoint, mc.FlushInterval = cfg.Data, cfg.OperatorKey, cfg.S3.Endpoint, cfg.FlushInterval
	mc.CAFile = e.srv.CAFile
	b, err := json.Marshal(mc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), matrixChildEnv+"="+path), extraEnv...)
	return spawnChild(t, cfg, cmd)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... %d lines before", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// liveURL is the base URL of whichever j1ds is up now; clients that ride
// out restarts read it before each attempt.
type liveURL struct{ p atomic.Pointer[string] }

func (u *liveURL) set(s string) { u.p.Store(&s) }
func (u *liveURL) get() string  { return *u.p.Load() }

// robustClient calls j1ds through restarts: a request that gets no answer
// (the process is down or died mid-request) or a 502/503 is sent again,
// to the current URL, until it is answered or ctx ends.
type robustClient struct {
	url  *liveURL
	http *http.Client
}

func newRobustClient(u *liveURL) *robustClient {
	return &robustClient{url: u, http: &http.Client{Timeout: 30 * time.Second}}
}

// errStopped is returned when ctx ended before an answer came.
var errStopped = errors.New("stopped before j1ds answered")

// call sends a JSON request with key as the bearer token and returns the
// status and body of the first answer. retried reports whether an earlier
// attempt went unanswered, so the caller knows the change may already be
// committed.
func (c *robustClient) call(ctx context.Context, method, path, key string, body any) (code int, out []byte, retried bool, err error) {
	var raw []byte
	if body != nil {
		if raw, err = json.Marshal(body); err != nil {
			return 0, nil, false, err
		}
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return 0, nil, true, errStopped
			case <-time.After(100 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, c.url.get()+path, bytes.NewReader(raw))
		if err != nil {
			return 0, nil, attempt > 0, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := c.http.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, true, errStopped
			}
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable {
			continue
		}
		return resp.StatusCode, b, attempt > 0, nil
	}
}

// matrixStatus is the data-streaming status as the matrices read it.
type matrixStatus struct {
	Enabled bool `json:"enabled"`
	Status  struct {
		Enabled         bool              `json:"enabled"`
		ObjectsExported int64             `json:"objectsExported"`
		EventsExported  int64             `json:"eventsExported"`
		PendingSince    *time.Time        `json:"pendingSince"`
		LagSeconds      float64           `json:"lagSeconds"`
		Failures        int               `json:"failures"`
		LastError       *problem          `json:"lastError"`
		Gaps            []settings.Gap    `json:"gaps"`
		Periods         []settings.Period `json:"periods"`
	} `json:"status"`
}

func (j *j1) matrixStatus(t *testing.T, key, account string) matrixStatus {
	t.Helper()
	var s matrixStatus
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account), key, nil), &s)
	return s
}

// waitCaughtUp waits until nothing is pending in any of the accounts and
// the log has stopped growing (a sync job resumed after a restart may
// still be finalizing when the writers stop).
func waitCaughtUp(t *testing.T, j *j1, timeout time.Duration, keys map[string]string) {
	t.Helper()
	var lastLSN float64 = -1
	stableSince := time.Now()
	waitFor(t, timeout, "the export to catch up", func() bool {
		lsn := j.metric(t, "j1ds_log_last_lsn")
		if lsn != lastLSN {
			lastLSN, stableSince = lsn, time.Now()
		}
		if time.Since(stableSince) < 2*time.Second {
			return false
		}
		for a, k := range keys {
			if st := j.matrixStatus(t, k, a); st.Status.Enabled && st.Status.PendingSince != nil {
				return false
			}
		}
		return true
	})
}

// metric reads one unlabelled sample from /metrics.
func (j *j1) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := j.http.Get(j.url + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s in /metrics", name)
	return math.NaN()
}

// copyBucket copies an account's objects into a new local directory laid
// out like the bucket, as aws s3 sync would.
func copyBucket(t *testing.T, e *s3Env, bucket, account string) string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range e.keys(t, bucket, accountPrefix(account)) {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, rawObjectOf(t, e, bucket, k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// rawObjectOf is rawObject for any bucket.
func rawObjectOf(t *testing.T, e *s3Env, bucket, key string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.srv.RootClient().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runVerifyCompare runs j1ds verify --compare --json on a copy of the account's
// objects, against the running j1ds, and returns the exit code and the
// report.
func runVerifyCompare(t *testing.T, e *s3Env, j *j1, bucket, account, key string) (int, verify.Report, string) {
	t.Helper()
	dir := copyBucket(t, e, bucket, account)
	code, out, stderr := runVerifyCLI(t, "--account", account, "--dir", dir, "--url", j.url, "--key", key, "--compare", "--json")
	var rep verify.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("verify %s: exit %d, no JSON report: %v\n%s\n%s", account, code, err, out, stderr)
	}
	return code, rep, out
}

// verifyClean runs j1ds verify --compare for an account and fails the test
// unless it exits 0 with a clean report whose compare found the store's
// objects in the bucket. It returns the report.
func verifyClean(t *testing.T, e *s3Env, j *j1, bucket, account, key string) verify.Report {
	t.Helper()
	code, rep, out := runVerifyCompare(t, e, j, bucket, account, key)
	if code != 0 || !rep.Clean() {
		t.Errorf("j1ds verify --compare %s: exit %d, want 0\n%s", account, code, out)
	}
	if c := rep.Compare; c == nil || c.Missing != 0 || c.Extra != 0 || c.Differ != 0 || c.Live != c.Matching {
		t.Errorf("verify %s: compare %+v, want every object of the store in the bucket and nothing else", account, rep.Compare)
	}
	return rep
}
