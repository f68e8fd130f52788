package exporter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/settings"
)

var keyRE = regexp.MustCompile(`^bkt/jupiterone/graph/cdc/accountId=([A-Za-z0-9_-]+)/year=\d{4}/month=\d{2}/day=\d{2}/time=\d{6}\.\d{6}Z\.jsonl$`)

func TestChangesLandInCommitOrder(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Second})
	e.write("acct1", 3) // before enabling: never exported (no backfill)
	e.enable("acct1", "bkt")
	e.enable("acct2", "bkt")
	var want1, want2 []string
	for range 5 {
		want1 = append(want1, e.write("acct1", 4)...)
		want2 = append(want2, e.write("acct2", 2)...)
	}
	e.clock.Advance(2 * time.Second) // past both batches' flush interval
	// Exported means stored and then the cursor saved: objects land a
	// moment before their cursor moves, so wait for both.
	caughtUp := func(account string) bool {
		r, _ := e.st.Get(account)
		return r.Stream.Cursor == mustEnd(t, e.store, account)
	}
	waitFor(t, "both accounts exported", func() bool {
		return len(e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=acct1/")) == len(want1) &&
			len(e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=acct2/")) == len(want2) &&
			caughtUp("acct1") && caughtUp("acct2")
	})
	if got := e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=acct1/"); !slices.Equal(got, want1) {
		t.Fatalf("acct1 records differ:\n got %q\nwant %q", got, want1)
	}
	if got := e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=acct2/"); !slices.Equal(got, want2) {
		t.Fatalf("acct2 records differ")
	}
	for _, k := range e.dest.keys() {
		if !keyRE.MatchString(k) {
			t.Fatalf("key %q does not follow the layout", k)
		}
	}
	r, _ := e.st.Get("acct1")
	if r.Stream.EventsExported != int64(len(want1)) || r.Stream.LastExportKey == "" {
		t.Fatalf("status after export: %+v", r.Stream)
	}
	// Idle: nothing changed, so nothing more is written, however long the
	// clock runs: through several flush intervals and past the
	// scheduler's own hourly timer.
	e.settle()
	for _, account := range []string{"acct1", "acct2"} {
		if l := e.exp.Status(account); !l.PendingSince.IsZero() {
			t.Fatalf("%s is idle but shows changes pending since %v", account, l.PendingSince)
		}
	}
	before := e.dest.putCount()
	for _, d := range []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second, 2 * time.Hour} {
		e.clock.Advance(d)
		e.settle() // whatever came due has been flushed
	}
	if after := e.dest.putCount(); after != before {
		t.Fatalf("an idle exporter wrote %d objects", after-before)
	}
}

// TestFlushWaitsForTheInterval: an account's batch is written when its
// oldest change is FlushInterval old, not a moment before, and holds the
// changes committed meanwhile.
func TestFlushWaitsForTheInterval(t *testing.T) {
	const interval = 5 * time.Minute
	e := newEnv(t, exporter.Config{FlushInterval: interval})
	e.enable("acct1", "bkt")
	oldest := e.clock.Now() // the commit time of the first change
	want := e.write("acct1", 2)
	e.clock.Advance(time.Minute)
	want = append(want, e.write("acct1", 1)...)
	due := oldest.Add(interval)
	e.advanceTo(due.Add(-time.Nanosecond))
	at := e.settle()
	if n := e.dest.putCount(); n != 0 {
		t.Fatalf("%d objects written before the oldest change was %s old", n, interval)
	}
	if l := e.exp.Status("acct1"); !l.PendingSince.Equal(oldest) || !l.NextAttempt.Equal(due) || !at.Equal(due) {
		t.Fatalf("pending since %v, next attempt %v, the scheduler waits until %v; want %v, %v and %v", l.PendingSince, l.NextAttempt, at, oldest, due, due)
	}
	e.clock.Advance(time.Nanosecond)
	waitFor(t, "the batch to be exported", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.ObjectsExported == 1
	})
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) || e.dest.putCount() != 1 {
		t.Fatalf("%d objects with %d records, want 1 with the %d changes", e.dest.putCount(), len(got), len(want))
	}
	if r, _ := e.st.Get("acct1"); !r.Stream.LastExportAt.Equal(due) {
		t.Fatalf("exported at %v, want %v (the oldest change + the interval)", r.Stream.LastExportAt, due)
	}
}

func TestSizeCapSplitsAtTransactionBoundaries(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Hour, MaxBatchBytes: 2000})
	e.enable("acct1", "bkt")
	var want []string
	for range 12 {
		want = append(want, e.write("acct1", 3)...)
	}
	// The flush interval is an hour: only the size cap can write objects.
	waitFor(t, "the size cap to write objects", func() bool { return len(e.dest.keys()) >= 2 })
	e.stop() // the graceful shutdown flushes the rest
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) {
		t.Fatalf("records differ: got %d want %d", len(got), len(want))
	}
	// Each object holds whole transactions: its line count is a sum of
	// transaction sizes (all 3 here).
	for _, k := range e.dest.keys() {
		n := len(e.dest.lines(t, k))
		if n%3 != 0 {
			t.Fatalf("%s holds %d records: a transaction was split", k, n)
		}
	}
}

func TestDisableDiscardsAndReenableStartsFresh(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Hour})
	e.enable("acct1", "bkt")
	e.write("acct1", 2)
	e.apply("acct1", settings.Settings{Enabled: false, BucketName: "bkt", AWSAccountID: "111122223333", RegionConfirmed: true})
	e.write("acct1", 2) // while disabled
	e.enable("acct1", "bkt")
	want := e.write("acct1", 1)
	e.stop()
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) {
		t.Fatalf("after disable and re-enable: got %q, want only %q", got, want)
	}
}

// TestFailedUploadsRetryToTheSameKey: each retry waits out an exponential
// backoff with jitter (from RetryMin, capped at RetryMax), then writes the
// same key with the same records.
func TestFailedUploadsRetryToTheSameKey(t *testing.T) {
	const retryMin, retryMax = time.Second, 3 * time.Second
	e := newEnv(t, exporter.Config{FlushInterval: time.Second, RetryMin: retryMin, RetryMax: retryMax})
	var mu sync.Mutex
	failures := 3
	e.dest.storeThenFail = true // the upload lands but its answer is lost
	e.dest.fail = func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return errors.New("connection reset by peer")
		}
		return nil
	}
	e.enable("acct1", "bkt")
	want := e.write("acct1", 5)
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	for n := 1; n <= 3; n++ {
		next := e.settle() // after failure n
		if l := e.exp.Status("acct1"); l.Failures != n || !l.NextAttempt.Equal(next) {
			t.Fatalf("after upload %d: %d failures, next attempt %v; want %d and %v", n, l.Failures, l.NextAttempt, n, next)
		}
		full := min(retryMin<<(n-1), retryMax) // 1 s, 2 s, then the 3 s cap
		if wait := next.Sub(e.clock.Now()); wait < full/2 || wait > full {
			t.Fatalf("retry %d in %s, want between %s and %s", n, wait, full/2, full)
		}
		e.advanceTo(next.Add(-time.Nanosecond))
		e.settle()
		if p := e.dest.putCount(); p != n {
			t.Fatalf("%d uploads before retry %d was due, want %d", p, n, n)
		}
		e.clock.Advance(time.Nanosecond)
	}
	waitFor(t, "the upload to succeed", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.ObjectsExported == 1
	})
	e.dest.mu.Lock()
	puts := slices.Clone(e.dest.puts)
	e.dest.mu.Unlock()
	if len(puts) != 4 {
		t.Fatalf("%d uploads, want 4 (3 whose answer was lost, then one acknowledged)", len(puts))
	}
	for _, p := range puts {
		if p != puts[0] {
			t.Fatalf("a retry wrote another key: %q then %q", puts[0], p)
		}
	}
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) {
		t.Fatalf("records: got %d, want %d, no duplicates", len(got), len(want))
	}
	r, _ := e.st.Get("acct1")
	if r.Stream.LastError != nil {
		t.Fatalf("status still shows an error after recovery: %+v", r.Stream.LastError)
	}
}

func TestPermanentErrorIsShownInStatus(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Second, Classify: func(err error) exporter.Classification {
		return exporter.Classification{Code: "ACCESS_DENIED", Message: "fix the bucket policy", Permanent: true}
	}})
	e.dest.fail = func(string) error { return errors.New("AccessDenied") }
	e.enable("acct1", "bkt")
	e.write("acct1", 1)
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	waitFor(t, "the error in the status", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.LastError != nil
	})
	// The error is saved before the attempt ends and counts its failure.
	e.settle()
	r, _ := e.st.Get("acct1")
	if r.Stream.LastError.Code != "ACCESS_DENIED" || r.Stream.Cursor != r.Stream.EnabledAtLSN {
		t.Fatalf("status %+v: the error must be shown and the cursor must not move", r.Stream)
	}
	l := e.exp.Status("acct1")
	if l.Failures != 1 || l.PendingSince.IsZero() {
		t.Fatalf("live status %+v", l)
	}
	// The retry comes on the slow schedule: PermanentRetry, 10 minutes by
	// default, not the transient backoff.
	retry := e.clock.Now().Add(10 * time.Minute)
	if !l.NextAttempt.Equal(retry) {
		t.Fatalf("next attempt %v, want %v", l.NextAttempt, retry)
	}
	e.advanceTo(retry.Add(-time.Nanosecond))
	e.settle()
	if l := e.exp.Status("acct1"); l.Failures != 1 {
		t.Fatalf("retried before the slow schedule: %+v", l)
	}
	e.clock.Advance(time.Nanosecond)
	e.settle()
	if l := e.exp.Status("acct1"); l.Failures != 2 {
		t.Fatalf("no retry on the slow schedule: %+v", l)
	}
}

func TestBacklogPastRetentionIsAGap(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Second, RetryMin: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond})
	// A store with byte retention, so old entries can be truncated.
	e.stop()
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Now: e.clock.Now, Retention: changelog.Retention{MaxBytes: 1500, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e.store, e.st = store, settings.New(store.Settings(), e.clock.Now)
	e.start()

	var mu sync.Mutex
	down := true
	e.dest.fail = func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return errors.New("503 SlowDown")
		}
		return nil
	}
	e.enable("acct1", "bkt")
	r0, _ := e.st.Get("acct1")
	for range 10 {
		e.write("acct1", 2)
	}
	// The batch comes due during the outage: the upload fails and the
	// backlog waits in the log.
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	e.settle()
	if l := e.exp.Status("acct1"); l.Failures != 1 {
		t.Fatalf("%d failures during the outage, want 1", l.Failures)
	}
	if _, err := store.Truncate(); err != nil {
		t.Fatal(err)
	}
	var want []string
	want = append(want, e.write("acct1", 1)...)
	mu.Lock()
	down = false
	mu.Unlock()
	e.advanceUntil("export after the outage", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.Cursor == mustEnd(t, store, "acct1")
	})
	r, _ := e.st.Get("acct1")
	if len(r.Stream.Gaps) != 1 || r.Stream.Gaps[0].FromLSN != r0.Stream.Cursor+1 {
		t.Fatalf("gaps %+v, want one starting after the enable position %d", r.Stream.Gaps, r0.Stream.Cursor)
	}
	g := r.Stream.Gaps[0]
	// Everything exported is exactly what retention kept after the gap.
	es, err := store.ReadLog("acct1", g.ToLSN, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, en := range es {
		for _, c := range en.Changes {
			kept = append(kept, string(c.Record))
		}
	}
	got := e.dest.lines(t, "bkt/")
	if !slices.Equal(got, kept) || !slices.Contains(got, want[0]) {
		t.Fatalf("exported %d records, want the %d retained after the gap", len(got), len(kept))
	}
}

func TestRestartResumesFromTheCursor(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Hour})
	e.enable("acct1", "bkt")
	want := e.write("acct1", 3)
	// Stop without flushing: a crash. The changes stay in the log.
	e.exp.Close(canceled())
	e.exp = nil
	if n := len(e.dest.keys()); n != 0 {
		t.Fatalf("%d objects written before the crash", n)
	}
	e.start()
	want = append(want, e.write("acct1", 2)...)
	e.stop() // graceful: flushes
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) {
		t.Fatalf("after restart: got %d records, want %d", len(got), len(want))
	}
}

// TestRestartRetriesTheSavedBatch: an upload whose answer was lost when
// j1ds stopped is retried after the restart with exactly the batch it
// held (saved before it started), not with the changes committed since:
// a late arrival of the first request then writes the same object again,
// never a shorter one over a longer.
func TestRestartRetriesTheSavedBatch(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Hour})
	e.enable("acct1", "bkt")
	first := e.write("acct1", 3)
	e.dest.storeThenFail = true // stored, but j1ds never hears so
	e.dest.fail = func(string) error { return errors.New("connection reset by peer") }
	e.stop() // the final flush fails: the cursor stays
	r, _ := e.st.Get("acct1")
	if r.Stream.ObjectsExported != 0 || r.Stream.Attempt == nil {
		t.Fatalf("after the failed upload: %d objects, attempt %+v; want 0 and the batch saved", r.Stream.ObjectsExported, r.Stream.Attempt)
	}
	stored := e.dest.keys()
	if len(stored) != 1 {
		t.Fatalf("%d objects in the bucket, want the 1 whose answer was lost", len(stored))
	}
	before := bytes.Clone(e.dest.objects[stored[0]])

	later := e.write("acct1", 2) // committed while j1ds was down
	e.dest.storeThenFail, e.dest.fail = false, nil
	e.start()
	e.stop()
	keys := e.dest.keys()
	if len(keys) != 2 || keys[0] != stored[0] {
		t.Fatalf("objects %q, want %q again and one more", keys, stored[0])
	}
	if !bytes.Equal(e.dest.objects[stored[0]], before) {
		t.Error("the retry after the restart stored other bytes under the same key")
	}
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, append(first, later...)) {
		t.Fatalf("records %d, want the %d changes once each", len(got), len(first)+len(later))
	}
	if r, _ := e.st.Get("acct1"); r.Stream.Attempt != nil || r.Stream.ObjectsExported != 2 {
		t.Fatalf("after the retry: attempt %+v, %d objects; want none pending and 2", r.Stream.Attempt, r.Stream.ObjectsExported)
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestObjectKeyLayout(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 890123000, time.UTC).UnixMicro()
	got := exporter.ObjectKey("j1dev", ts, ".jsonl")
	want := "jupiterone/graph/cdc/accountId=j1dev/year=2026/month=03/day=04/time=050607.890123Z.jsonl"
	if got != want {
		t.Fatalf("key %q, want %q", got, want)
	}
	if strings.Contains(got, ":") {
		t.Fatal("a key must not contain ':'")
	}
}

// TestRecordsOfEverySizeArriveWhole: the lines of transactions shorter
// than exporter.LineChunk are gathered into chunks, longer ones go on in
// one piece after the chunk gathered so far; records that straddle a
// chunk's end, or are larger than two chunks, arrive whole and in order.
func TestRecordsOfEverySizeArriveWhole(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Second})
	e.enable("acct1", "bkt")
	const chunk = exporter.LineChunk
	txs := [][]int{{10, chunk - 400}, {5000, 1}, {700}, {3 * chunk}, {chunk}, {2*chunk + 17, 10}, {20}}
	var want []string
	for tx, sizes := range txs {
		raws := make([][]byte, len(sizes))
		for i, n := range sizes {
			raws[i] = fmt.Appendf(nil, `{"_key":"big-record-%d-%d","_type":"test_blob","_class":"Record","pad":%q}`, tx, i, strings.Repeat(string(rune('a'+i)), n))
		}
		want = append(want, e.writeObjects("acct1", raws)...)
	}
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	waitFor(t, "the records exported", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.Cursor == mustEnd(t, e.store, "acct1")
	})
	got := e.dest.lines(t, "bkt/")
	if len(got) != len(want) {
		t.Fatalf("%d lines exported, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d: %d bytes exported, want the record of %d bytes", i, len(got[i]), len(want[i]))
		}
	}
}
