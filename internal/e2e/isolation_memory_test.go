package e2e

// Memory stays bounded whatever the requests: a flood of request bodies
// (gzip bombs, gzip bodies of a high but allowed ratio, large plain bodies,
// from several keys at once) against the real j1ds serve binary, whose
// peak RSS is read from /proc.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/serve"
)

// memoryHeadroom is how far above its idle RSS j1ds may go under any mix
// of requests.
const memoryHeadroom = 256 << 20

// procStatus returns a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the status of j1ds: %v", err)
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", field, l)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// startPlainServe runs the operator's build of j1ds serve (no race
// detector, whose shadow memory would swamp the figures) with its default
// limits, on a data directory of its own.
func startPlainServe(t *testing.T) *child {
	t.Helper()
	cfg := serve.DefaultConfig()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	cfg.OperatorKey = "op-" + randomText(24)
	cmd := exec.Command(j1dsBinary(t, operatorBuild), "serve", "--data", cfg.Data, "--listen", "127.0.0.1:0",
		"--operator-key", cfg.OperatorKey, "--log-level", "info", "--platform-aws-account-id", "123456789012")
	none := filepath.Join(t.TempDir(), "none")
	for _, v := range os.Environ() {
		if !strings.HasPrefix(v, "AWS_") && !strings.HasPrefix(v, "J1DS_") {
			cmd.Env = append(cmd.Env, v)
		}
	}
	cmd.Env = append(cmd.Env, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none)
	return spawnChild(t, cfg, cmd)
}

// floodAnswer is what one request of the flood got.
type floodAnswer struct {
	what       string
	status     int
	code       string
	retryAfter string
	err        error
}

// gatedBody hands out b, pausing at gate until release is closed; it
// reports once (settle) when it reaches the gate.
type gatedBody struct {
	b       []byte
	off     int
	gate    int
	release <-chan struct{}
	settle  func()
}

func (g *gatedBody) Read(p []byte) (int, error) {
	if g.off == g.gate {
		g.settle()
		<-g.release
		g.gate = -1
	}
	if g.off == len(g.b) {
		return 0, io.EOF
	}
	end := len(g.b)
	if g.gate > g.off {
		end = g.gate
	}
	n := copy(p, g.b[g.off:end])
	g.off += n
	return n, nil
}

// flood sends requests and gathers their answers.
type flood struct {
	t       *testing.T
	url     string
	client  *http.Client
	release chan struct{}
	settled sync.WaitGroup // each request: answered, or its body at its gate
	done    sync.WaitGroup // each request: answered
	mu      sync.Mutex
	answers []floodAnswer
}

// send posts body to path with key; gate >= 0 pauses the body there
// until release; chunked sends it without its length.
func (f *flood) send(what, key, account, path string, body []byte, gz bool, gate int, chunked bool) {
	f.settled.Add(1)
	f.done.Add(1)
	var once sync.Once
	settle := func() { once.Do(f.settled.Done) }
	var rd io.Reader = bytes.NewReader(body)
	if gate >= 0 {
		rd = &gatedBody{b: body, gate: gate, release: f.release, settle: settle}
	}
	req, err := http.NewRequest("POST", f.url+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	if chunked {
		req.ContentLength = -1
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("JupiterOne-Account", account)
	req.Header.Set("Content-Type", "application/json")
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	go func() {
		defer f.done.Done()
		defer settle()
		a := floodAnswer{what: what}
		res, err := f.client.Do(req)
		if err != nil {
			a.err = err
		} else {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var e struct{ Error struct{ Code string } }
			_ = json.Unmarshal(b, &e)
			a.status, a.code, a.retryAfter = res.StatusCode, e.Error.Code, res.Header.Get("Retry-After")
		}
		f.mu.Lock()
		f.answers = append(f.answers, a)
		f.mu.Unlock()
	}()
}

// uploadBody is a sync upload of entities of about size bytes in all.
func uploadBody(prefix string, size int, pad func(i int) string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"entities":[`)
	for i := 0; b.Len() < size-4096; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"_key":"%s-%06d","_type":"flood_thing","_class":"Thing","pad":%q}`, prefix, i, pad(i))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestMemoryBoundedUnderBodyFlood: j1ds's peak RSS stays within 256 MiB of
// its idle figure under 16 gzip bombs at once and then under a flood of
// large plain and gzip bodies from several keys; the requests it cannot
// hold get 429 (the key has too many in progress) or 503 (the memory
// budget is spent) with Retry-After, /healthz answers meanwhile, and a
// normal upload succeeds afterwards.
func TestMemoryBoundedUnderBodyFlood(t *testing.T) {
	c := startPlainServe(t)
	pid := c.cmd.Process.Pid
	const jobs = "/persister/synchronization/jobs"
	type tenant struct{ account, key, job string }
	newTenant := func(id string) tenant {
		c.account(t, id, false)
		key := c.key(t, id, "member")
		var j struct{ Job struct{ ID string } }
		decode(t, c.must(t, http.StatusOK, "POST", jobs, key, map[string]any{"source": "api", "scope": "flood"}), &j)
		return tenant{id, key, j.Job.ID}
	}
	tenants := map[string]tenant{}
	for _, id := range []string{"flood-a", "flood-b", "flood-c", "flood-d", "flood-e", "flood-f"} {
		tenants[id] = newTenant(id)
	}
	// The bombs' keys: 16 keys of one account, so that no per-key limit
	// stops them before their bodies are read.
	var bombKeys []string
	for range 16 {
		bombKeys = append(bombKeys, c.key(t, "flood-a", "member"))
	}
	idle := procStatus(t, pid, "VmRSS")
	// Reset the peak (VmHWM) to the present RSS: the start may have gone
	// higher than idle.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS of j1ds: %v", err)
	}
	t.Logf("idle RSS %d MiB", idle>>20)

	newFlood := func() *flood {
		return &flood{t: t, url: c.url, client: &http.Client{Timeout: 2 * time.Minute}, release: make(chan struct{})}
	}

	// 1. The probe: 16 gzip bodies of a few KiB, 32 MiB once decoded.
	bomb := gzipped(t, append(append([]byte(`{"entities":[{"_key":"bomb","_type":"flood_thing","_class":"Thing","pad":"`), bytes.Repeat([]byte("0"), 32<<20-300)...), `"}]}`...))
	if len(bomb) > 64<<10 {
		t.Fatalf("test setup: the bomb is %d bytes", len(bomb))
	}
	f := newFlood()
	a := tenants["flood-a"]
	for i, key := range bombKeys {
		f.send(fmt.Sprintf("bomb %d", i), key, a.account, jobs+"/"+a.job+"/entities", bomb, true, -1, false)
	}
	f.done.Wait()
	for _, ans := range f.answers {
		if ans.err != nil || ans.status != http.StatusRequestEntityTooLarge || ans.code != "GZIP_RATIO_TOO_HIGH" {
			t.Errorf("%s: %d %s %v, want 413 GZIP_RATIO_TOO_HIGH", ans.what, ans.status, ans.code, ans.err)
		}
	}
	bombPeak := procStatus(t, pid, "VmHWM")
	t.Logf("peak RSS under 16 gzip bombs of %d bytes (32 MiB decoded): %d MiB", len(bomb), bombPeak>>20)
	if bombPeak > idle+memoryHeadroom {
		t.Errorf("peak RSS %d MiB under the gzip bombs, more than idle %d MiB + 256 MiB", bombPeak>>20, idle>>20)
	}

	// 2. The flood. Plain bodies of 30 MiB (under the 32 MiB --max-body)
	// and gzip bodies of 30 MiB at a ratio under 100.
	plain := uploadBody("plain", 30<<20, func(int) string { return randomText(3200) })
	dense := uploadBody("dense", 30<<20, func(int) string { return randomText(60) + strings.Repeat("z", 3140) })
	denseGz := gzipped(t, dense)
	if r := len(dense) / len(denseGz); r < 20 || r >= 100 {
		t.Fatalf("test setup: the gzip bodies expand %d times, want 20 to 99", r)
	}
	f = newFlood()
	// One key with 6 bodies of 4 MiB held at 1 MiB: 4 are read (the
	// per-key limit), 2 get 429.
	e := tenants["flood-e"]
	small4 := uploadBody("small", 4<<20, func(int) string { return randomText(3200) })
	for i := range 6 {
		f.send(fmt.Sprintf("flood-e plain %d", i), e.key, e.account, jobs+"/"+e.job+"/entities", small4, false, 1<<20, false)
	}
	waitFor(t, time.Minute, "2 of 6 bodies of one key to get 429", func() bool {
		return f.count("flood-e", http.StatusTooManyRequests) >= 2
	})
	// Four keys with 4 bodies each held at 24 MiB, two of them of unknown
	// length (chunked): 384 MiB wanted at once, far more than the budget;
	// and a key sending gzip bodies.
	for _, id := range []string{"flood-a", "flood-b", "flood-c", "flood-d"} {
		tn := tenants[id]
		for i := range 4 {
			f.send(fmt.Sprintf("%s plain %d", id, i), tn.key, tn.account, jobs+"/"+tn.job+"/entities", plain, false, 24<<20, i%2 == 0)
		}
	}
	ff := tenants["flood-f"]
	for i := range 4 {
		f.send(fmt.Sprintf("flood-f gzip %d", i), ff.key, ff.account, jobs+"/"+ff.job+"/entities", denseGz, true, -1, false)
	}
	f.settled.Wait()
	// Meanwhile j1ds answers /healthz.
	if code, b := c.call(t, "GET", "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz during the flood: %d %s", code, b)
	}
	close(f.release)
	f.done.Wait()
	peak := procStatus(t, pid, "VmHWM")
	counts := map[string]int{}
	for _, ans := range f.answers {
		counts[fmt.Sprintf("%d %s", ans.status, ans.code)]++
		switch {
		case ans.err != nil:
			t.Errorf("%s: no answer: %v", ans.what, ans.err)
		case ans.status == http.StatusOK:
		case ans.status == http.StatusTooManyRequests && ans.code == "TOO_MANY_REQUESTS" && ans.retryAfter != "":
		case ans.status == http.StatusServiceUnavailable && ans.code == "SERVER_BUSY" && ans.retryAfter != "":
		default:
			t.Errorf("%s: %d %s (Retry-After %q), want 200, or 429 TOO_MANY_REQUESTS or 503 SERVER_BUSY with Retry-After", ans.what, ans.status, ans.code, ans.retryAfter)
		}
	}
	t.Logf("flood answers: %v; peak RSS %d MiB (idle %d MiB)", counts, peak>>20, idle>>20)
	if n := f.count("flood-e", http.StatusTooManyRequests); n != 2 {
		t.Errorf("%d of 6 bodies of one key held at once got 429, want 2 (4 in progress at most)", n)
	}
	if f.count("", http.StatusServiceUnavailable) == 0 {
		t.Errorf("no request of the flood got 503, yet they wanted far more than the budget at once")
	}
	if peak > idle+memoryHeadroom {
		t.Errorf("peak RSS %d MiB under the flood, more than idle %d MiB + 256 MiB", peak>>20, idle>>20)
	}

	// 3. Afterwards a normal upload succeeds, and so does one of the
	// largest size, within the same bound.
	for _, body := range [][]byte{uploadBody("after", 64<<10, func(int) string { return "x" }), plain} {
		code, b := c.call(t, "POST", jobs+"/"+e.job+"/entities", e.key, json.RawMessage(body))
		if code != http.StatusOK {
			t.Errorf("an upload of %d bytes after the flood: %d %s", len(body), code, b)
		}
	}
	if peak := procStatus(t, pid, "VmHWM"); peak > idle+memoryHeadroom {
		t.Errorf("peak RSS %d MiB after an upload of %d bytes, more than idle %d MiB + 256 MiB", peak>>20, len(plain), idle>>20)
	} else {
		t.Logf("peak RSS after an upload of %d bytes: %d MiB", len(plain), peak>>20)
	}
	if code, b := c.call(t, "GET", "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("/healthz after the flood: %d %s", code, b)
	}
}

// count returns how many answers of requests named with prefix had
// status.
func (f *flood) count(prefix string, status int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.answers {
		if a.status == status && strings.HasPrefix(a.what, prefix) {
			n++
		}
	}
	return n
}
