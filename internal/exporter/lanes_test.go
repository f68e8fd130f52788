package exporter_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/stream"
)

// slowAnswer is how long a slow bucket takes to answer an upload.
const slowAnswer = 20 * time.Second

// faultDest is the tests' bucket store behind a fault injector: an upload
// into a slow bucket is answered slowAnswer later on the fake clock (or
// fails when its attempt is cancelled first, as an S3 request does), one
// into a refusing bucket fails at once. It counts the uploads open at
// once.
type faultDest struct {
	clock *exporter.FakeClock
	inner *bucketStore
	mu    struct {
		sync.Mutex
		slow, refusing map[string]bool // bucket names
		// steady buckets accept each stepBytes of an object stepAnswer
		// after they are sent: a large upload going at a steady pace.
		steady        map[string]bool
		waiting       int // uploads waiting for an answer
		waits         int // waits begun, ever
		open, maxOpen int
	}
}

func newFaultDest(clock *exporter.FakeClock, inner *bucketStore) *faultDest {
	d := &faultDest{clock: clock, inner: inner}
	d.mu.slow, d.mu.refusing, d.mu.steady = map[string]bool{}, map[string]bool{}, map[string]bool{}
	return d
}

var _ exporter.Destination = (*faultDest)(nil)

func (d *faultDest) Object(ctx context.Context, target, key string) exporter.Object {
	bucket, _, _ := strings.Cut(target, "/")
	d.mu.Lock()
	d.mu.open++
	d.mu.maxOpen = max(d.mu.maxOpen, d.mu.open)
	d.mu.Unlock()
	return &faultObject{Object: d.inner.Object(ctx, target, key), d: d, ctx: ctx, bucket: bucket}
}

// set makes the buckets slow or refusing, or heals them all (none given).
func (d *faultDest) set(slow, refusing []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.mu.slow)
	clear(d.mu.refusing)
	for _, b := range slow {
		d.mu.slow[b] = true
	}
	for _, b := range refusing {
		d.mu.refusing[b] = true
	}
}

func (d *faultDest) waiting() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.waiting
}

func (d *faultDest) maxOpen() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.maxOpen
}

type faultObject struct {
	exporter.Object
	d      *faultDest
	ctx    context.Context
	bucket string
	sent   int
	closed bool
}

func (o *faultObject) done() {
	if !o.closed {
		o.closed = true
		o.d.mu.Lock()
		o.d.mu.open--
		o.d.mu.Unlock()
	}
}

// A steady bucket takes stepAnswer to accept each stepBytes of an object,
// as S3 each part of a multipart upload.
const (
	stepAnswer = 600 * time.Millisecond
	stepBytes  = 16 << 10
)

func (o *faultObject) Write(p []byte) (int, error) {
	o.d.mu.Lock()
	steady := o.d.mu.steady[o.bucket]
	o.d.mu.Unlock()
	if steady && (o.sent+len(p))/stepBytes > o.sent/stepBytes {
		if err := o.d.wait(o.ctx, stepAnswer); err != nil {
			return 0, err
		}
	}
	o.sent += len(p)
	return o.Object.Write(p)
}

// wait blocks until the clock has moved d on, or ctx ends.
func (d *faultDest) wait(ctx context.Context, after time.Duration) error {
	t := d.clock.NewTimer(d.clock.Now().Add(after))
	defer t.Stop()
	d.mu.Lock()
	d.mu.waiting++
	d.mu.waits++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.mu.waiting--
		d.mu.Unlock()
	}()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (o *faultObject) Abort() {
	o.done()
	o.Object.Abort()
}

func (o *faultObject) Close() error {
	defer o.done()
	o.d.mu.Lock()
	slow, refusing := o.d.mu.slow[o.bucket], o.d.mu.refusing[o.bucket]
	o.d.mu.Unlock()
	switch {
	case refusing:
		return errors.New("503 SlowDown: the bucket refuses uploads")
	case slow:
		if err := o.d.wait(o.ctx, slowAnswer); err != nil {
			return err
		}
	}
	return o.Object.Close()
}

// gauge reads a gauge without labels of reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no gauge %s", name)
	return 0
}

// TestSlowBucketsDoNotDelayOthers: three accounts whose buckets answer
// 20 s late and one whose bucket refuses are due first and take every
// worker of the main lane. After SlowAfter (1 s) their attempts move to
// the slow lane (beyond its workers, up to the main lane's) or, past
// that, are cancelled and retried there, so every other
// account's object is stored without the clock passing its due time
// + 2 s, round after round; the late accounts show as lagging in the
// status and the metric; once the buckets heal, everything lands once.
func TestSlowBucketsDoNotDelayOthers(t *testing.T) {
	const interval = 5 * time.Second
	reg := prometheus.NewRegistry()
	var fd *faultDest
	e := newEnvWith(t, exporter.Config{FlushInterval: interval, Workers: 2, SlowWorkers: 1, Registerer: reg},
		func(c *exporter.FakeClock, b *bucketStore) exporter.Destination {
			fd = newFaultDest(c, b)
			return fd
		})
	slow, refusing := []string{"s0", "s1", "s2"}, []string{"r0"}
	healthy := []string{"h0", "h1", "h2", "h3", "h4", "h5"}
	late := append(slices.Clone(slow), refusing...)
	all := append(slices.Clone(late), healthy...)
	fd.set(bucketsOf(slow), bucketsOf(refusing))
	for _, a := range all {
		e.enable(a, "bkt-"+a)
	}
	// The late accounts commit first, so they are due first and the old
	// single pool would hand them every worker.
	t0 := e.clock.Now()
	want := map[string][]string{}
	for _, a := range all {
		want[a] = append(want[a], e.write(a, 2)...)
		e.clock.Advance(time.Millisecond)
	}
	due := e.exp.Status(healthy[len(healthy)-1]).NextAttempt
	e.advanceTo(due)
	// Both main-lane workers wait on slow buckets.
	waitFor(t, "both main-lane workers to wait on slow buckets", func() bool { return fd.waiting() == 2 })

	// Round 1: SlowAfter later, the healthy accounts' objects are stored
	// without the clock moving further.
	e.clock.Advance(time.Second)
	stored := func(round int) func() bool {
		return func() bool {
			for _, a := range healthy {
				r, _ := e.st.Get(a)
				if r.Stream.ObjectsExported != int64(round) || r.Stream.Cursor != mustEnd(t, e.store, a) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "the healthy accounts' objects of round 1", stored(1))
	checkOnTime := func(round int, due time.Time) {
		t.Helper()
		for _, a := range healthy {
			r, _ := e.st.Get(a)
			if late := r.Stream.LastExportAt.Sub(due); late > 2*time.Second {
				t.Fatalf("round %d: %s's object was stored %s after it was due, want at most 2s", round, a, late)
			}
			if l := e.exp.Status(a); l.SlowLane || l.Lagging {
				t.Fatalf("round %d: healthy account %s is in the slow lane or lagging: %+v", round, a, l)
			}
		}
	}
	checkOnTime(1, due)
	for _, a := range slow {
		if r, _ := e.st.Get(a); r.Stream.ObjectsExported != 0 {
			t.Fatalf("%s's slow bucket stored an object before answering", a)
		}
	}
	for _, a := range []string{"s0", "s1", "r0"} { // s2 may still be in its first attempt
		if l := e.exp.Status(a); !l.SlowLane {
			t.Fatalf("%s is not in the slow lane after a slow or failed attempt: %+v", a, l)
		}
	}

	// Round 2: the healthy accounts commit again, and their objects are
	// stored when due, while the late ones still wait.
	for _, a := range healthy {
		want[a] = append(want[a], e.write(a, 1)...)
	}
	due2 := e.exp.Status(healthy[0]).NextAttempt
	e.advanceTo(due2)
	waitFor(t, "the healthy accounts' objects of round 2", stored(2))
	checkOnTime(2, due2)

	// More than two flush intervals after their first change, the late
	// accounts are lagging: in their status and in the metric.
	if lag := e.clock.Now().Sub(t0); lag <= 2*interval {
		t.Fatalf("the clock moved %s, want more than two flush intervals", lag)
	}
	// s2's first attempt, in the main lane since round 1, was cancelled
	// by the clock's move: it ends a moment later.
	waitFor(t, "every late account lagging in the slow lane", func() bool {
		for _, a := range late {
			if l := e.exp.Status(a); !l.Lagging || !l.SlowLane {
				return false
			}
		}
		return true
	})
	if n := gauge(t, reg, "j1ds_export_lagging_accounts"); n != float64(len(late)) {
		t.Fatalf("j1ds_export_lagging_accounts %v, want %d", n, len(late))
	}
	if lag, want := gauge(t, reg, "j1ds_export_max_lag_seconds"), e.clock.Now().Sub(t0).Seconds(); lag != want {
		t.Fatalf("j1ds_export_max_lag_seconds %v, want %v (the first change's age)", lag, want)
	}
	if n := gauge(t, reg, "j1ds_export_slow_lane_accounts"); n != float64(len(late)) {
		t.Fatalf("j1ds_export_slow_lane_accounts %v, want %d", n, len(late))
	}

	// The buckets heal: every late account catches up, each change stored
	// once under keys retried unchanged, and none lags any more.
	fd.set(nil, nil)
	// The slow buckets' uploads in flight (moved to the slow lane, all
	// begun by the second round) are answered.
	e.advanceTo(due.Add(2 * slowAnswer))
	e.advanceUntil("every account to catch up", func() bool { return caughtUp(t, e, all) })
	for _, a := range all {
		if got := e.dest.lines(t, "bkt-"+a+"/"); !slices.Equal(got, want[a]) {
			t.Fatalf("%s: %d records stored, want its %d changes once each, in order", a, len(got), len(want[a]))
		}
	}
	if n := gauge(t, reg, "j1ds_export_lagging_accounts"); n != 0 {
		t.Fatalf("j1ds_export_lagging_accounts %v after every account caught up", n)
	}
	if n := fd.maxOpen(); n > 5 {
		t.Fatalf("%d uploads open at once, want at most Workers + SlowWorkers + Workers = 5 (the slow lane takes moved attempts up to the main lane's workers beyond its own)", n)
	}
}

func bucketsOf(accounts []string) []string {
	var bs []string
	for _, a := range accounts {
		bs = append(bs, "bkt-"+a)
	}
	return bs
}

func caughtUp(t *testing.T, e *env, accounts []string) bool {
	for _, a := range accounts {
		if r, _ := e.st.Get(a); r.Stream.Cursor != mustEnd(t, e.store, a) {
			return false
		}
	}
	return true
}

// TestAttemptTimeout: an upload that outlasts AttemptTimeout is cancelled,
// shown in the status as EXPORT_TIMEOUT, and retried with the same key.
func TestAttemptTimeout(t *testing.T) {
	var fd *faultDest
	e := newEnvWith(t, exporter.Config{FlushInterval: time.Second, AttemptTimeout: 5 * time.Second, RetryMin: time.Second, RetryMax: time.Second},
		func(c *exporter.FakeClock, b *bucketStore) exporter.Destination {
			fd = newFaultDest(c, b)
			return fd
		})
	fd.set([]string{"bkt"}, nil)
	e.enable("acct1", "bkt")
	want := e.write("acct1", 3)
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	waitFor(t, "the upload to wait on the slow bucket", func() bool { return fd.waiting() == 1 })
	e.clock.Advance(time.Second) // SlowAfter: into the slow lane, where it goes on
	waitFor(t, "the attempt to reach the slow lane", func() bool { return e.exp.Status("acct1").SlowLane })
	e.clock.Advance(4 * time.Second) // AttemptTimeout
	waitFor(t, "the timeout in the status", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.LastError != nil
	})
	r, _ := e.st.Get("acct1")
	// The customer reads that the service retries; the flag to raise is
	// the operator's, in the log.
	if p := r.Stream.LastError; p.Code != "EXPORT_TIMEOUT" || p.ActionBy != stream.ActionOperator ||
		!strings.Contains(p.Message, "retrying") || strings.Contains(p.Message, "--") {
		t.Fatalf("status error %+v, want EXPORT_TIMEOUT by the operator, retrying, naming no flag", p)
	}
	fd.set(nil, nil)
	e.advanceUntil("the retry", func() bool { return caughtUp(t, e, []string{"acct1"}) })
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) {
		t.Fatalf("records %d, want %d once each", len(got), len(want))
	}
	if r, _ := e.st.Get("acct1"); r.Stream.LastError != nil || r.Stream.ObjectsExported != 1 {
		t.Fatalf("after the retry: %+v", r.Stream)
	}
}

// TestConfigValidatesLanes: the lanes' settings are checked, with errors
// naming the flag.
func TestConfigValidatesLanes(t *testing.T) {
	for _, c := range []struct {
		cfg  exporter.Config
		flag string
	}{
		{exporter.Config{SlowWorkers: 300}, "--export-slow-workers"},
		{exporter.Config{AttemptTimeout: time.Millisecond}, "--export-attempt-timeout"},
		{exporter.Config{SlowAfter: time.Hour}, "--export-slow-after"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v, want an error naming %s", c.cfg, err, c.flag)
		}
	}
	if err := (exporter.Config{}).Validate(); err != nil {
		t.Fatal(fmt.Errorf("defaults: %w", err))
	}
}

// TestSteadyUploadStaysInTheMainLane: an upload that runs far longer than
// SlowAfter but whose bucket keeps accepting its bytes (a large batch) has
// not stalled: it stays in the main lane, and so does its account.
func TestSteadyUploadStaysInTheMainLane(t *testing.T) {
	reg := prometheus.NewRegistry()
	var fd *faultDest
	e := newEnvWith(t, exporter.Config{FlushInterval: time.Second, Registerer: reg},
		func(c *exporter.FakeClock, b *bucketStore) exporter.Destination {
			fd = newFaultDest(c, b)
			return fd
		})
	fd.mu.Lock()
	fd.mu.steady["bkt"] = true
	fd.mu.Unlock()
	e.enable("acct1", "bkt")
	var want []string
	for tx := range 4 {
		raws := make([][]byte, 8)
		for i := range raws {
			raws[i] = fmt.Appendf(nil, `{"_key":"steady-blob-%d-%d","_type":"test_blob","_class":"Record","pad":%q}`, tx, i, noise(tx*100+i, 40<<10))
		}
		want = append(want, e.writeObjects("acct1", raws)...)
	}
	start := e.exp.Status("acct1").NextAttempt
	e.advanceTo(start)
	// Each step of the upload is accepted stepAnswer after it is sent: the
	// clock moves on by that much whenever a step begins, until the object
	// is stored.
	waits := func() int {
		fd.mu.Lock()
		defer fd.mu.Unlock()
		return fd.mu.waits
	}
	seen := 0
	for {
		waitFor(t, "the next step of the upload, or its end", func() bool { return waits() > seen || caughtUp(t, e, []string{"acct1"}) })
		if n := waits(); n > seen {
			seen = n
			e.clock.Advance(stepAnswer)
			continue
		}
		break
	}
	if took := e.clock.Now().Sub(start); seen < 4 || took < 2*time.Second {
		t.Fatalf("the upload took %s in %d steps, want several steps over 2s or more", took, seen)
	}
	e.settle()
	if l := e.exp.Status("acct1"); l.SlowLane {
		t.Fatalf("an upload that never stalled sent its account to the slow lane: %+v", l)
	}
	if n := gauge(t, reg, "j1ds_export_slow_lane_accounts"); n != 0 {
		t.Fatalf("j1ds_export_slow_lane_accounts %v, want 0", n)
	}
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) {
		t.Fatalf("%d records stored, want %d", len(got), len(want))
	}
}

// noise returns n bytes of letters that compress poorly, from seed.
func noise(seed, n int) string {
	b := make([]byte, n)
	x := uint64(seed)*0x9e3779b97f4a7c15 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = 'a' + byte(x%26)
	}
	return string(b)
}

// TestStalledAttemptsBeyondTheSlowLaneAreCancelled: the slow lane takes
// attempts moved to it beyond its own workers, up to as many as the main
// lane has; a stalled attempt past that is cancelled (and retried in the
// slow lane), so attempts in flight stay within Workers + SlowWorkers +
// Workers however many buckets stall.
func TestStalledAttemptsBeyondTheSlowLaneAreCancelled(t *testing.T) {
	reg := prometheus.NewRegistry()
	var fd *faultDest
	e := newEnvWith(t, exporter.Config{FlushInterval: 5 * time.Second, Workers: 1, SlowWorkers: 1, Registerer: reg},
		func(c *exporter.FakeClock, b *bucketStore) exporter.Destination {
			fd = newFaultDest(c, b)
			return fd
		})
	slow := []string{"s0", "s1", "s2", "s3"}
	fd.set(bucketsOf(slow), nil)
	for _, a := range slow {
		e.enable(a, "bkt-"+a)
	}
	for _, a := range slow {
		e.write(a, 1)
		e.clock.Advance(time.Millisecond)
	}
	e.advanceTo(e.exp.Status(slow[len(slow)-1]).NextAttempt)
	outcomes := func() map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "j1ds_export_slow_attempts_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
		return got
	}
	// Each SlowAfter (1 s) the main lane's attempt stalls: the first two
	// move to the slow lane (its worker, then one more), the third is
	// cancelled.
	for i, want := range []map[string]float64{{"moved": 1}, {"moved": 2}, {"moved": 2, "cancelled": 1}} {
		waitFor(t, fmt.Sprintf("%d uploads waiting on slow buckets", min(i+1, 3)), func() bool { return fd.waiting() == min(i+1, 3) })
		e.clock.Advance(time.Second)
		waitFor(t, fmt.Sprintf("stall %d handled as %v", i+1, want), func() bool {
			got := outcomes()
			return got["moved"] == want["moved"] && got["cancelled"] == want["cancelled"]
		})
	}
	if n := fd.maxOpen(); n > 3 {
		t.Fatalf("%d uploads open at once, want at most Workers + SlowWorkers + Workers = 3", n)
	}
}
