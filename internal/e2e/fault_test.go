package e2e

// The S3 fault matrix: faults injected by the proxy in front of versitygw
// while writers keep changing accounts; an outage longer than the log's
// retention, which must show as exactly one gap with exact bounds; and a
// full data directory at the API.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
	"github.com/j1ds/j1ds/internal/verify"
)

// isExport matches the requests that write export objects.
func isExport(r *http.Request) bool { return strings.Contains(r.URL.Path, "/jupiterone/graph/cdc/") }

// TestS3FaultMatrix: while a REST writer and a synth writer keep changing
// two accounts, S3 (through the proxy) answers every export request with
// 503 SlowDown, then 500 InternalError, then resets the connections, then
// answers slowly (under the client's timeout), then not in time (past its
// response-header timeout), then flaps between these, each for a span,
// with a healthy span between. The log's retention (by age) is longer
// than the run, so nothing may be lost:
// afterwards the status shows no error and no gap, j1ds verify --compare
// is clean and each bucket equals its account's log.
func TestS3FaultMatrix(t *testing.T) {
	t.Parallel()
	onBackends(t, testS3FaultMatrix)
}

func testS3FaultMatrix(t *testing.T, bk backend) {
	full := matrixFull(t)
	span := 1500 * time.Millisecond
	if full {
		span = 20 * time.Second
	}
	const headerTimeout = 2 * time.Second
	e := startS3(t, "")
	cfg := bk.config(t, e)
	// A stalled S3 becomes a timeout within the test: the default
	// response-header timeout is 30 s.
	cfg.S3.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.ResponseHeaderTimeout = headerTimeout
	})
	// Retention by age is on, longer than the whole run, so the bucket can
	// be compared with the whole log at the end.
	cfg.LogRetention, cfg.LogRetentionInterval = 12*span+2*time.Minute, time.Second
	j := startServe(t, cfg)
	const accREST, accSynth = "fault-rest", "fault-synth"
	keys := map[string]string{accREST: j.account(t, accREST, true), accSynth: j.account(t, accSynth, true)}
	for a, k := range keys {
		j.enable(t, k, a, streamBucket, s3Owner)
	}
	live := &liveURL{}
	live.set(j.url)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stopWriters)
	rest := &restWriter{t: t, c: newRobustClient(live), account: accREST, key: keys[accREST], acked: map[string]int{}}
	sw := &synthWriter{t: t, live: live, account: accSynth, key: keys[accSynth], entities: 200}
	wg.Go(func() { rest.run(ctx) })
	wg.Go(func() { sw.run(ctx) })

	type phase struct {
		name  string
		fault locals3.Fault
		kind  string // the proxy's Fault of the requests it hits
	}
	phases := []phase{
		{"503 SlowDown", locals3.Fault{Status: http.StatusServiceUnavailable, Count: -1, Match: isExport}, "status"},
		{"500 InternalError", locals3.Fault{Status: http.StatusInternalServerError, Count: -1, Match: isExport}, "status"},
		{"connection resets", locals3.Fault{Reset: true, Count: -1, Match: isExport}, "reset"},
		{"slow responses", locals3.Fault{Delay: headerTimeout / 2, Count: -1, Match: isExport}, "delay"},
		{"timeouts", locals3.Fault{Delay: 3 * headerTimeout, Count: -1, Match: isExport}, "delay"},
	}
	type figures struct {
		name       string
		requests   int
		faulted    int
		errorCodes map[string]bool
	}
	var table []figures
	run := func(p phase, flap bool) {
		before := len(e.proxy.Requests())
		f := figures{name: p.name, errorCodes: map[string]bool{}}
		end := time.Now().Add(span)
		for time.Now().Before(end) {
			if flap {
				// A few requests at a time get one of the faults.
				q := phases[int(time.Now().UnixNano()/int64(time.Millisecond))%len(phases)]
				q.fault.Count = 2
				if q.fault.Delay > 0 {
					q.fault.Count = 1
				}
				e.proxy.SetFault(q.fault)
			}
			for a, k := range keys {
				if le := j.matrixStatus(t, k, a).Status.LastError; le != nil {
					f.errorCodes[le.Code] = true
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		e.proxy.SetFault(locals3.Fault{})
		after := len(e.proxy.Requests())
		time.Sleep(span / 2) // healthy: the backlog drains
		// A delayed request is recorded as faulted when it ends: when the
		// client gives up, for a timeout.
		waitFor(t, 4*headerTimeout, p.name+" to fault an export request", func() bool {
			f.requests, f.faulted = 0, 0
			for _, r := range e.proxy.Requests()[before:after] {
				f.requests++
				if r.Fault != "" && (flap || r.Fault == p.kind) {
					f.faulted++
				}
			}
			return f.faulted > 0
		})
		table = append(table, f)
	}
	time.Sleep(span / 2)
	for _, p := range phases {
		e.proxy.SetFault(p.fault)
		run(p, false)
	}
	run(phase{name: "flapping"}, true)
	stopWriters()
	waitCaughtUp(t, j, 3*time.Minute, keys)

	for a, k := range keys {
		st := j.matrixStatus(t, k, a)
		if st.Status.LastError != nil || st.Status.Failures != 0 || len(st.Status.Gaps) != 0 {
			t.Errorf("%s after the faults: last error %+v, %d failures, gaps %+v; want none", a, st.Status.LastError, st.Status.Failures, st.Status.Gaps)
		}
	}
	if g := j.metric(t, "j1ds_export_gaps_total"); g != 0 {
		t.Errorf("j1ds_export_gaps_total %v, want 0", g)
	}
	reports := map[string]verify.Report{}
	for a, k := range keys {
		reports[a] = verifyClean(t, e, j, streamBucket, a, k)
	}
	j.stop()
	for a := range keys {
		checkAgainstLog(t, e.objects(t, streamBucket, a), readLogState(t, cfg, a), a)
	}
	t.Logf("S3 faults, %s each, on every export request (header timeout %s, retention %s):", span, headerTimeout, cfg.LogRetention)
	t.Logf("  %-18s %9s %8s  %s", "fault", "requests", "faulted", "status errors shown")
	for _, f := range table {
		var codes []string
		for c := range f.errorCodes {
			codes = append(codes, c)
		}
		t.Logf("  %-18s %9d %8d  %s", f.name, f.requests, f.faulted, strings.Join(codes, " "))
	}
	for a, r := range reports {
		t.Logf("verify %s: clean; %d objects, %d records", a, r.Objects, r.Records.Total)
	}
	t.Logf("writes: %s %d acknowledged, %s %d sync jobs", accREST, rest.writes.Load(), accSynth, sw.jobs.Load())
}

// TestS3LateUploadAfterTimeout: an upload that timed out at j1ds still
// reaches S3, late, after j1ds's retry has stored the object (a request
// that S3, or a proxy on the way, already had). The retry held exactly the
// same changes as the attempt, so the late copy stores the same object;
// had the retry held more (the changes committed since), the late, shorter
// copy would have replaced it and those changes would be lost.
func TestS3LateUploadAfterTimeout(t *testing.T) {
	t.Parallel()
	onBackends(t, testS3LateUploadAfterTimeout)
}

func testS3LateUploadAfterTimeout(t *testing.T, bk backend) {
	const account = "late"
	e := startS3(t, "")
	cfg := bk.config(t, e)
	cfg.S3.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.ResponseHeaderTimeout = time.Second
	})
	j := startServe(t, cfg)
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)

	// The first upload is held 4 s by the proxy, which then forwards it
	// although j1ds gave up after 1 s; its SDK retries are refused.
	e.proxy.SetFault(locals3.Fault{Delay: 4 * time.Second, Late: true, Match: isExport})
	want := []write{j.create(t, key, account, "entities", entity("late-user-first", "test_user", []string{"User"}))}
	waitFor(t, 10*time.Second, "the first upload", func() bool { return len(exportRequests(e.proxy, account)) > 0 })
	e.proxy.SetFault(locals3.Fault{Status: http.StatusServiceUnavailable, Count: 2, Match: isExport})
	for i := range 10 {
		want = append(want, j.create(t, key, account, "entities", entity(fmt.Sprintf("late-user-%02d", i), "test_user", []string{"User"})))
	}
	waitExported(t, j, key, account, len(want))
	// The proxy records the status versitygw answered with before it passes
	// the answer on, so a 200 means versitygw has stored the late copy.
	var late locals3.Request
	waitFor(t, 15*time.Second, "versitygw to answer the held upload", func() bool {
		late = exportRequests(e.proxy, account)[0]
		return late.Status != 0
	})
	if late.Status != http.StatusOK || late.Op != "PutObject" {
		t.Fatalf("the held upload: %s answered %d, want PutObject stored by versitygw (200)", late.Op, late.Status)
	}
	objs := e.objects(t, streamBucket, account)
	compareRecords(t, "after the late upload", lines(objs), want)
	j.stop()
	checkAgainstLog(t, objs, readLogState(t, cfg, account), account)
}

// TestS3OutageLongerThanRetention: S3 refuses every export while changes
// keep coming, for longer than the log's retention (64 KiB of log), and
// retention truncates changes never exported. When S3 is back, the status
// shows exactly one gap, from the first LSN not exported to the LSN the
// account's log was truncated through, the metric j1ds_export_gaps_total
// counts it, and everything outside the gap is in the bucket exactly once:
// j1ds verify reports each version jump as within that recorded gap, and
// nothing else.
func TestS3OutageLongerThanRetention(t *testing.T) {
	t.Parallel()
	onBackends(t, testS3OutageLongerThanRetention)
}

func testS3OutageLongerThanRetention(t *testing.T, bk backend) {
	full := matrixFull(t)
	outageWrites := 300 // about 3 times the retention
	if full {
		outageWrites = 1500
	}
	const account, retentionBytes = "outage", 64 << 10
	e := startS3(t, "")
	cfg := bk.config(t, e)
	cfg.LogRetentionBytes, cfg.LogRetentionInterval = retentionBytes, 200*time.Millisecond
	var store atomic.Pointer[changelog.Reader]
	cfg.Test.StoreOpened = func(r changelog.Reader) { store.Store(&r) }
	j := startServe(t, cfg)
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)

	// Before: 20 entities, each updated once, exported.
	var want []write
	var ids []string
	for i := range 20 {
		w := j.create(t, key, account, "entities", entity(fmt.Sprintf("outage-user-%02d", i), "test_user", []string{"User"}, "pad", randomText(300)))
		want = append(want, w)
		ids = append(ids, idOf(t, w))
	}
	for _, id := range ids {
		want = append(want, j.patch(t, key, account, "entities", id, map[string]any{"pad": randomText(300)}))
	}
	waitExported(t, j, key, account, len(want))
	exported, err := (*store.Load()).End(account)
	if err != nil {
		t.Fatal(err)
	}
	from := exported + 1 // the first LSN not exported

	// The outage: every export refused while the writer goes on, until
	// retention has dropped changes never exported.
	e.proxy.SetFault(locals3.Fault{Status: http.StatusServiceUnavailable, Count: -1, Match: isExport})
	// Two bursts of changes: retention drops part of the first and the
	// exporter records the gap, still unable to upload; then the second,
	// which retention drops too. One outage, so one gap must cover both.
	var during []write
	var te *changelog.TruncatedError
	burst := func(n int) {
		for range n {
			i := len(during)
			during = append(during, j.patch(t, key, account, "entities", ids[i%len(ids)], map[string]any{"pad": randomText(300)}))
			if i == 0 {
				waitFor(t, 30*time.Second, "the status to show the outage", func() bool {
					le := j.matrixStatus(t, key, account).Status.LastError
					return le != nil && le.Code == "THROTTLED"
				})
			}
			time.Sleep(10 * time.Millisecond) // retention passes and export retries go on meanwhile
		}
		waitFor(t, time.Minute, "retention to drop changes not exported", func() bool {
			s := *store.Load()
			_, err := s.ReadLog(account, exported, 1, 1)
			return errors.As(err, &te) && s.LogBytes() <= retentionBytes
		})
	}
	burst(outageWrites / 2)
	waitFor(t, time.Minute, "the exporter to record the gap during the outage", func() bool {
		return len(j.matrixStatus(t, key, account).Status.Gaps) > 0
	})
	burst(outageWrites - outageWrites/2)
	to := te.To // the account's log is truncated through here
	s := *store.Load()
	var survivors int
	for after := to; ; {
		es, err := s.ReadLog(account, after, 1000, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		survivors += len(es)
		after = es[len(es)-1].LSN
	}
	if survivors == 0 || survivors >= len(during) {
		t.Fatalf("%d of the %d changes made during the outage survived retention; want some dropped and some kept", survivors, len(during))
	}

	// Restore S3 only once a flush has started after the last truncation
	// (it records the gap through to): an older attempt, still retrying an
	// upload it read before the truncation, would otherwise store those
	// changes when S3 is back, rightly, and split the gap in two.
	waitFor(t, time.Minute, "the exporter to record the gap through the last truncation", func() bool {
		gaps := j.matrixStatus(t, key, account).Status.Gaps
		return len(gaps) > 0 && gaps[len(gaps)-1].ToLSN == to
	})
	e.proxy.SetFault(locals3.Fault{})
	lost := len(during) - survivors
	want = append(want, during[lost:]...)
	waitExported(t, j, key, account, len(want))
	// After: each entity updated once more, exported.
	for _, id := range ids {
		want = append(want, j.patch(t, key, account, "entities", id, map[string]any{"pad": randomText(300)}))
	}
	waitExported(t, j, key, account, len(want))

	st := j.matrixStatus(t, key, account)
	wantGap := stream.Gap{FromLSN: from, ToLSN: to}
	if len(st.Status.Gaps) != 1 || st.Status.Gaps[0].FromLSN != from || st.Status.Gaps[0].ToLSN != to {
		t.Errorf("gaps in the status: %+v; want exactly one, LSN %d to %d", st.Status.Gaps, from, to)
	} else {
		wantGap = st.Status.Gaps[0]
	}
	if g := j.metric(t, "j1ds_export_gaps_total"); g != 1 {
		t.Errorf("j1ds_export_gaps_total %v, want 1", g)
	}
	if st.Status.LastError != nil || st.Status.Failures != 0 {
		t.Errorf("status after the outage: last error %+v, %d failures", st.Status.LastError, st.Status.Failures)
	}

	// Everything outside the gap is in the bucket exactly once, in order.
	objs := e.objects(t, streamBucket, account)
	compareRecords(t, "outside the gap", lines(objs), want)

	// j1ds verify: the only violations are version jumps, each across the
	// recorded gap; the rebuilt graph equals j1ds's.
	jumps := map[string]bool{}
	last := map[string]int{}
	for _, w := range want {
		r := w.record(t)["properties"].(map[string]any)
		id := r["_id"].(string)
		v := 0
		fmt.Sscan(fmt.Sprint(r["_version"]), &v)
		if last[id] != 0 && v != last[id]+1 {
			jumps[id] = true
		}
		last[id] = v
	}
	code, rep, out := runVerifyCompare(t, e, j, streamBucket, account, key)
	note := "retention gaps, changes were dropped: " + verify.Gap{FromLSN: wantGap.FromLSN, ToLSN: wantGap.ToLSN, At: wantGap.At}.String()
	if code != 1 || rep.Violations != len(jumps) || rep.ByKind[verify.KindVersionGap] != len(jumps) || len(jumps) == 0 {
		t.Errorf("verify: exit %d, %d violations %v; want exit 1 and exactly the %d version jumps across the gap\n%s", code, rep.Violations, rep.ByKind, len(jumps), out)
	}
	for _, v := range rep.List {
		if v.Kind != verify.KindVersionGap || !jumps[v.ID] || !strings.Contains(v.Detail, note) {
			t.Errorf("verify violation %s; want a version gap of an object changed in the gap, noting %q", v, note)
		}
	}
	if c := rep.Compare; c == nil || c.Missing != 0 || c.Extra != 0 || c.Differ != 0 {
		t.Errorf("verify compare %+v; want the graph rebuilt from the bucket equal to j1ds's", rep.Compare)
	}
	j.stop()
	t.Logf("outage: %d changes made, %d dropped by retention (LSN %d to %d), %d kept and exported; gap in the status %+v; verify: %d version jumps, all within the gap",
		len(during), lost, from, to, survivors, wantGap, rep.ByKind[verify.KindVersionGap])
}

// TestDiskFullAPI: with the data directory's free space (injected) below
// the reserve, every write answers 507 DISK_FULL, reads go on, and nothing
// is written; when space returns, writes resume by themselves. Reopened,
// the store's log equals the bucket byte for byte and the graph equals the
// bucket (verify --compare): nothing was corrupted. The embedded store
// only: on PostgreSQL no local disk holds data, and the database answers
// a write it has no room for itself.
func TestDiskFullAPI(t *testing.T) {
	t.Parallel()
	const account = "diskfull"
	e := startS3(t, "")
	cfg := streamConfig(t, e)
	cfg.MinFreeBytes = 64 << 20
	var free atomic.Uint64
	free.Store(1 << 40)
	cfg.Test.FreeSpace = func(string) (uint64, error) { return free.Load(), nil }
	j := startServe(t, cfg)
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)

	var want []write
	for i := range 10 {
		want = append(want, j.create(t, key, account, "entities", entity(fmt.Sprintf("disk-user-%02d", i), "test_user", []string{"User"}, "n", i)))
	}
	waitExported(t, j, key, account, len(want))

	free.Store(1 << 20) // 1 MiB left, under the 64 MiB reserve
	base := "/api/v1/accounts/" + account + "/"
	var refusedKey string
	waitFor(t, 10*time.Second, "writes to be refused", func() bool {
		k := fmt.Sprintf("disk-probe-%d", time.Now().UnixNano())
		code, b := j.call(t, "POST", base+"entities", key, entity(k, "test_user", []string{"User"}))
		switch code {
		case http.StatusCreated: // the free space is read at most once a second
			want = append(want, write{op: "c", kind: "entity", props: b})
			return false
		case http.StatusInsufficientStorage:
			refusedKey = k
			return true
		}
		t.Fatalf("create while the disk fills: %d %s", code, b)
		return false
	})
	id := idOf(t, want[0])
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", base + "entities", entity("disk-refused", "test_user", []string{"User"})},
		{"PATCH", base + "entities/" + id, map[string]any{"n": 99}},
		{"DELETE", base + "entities/" + id, nil},
		{"POST", base + "relationships", map[string]any{"_key": "disk-relationship", "_type": "test_user_knows_user", "_class": "KNOWS", "_fromEntityId": id, "_toEntityId": idOf(t, want[1])}},
	} {
		code, b := j.call(t, c.method, c.path, key, c.body)
		var eb struct{ Error problem }
		decode(t, b, &eb)
		if code != http.StatusInsufficientStorage || eb.Error.Code != "DISK_FULL" || !strings.Contains(eb.Error.Message, "nothing was written") {
			t.Errorf("%s %s with the disk full: %d %s, want 507 DISK_FULL saying nothing was written", c.method, c.path, code, b)
		}
	}
	if got := j.get(t, key, account, "entities", id); !strings.Contains(string(got), `"_version":1,`) {
		t.Errorf("read with the disk full: %s, want version 1", got)
	}

	free.Store(1 << 40)
	waitFor(t, 10*time.Second, "writes to resume", func() bool {
		code, b := j.call(t, "POST", base+"entities", key, entity(refusedKey, "test_user", []string{"User"}))
		if code == http.StatusCreated { // not 409: the refused create left nothing behind
			want = append(want, write{op: "c", kind: "entity", props: b})
		}
		return code == http.StatusCreated
	})
	want = append(want, j.patch(t, key, account, "entities", id, map[string]any{"n": 100}))
	waitExported(t, j, key, account, len(want))
	j.stop()

	objs := e.objects(t, streamBucket, account)
	compareRecords(t, "across the full disk", lines(objs), want)
	checkAgainstLog(t, objs, readLogState(t, cfg, account), account) // the store reopens; log = bucket
	j2 := startServe(t, cfg)
	verifyClean(t, e, j2, streamBucket, account, key) // graph = bucket
}
