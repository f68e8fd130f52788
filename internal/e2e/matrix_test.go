package e2e

// Shared by the crash matrix (crash_test.go), the S3 fault matrix
// (fault_test.go) and the soak (soak_test.go): the short/full switch, j1ds
// serve in a child process run from a built binary, clients that ride out
// a j1ds that is down, and the end-of-run checks (j1ds verify --compare on
// a copy of the bucket, the bucket against the store's log).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/serve"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
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

// startChild runs j1ds serve in a child process from the crash tests'
// binary (crashBuild: J1DS_FAILPOINT in extraEnv arms a failpoint) on
// cfg's store, and waits until it listens (its url is empty if a failpoint
// killed it before). The child is killed when the test ends.
func startChild(t *testing.T, e *s3Env, cfg serve.Config, extraEnv ...string) *child {
	t.Helper()
	return startBinaryChild(t, e, crashBuild, cfg, extraEnv...)
}

// startBinaryChild runs j1ds serve from a binary of kind on cfg's data
// directory (or its --store), configured only as an operator would
// configure it: flags for j1ds (those of cfg that the tests set; --listen
// on port 0, --log-level info), and the AWS SDK's standard variables for
// the credentials (the writer's), the trusted CA (versitygw's) and no
// instance metadata.
// Nothing of this process's AWS_* or J1DS_* environment reaches it;
// extraEnv is added. It waits until the child listens; the child is
// killed when the test ends.
func startBinaryChild(t *testing.T, e *s3Env, kind binaryKind, cfg serve.Config, extraEnv ...string) *child {
	t.Helper()
	where := []string{"--data", cfg.Data}
	if cfg.Store != "" {
		where = []string{"--store", cfg.Store}
	}
	cmd := exec.Command(j1dsBinary(t, kind), append([]string{"serve"}, append(where,
		"--listen", "127.0.0.1:0",
		"--operator-key", cfg.OperatorKey,
		"--log-level", "info",
		"--log-retention", cfg.LogRetention.String(),
		"--log-retention-bytes", strconv.FormatInt(cfg.LogRetentionBytes, 10),
		"--log-retention-interval", cfg.LogRetentionInterval.String(),
		"--flush-interval", cfg.FlushInterval.String(),
		"--export-workers", strconv.Itoa(cfg.ExportWorkers),
		"--region", cfg.S3.Region,
		"--s3-endpoint", cfg.S3.Endpoint,
		"--part-size", strconv.FormatInt(cfg.S3.PartSize, 10),
		"--platform-aws-account-id", cfg.PlatformAccountID,
	)...)...)
	none := filepath.Join(t.TempDir(), "none")
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "AWS_") && !strings.HasPrefix(v, "J1DS_") {
			cmd.Env = append(cmd.Env, v)
		}
	}
	cmd.Env = append(cmd.Env,
		"AWS_ACCESS_KEY_ID="+s3Writer,
		"AWS_SECRET_ACCESS_KEY="+s3WriterSecret,
		"AWS_CA_BUNDLE="+e.srv.CAFile,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE="+none,
		"AWS_SHARED_CREDENTIALS_FILE="+none,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
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
		Gaps            []stream.Gap      `json:"gaps"`
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
