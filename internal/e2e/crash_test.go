package e2e

// The crash matrix: j1ds serve in a child process (built with failpoints)
// is SIGKILLed at each failpoint and at random moments while writers keep
// changing three accounts, and restarted on the same data directory each
// time. At the end every account passes j1ds verify --compare and its
// bucket equals its log: zero lost, zero duplicated changes.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/synth"
)

// TestCrashMatrix: three accounts change throughout: crash-rest by REST
// creates, updates, relationships and deletes; crash-synth by synth's DIFF
// sync jobs (the first one several finalize chunks long); crash-blob by
// REST writes and, on demand, a PATCH job of poorly compressible blobs
// large enough for a multipart upload (5 MiB parts). Each round starts j1ds
// with one failpoint armed and waits for it to kill the process:
//
//	sync-after-chunk      a finalize chunk committed, the job not done
//	export-after-upload   an object stored, its cursor not saved
//	export-after-part     a part of a multipart upload stored
//	settings-after-save   crash-blob disabled (or re-enabled) and saved, the exporter not told
//	kill                  SIGKILL from outside at a random moment
//
// The writers retry through the outages; an interrupted sync job is
// resumed by j1ds or run again. The short version runs each point once;
// the full one (J1DS_MATRIX=full) six times, firing at varying hits.
func TestCrashMatrix(t *testing.T) {
	t.Parallel()
	onBackends(t, testCrashMatrix)
}

func testCrashMatrix(t *testing.T, bk backend) {
	full := matrixFull(t)
	cycles, entities := 1, 300
	if full {
		cycles = 6 // a larger world would rarely finish a job between two crashes
	}
	e := startS3(t, "")
	cfg := bk.config(t, e)
	cfg.S3.PartSize = 5 << 20
	const accREST, accSynth, accBlob = "crash-rest", "crash-synth", "crash-blob"
	accountIDs := []string{accREST, accSynth, accBlob}

	c := startChild(t, e, cfg)
	keys := map[string]string{}
	for _, a := range accountIDs {
		keys[a] = c.account(t, a, true)
		c.enable(t, keys[a], a, streamBucket, s3Owner)
	}
	live := &liveURL{}
	live.set(c.url)

	// The writers.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stopWriters)
	rc := newRobustClient(live)
	rest := &restWriter{t: t, c: rc, account: accREST, key: keys[accREST], acked: map[string]int{}}
	blob := &restWriter{t: t, c: rc, account: accBlob, key: keys[accBlob], acked: map[string]int{},
		gate: &sync.Mutex{}, blobs: make(chan struct{}, 1)}
	sw := &synthWriter{t: t, live: live, account: accSynth, key: keys[accSynth], entities: entities}
	wg.Go(func() { rest.run(ctx) })
	wg.Go(func() { blob.run(ctx) })
	wg.Go(func() { sw.run(ctx) })

	// The rounds. The setup child serves the first, a random kill.
	// settings-after-save comes before export-after-part so that its wait
	// for crash-blob to catch up does not include a re-export of blobs.
	points := []string{"kill", "sync-after-chunk", "export-after-upload", "settings-after-save", "export-after-part"}
	var rounds []string
	for range cycles {
		rounds = append(rounds, points...)
	}
	blobPaused := false // crash-blob's writer held and its streaming maybe off
	restoreBlob := func(c *child) {
		if !blobPaused {
			return
		}
		// Whatever the killed save left (disabled, or enabled and not yet
		// applied), enable it again. Nothing changed in the meantime.
		if r := c.testConnection(t, keys[accBlob], accBlob, streamBucket, s3Owner); !r.OK {
			t.Fatalf("test connection: %+v", r.Error)
		}
		c.save(t, keys[accBlob], accBlob, true, streamBucket, s3Owner)
		blobPaused = false
		blob.gate.Unlock()
	}
	kills := map[string]int{}
	start := time.Now()
	var took []string
	for r, p := range rounds {
		roundStart := time.Now()
		hit := 1
		if full && (p == "sync-after-chunk" || p == "export-after-upload") {
			hit = 1 + rand.IntN(3) // these points are passed again and again
		}
		if p == "settings-after-save" {
			hit = 1 + (r/len(points))%2 // the disable, or the re-enable
		}
		if r > 0 {
			var env []string
			if p != "kill" {
				env = append(env, "J1DS_FAILPOINT="+p+":"+strconv.Itoa(hit))
			}
			c = startChild(t, e, cfg, env...)
			if c.url == "" { // killed while starting: resuming a job or an export
				c.killed(t)
				kills[p]++
				took = append(took, fmt.Sprintf("%s %.1fs (while starting)", p, time.Since(roundStart).Seconds()))
				continue
			}
			live.set(c.url)
		}
		restoreBlob(c)
		switch p {
		case "kill":
			time.Sleep(time.Duration(300+rand.IntN(2500)) * time.Millisecond)
			if err := c.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		case "export-after-part":
			select {
			case blob.blobs <- struct{}{}:
			default:
			}
		case "settings-after-save":
			// Hold crash-blob's writer and let its export catch up, so no
			// change is made while it is disabled: then every change since
			// the first enable belongs in the bucket.
			blob.gate.Lock()
			blobPaused = true
			waitFor(t, time.Minute, accBlob+" to catch up", func() bool {
				return c.matrixStatus(t, keys[accBlob], accBlob).Status.PendingSince == nil
			})
			body := map[string]any{"enabled": false, "bucketName": streamBucket, "awsAccountId": s3Owner, "regionConfirmed": true}
			code, b, err := rawCall(c.j1, "PUT", streamingPath(accBlob), keys[accBlob], body)
			if hit == 2 {
				if code != http.StatusOK {
					t.Fatalf("disable %s: %d %s %v", accBlob, code, b, err)
				}
				body["enabled"] = true
				code, b, err = rawCall(c.j1, "PUT", streamingPath(accBlob), keys[accBlob], body)
			}
			if err == nil {
				t.Fatalf("the save killed by settings-after-save was answered: %d %s", code, b)
			}
		}
		c.killed(t)
		kills[p]++
		took = append(took, fmt.Sprintf("%s %.1fs", p, time.Since(roundStart).Seconds()))
	}
	c = startChild(t, e, cfg)
	live.set(c.url)
	restoreBlob(c)
	// Keep writing on the last j1ds for a moment, then stop and let the
	// export catch up.
	time.Sleep(time.Second)
	stopWriters()
	waitCaughtUp(t, c.j1, 3*time.Minute, keys)
	crashTime := time.Since(start)

	// Every acknowledged write is in the graph.
	for _, w := range []*restWriter{rest, blob} {
		parallel(len(w.ackedIDs()), func(i int) {
			id := w.ackedIDs()[i]
			code, b := c.call(t, "GET", "/api/v1/accounts/"+w.account+"/entities/"+id, w.key, nil)
			var o struct {
				Version int `json:"_version"`
			}
			if code != http.StatusOK || json.Unmarshal(b, &o) != nil || o.Version < w.ackedVersion(id) {
				t.Errorf("%s: acknowledged version %d of %s, the graph has %d %s", w.account, w.ackedVersion(id), id, code, b)
			}
		})
	}
	// j1ds verify --compare: clean for every account.
	reports := map[string]string{}
	for _, a := range accountIDs {
		rep := verifyClean(t, e, c.j1, streamBucket, a, keys[a])
		reports[a] = fmt.Sprintf("%d objects, %d records, %d periods, compare %d matching", rep.Objects, rep.Records.Total, len(rep.Periods), rep.Compare.Matching)
	}
	if n := len(c.matrixStatus(t, keys[accBlob], accBlob).Status.Periods); n != 1+kills["settings-after-save"] {
		t.Errorf("%s has %d enabled periods, want one more per disable: %d", accBlob, n, 1+kills["settings-after-save"])
	}
	c.stop()
	// The bucket against the log: every change committed since the first
	// enable is in exactly one object, byte for byte, in commit order.
	for _, a := range accountIDs {
		checkAgainstLog(t, e.objects(t, streamBucket, a), readLogStateSince(t, cfg, a, true), a)
	}
	multipart := 0
	for _, r := range e.proxy.Requests() {
		if r.Op == "CreateMultipartUpload" {
			multipart++
		}
	}
	if multipart < kills["export-after-part"] {
		t.Errorf("%d multipart uploads, fewer than the export-after-part kills (%d)", multipart, kills["export-after-part"])
	}
	t.Logf("crash matrix: %d rounds in %s, SIGKILLs by point %v", len(rounds), crashTime.Round(time.Second), kills)
	t.Logf("rounds: %s", strings.Join(took, ", "))
	t.Logf("writes acknowledged: %s %d, %s %d (%d blob jobs); %s: %d sync jobs finished, %d attempts failed by a crash",
		accREST, rest.writes.Load(), accBlob, blob.writes.Load(), blob.blobJobs.Load(), accSynth, sw.jobs.Load(), sw.retries.Load())
	for _, a := range accountIDs {
		t.Logf("verify %s: clean; %s", a, reports[a])
	}
}

// rawCall sends a request to j and returns its answer, or the error of a
// request that got none (the process died), without failing the test.
func rawCall(j *j1, method, path, key string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequest(method, j.url+path, strings.NewReader(string(b)))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := j.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// restWriter changes an account through the REST API until stopped:
// creates (60%), updates (25%), relationships (8%) and deletes (7%) of
// entities, with a pause of 20 ms between changes. A change whose answer
// was lost to a crash is sent again, so a create may meet ALREADY_EXISTS
// and a delete NOT_FOUND. With gate set the writer holds it for each
// change; a signal on blobs makes it run a job of large blobs next.
type restWriter struct {
	t            *testing.T
	c            *robustClient
	account, key string
	gate         *sync.Mutex
	blobs        chan struct{}

	mu       sync.Mutex
	acked    map[string]int // entity id: the last version acknowledged
	writes   atomic.Int64
	blobJobs atomic.Int64
}

func (w *restWriter) ackedIDs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for id := range w.acked {
		out = append(out, id)
	}
	return out
}

func (w *restWriter) ackedVersion(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked[id]
}

func (w *restWriter) ack(b []byte) string {
	var o struct {
		ID      string `json:"_id"`
		Version int    `json:"_version"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.ID == "" {
		w.t.Errorf("%s: answer without _id: %s", w.account, b)
		return ""
	}
	w.mu.Lock()
	w.acked[o.ID] = max(w.acked[o.ID], o.Version)
	w.mu.Unlock()
	w.writes.Add(1)
	return o.ID
}

func (w *restWriter) run(ctx context.Context) {
	var liveIDs []string
	base := "/api/v1/accounts/" + w.account + "/"
	bad := 0
	unexpected := func(what string, code int, b []byte) {
		if bad++; bad <= 5 {
			w.t.Errorf("%s: %s: %d %s", w.account, what, code, b)
		}
	}
	for i := 0; ctx.Err() == nil; i++ {
		if w.gate != nil {
			w.gate.Lock()
		}
		select {
		case <-w.blobs:
			w.blobJob(ctx, i)
		default:
		}
		r := rand.Float64()
		switch {
		case len(liveIDs) < 5 || r < 0.60:
			k := fmt.Sprintf("%s-user-%06d", w.account, i)
			code, b, retried, err := w.c.call(ctx, "POST", base+"entities", w.key,
				entity(k, "test_user", []string{"User"}, "n", i, "note", randomText(64)))
			switch {
			case err != nil:
			case code == http.StatusCreated:
				if id := w.ack(b); id != "" {
					liveIDs = append(liveIDs, id)
				}
			case code == http.StatusConflict && retried: // created before the crash
			default:
				unexpected("create", code, b)
			}
		case r < 0.85:
			id := liveIDs[rand.IntN(len(liveIDs))]
			code, b, _, err := w.c.call(ctx, "PATCH", base+"entities/"+id, w.key, map[string]any{"n": i, "note": randomText(64)})
			switch {
			case err != nil:
			case code == http.StatusOK:
				w.ack(b)
			default:
				unexpected("update", code, b)
			}
		case r < 0.93:
			from, to := liveIDs[rand.IntN(len(liveIDs))], liveIDs[rand.IntN(len(liveIDs))]
			code, b, retried, err := w.c.call(ctx, "POST", base+"relationships", w.key, map[string]any{
				"_key": fmt.Sprintf("%s-knows-%06d", w.account, i), "_type": "test_user_knows_user", "_class": "KNOWS",
				"_fromEntityId": from, "_toEntityId": to, "n": i})
			switch {
			case err != nil:
			case code == http.StatusCreated:
				w.writes.Add(1)
			case code == http.StatusConflict && retried:
			default:
				unexpected("relationship", code, b)
			}
		default:
			n := rand.IntN(len(liveIDs))
			id := liveIDs[n]
			code, b, retried, err := w.c.call(ctx, "DELETE", base+"entities/"+id, w.key, nil)
			switch {
			case err != nil:
			case code == http.StatusOK:
				w.ack(b)
				liveIDs = append(liveIDs[:n], liveIDs[n+1:]...)
			case code == http.StatusNotFound && retried: // deleted before the crash
				liveIDs = append(liveIDs[:n], liveIDs[n+1:]...)
			default:
				unexpected("delete", code, b)
			}
		}
		if w.gate != nil {
			w.gate.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// blobJob writes 12 entities of 640 KiB of random text (about 7.7 MiB of
// records, 5.8 MiB of gzip: two parts of 5 MiB) in one PATCH sync job, and
// returns once the job is finished, whatever crashes come in between: a
// job whose finalize started is waited for (j1ds resumes it), one that
// lost its uploads or finalize is run again.
func (w *restWriter) blobJob(ctx context.Context, round int) {
	const jobs = "/persister/synchronization/jobs"
	var blobs []map[string]any
	for i := range 12 {
		blobs = append(blobs, entity(fmt.Sprintf("%s-blob-%06d-%02d", w.account, round, i), "test_blob", []string{"Record"}, "blob", randomText(640<<10)))
	}
	type jobAnswer struct {
		Job struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"job"`
	}
	for ctx.Err() == nil {
		var job jobAnswer
		code, b, _, err := w.c.call(ctx, "POST", jobs, w.key, map[string]any{"source": "api", "scope": "blobs", "syncMode": "PATCH"})
		if err != nil {
			return
		}
		if code != http.StatusOK || json.Unmarshal(b, &job) != nil {
			w.t.Errorf("%s: create sync job: %d %s", w.account, code, b)
			return
		}
		path := jobs + "/" + job.Job.ID
		if code, _, _, err = w.c.call(ctx, "POST", path+"/entities", w.key, map[string]any{"entities": blobs}); err != nil {
			return
		} else if code != http.StatusOK {
			continue // lost with the crash: a new job
		}
		// Whatever the answer (a retried finalize may be refused as already
		// started), the job's status says what happened.
		if _, _, _, err = w.c.call(ctx, "POST", path+"/finalize", w.key, map[string]any{}); err != nil {
			return
		}
		for ctx.Err() == nil {
			code, b, _, err = w.c.call(ctx, "GET", path, w.key, nil)
			if err != nil {
				return
			}
			if code != http.StatusOK || json.Unmarshal(b, &job) != nil {
				w.t.Errorf("%s: get sync job: %d %s", w.account, code, b)
				return
			}
			switch job.Job.Status {
			case "FINISHED":
				w.blobJobs.Add(1)
				return
			case "AWAITING_UPLOADS": // the finalize was lost: send it again
				if _, _, _, err = w.c.call(ctx, "POST", path+"/finalize", w.key, map[string]any{}); err != nil {
					return
				}
			case "ABORTED", "ERROR_BAD_DATA":
				w.t.Errorf("%s: blob job ended %s: %s", w.account, job.Job.Status, b)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// synthWriter syncs a changing synth world into an account, one DIFF job
// per step, until stopped. A job that fails (j1ds went down under it) is
// run again with the same dataset until it finishes; j1ds may meanwhile
// resume the interrupted one, which converges on the same graph.
type synthWriter struct {
	t            *testing.T
	live         *liveURL
	account, key string
	entities     int
	// seed and scope name the synth world; zero: 6 and "synth-crash".
	seed  int64
	scope string

	jobs, retries atomic.Int64
	mu            sync.Mutex
	failures      []string // the failed attempts: where, when, why
}

func (w *synthWriter) run(ctx context.Context) {
	seed, scope := w.seed, w.scope
	if seed == 0 {
		seed, scope = 6, "synth-crash"
	}
	g := synth.New(synth.Config{Seed: seed, Scope: scope, Entities: w.entities})
	hc := &http.Client{Timeout: time.Minute}
	for ctx.Err() == nil {
		ents, rels := g.Step()
		for ctx.Err() == nil {
			url := w.live.get()
			cl := &synth.Client{BaseURL: url, Account: w.account, APIKey: w.key, HTTP: hc}
			_, err := cl.Sync(ctx, g.Scope(), ents, rels)
			if err == nil {
				w.jobs.Add(1)
				break
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, synth.ErrJobFailed) && !strings.Contains(err.Error(), "ABORTED") {
				w.t.Errorf("%s: %v", w.account, err)
				return
			}
			w.retries.Add(1)
			w.mu.Lock()
			w.failures = append(w.failures, fmt.Sprintf("%s at %s: %v", url, time.Now().Format("15:04:05.000"), err))
			w.mu.Unlock()
			time.Sleep(200 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// failed returns the failed attempts so far.
func (w *synthWriter) failed() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.failures)
}
