// Package settingstest checks that a backend keeps the contract of
// settings.Store and stream.Checkpoint: the rules of saving settings, the
// separation of the stream state from the settings, generation fencing,
// atomic updates and durability across a restart. A backend runs it from
// its own tests with an Opener.
package settingstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
)

// Backend is what the suite tests: one backend's settings and checkpoint,
// which share their records.
type Backend struct {
	Settings   settings.Store
	Checkpoint stream.Checkpoint
	// Reopen closes the backend and opens the same storage again, as a
	// restart does.
	Reopen func() Backend
}

// Opener makes a new, empty backend for one test; the backend closes
// with the test.
type Opener func(t *testing.T) Backend

var now = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

const owner = "111122223333"

var on = settings.Settings{Enabled: true, BucketName: "bkt-one", AWSAccountID: owner, RegionConfirmed: true}

// enable saves a passing test and enables account into bucket at the log
// position end.
func enable(t *testing.T, s *settings.Service, account, bucket string, end uint64) settings.Record {
	t.Helper()
	if _, err := s.SaveTest(account, settings.ConnectionTest{OK: true, At: now, BucketName: bucket, AWSAccountID: owner}); err != nil {
		t.Fatal(err)
	}
	n := on
	n.BucketName = bucket
	r, err := s.Apply(account, n, func() (uint64, error) { return end, nil })
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Run runs every case against backends made by open.
func Run(t *testing.T, open Opener) {
	t.Run("NeverConfigured", func(t *testing.T) { neverConfigured(t, open(t)) })
	t.Run("ApplyNeedsARecentPassingTestOfTheSameValues", func(t *testing.T) { applyNeedsTest(t, open(t)) })
	t.Run("EnableDisableReenable", func(t *testing.T) { enableDisableReenable(t, open(t)) })
	t.Run("CheckpointFencing", func(t *testing.T) { checkpointFencing(t, open(t)) })
	t.Run("CheckpointLeavesSettingsAlone", func(t *testing.T) { checkpointLeavesSettings(t, open(t)) })
	t.Run("FailedUpdateWritesNothing", func(t *testing.T) { failedUpdate(t, open(t)) })
	t.Run("ConcurrentWritersLoseNothing", func(t *testing.T) { concurrentWriters(t, open(t)) })
	t.Run("SurvivesReopen", func(t *testing.T) { survivesReopen(t, open(t)) })
	t.Run("HistoryKeptAndBounded", func(t *testing.T) { historyKept(t, open(t)) })
	t.Run("ObjectSuffixKeptWithoutNewGeneration", func(t *testing.T) { objectSuffix(t, open(t)) })
	t.Run("AccountsApart", func(t *testing.T) { accountsApart(t, open(t)) })
	t.Run("EnableNeedsTheEntitlement", func(t *testing.T) { enableNeedsEntitlement(t, open(t)) })
	t.Run("StopUnentitled", func(t *testing.T) { stopUnentitled(t, open(t)) })
	t.Run("GateRefusesUnentitled", func(t *testing.T) { gateRefusesUnentitled(t, open(t)) })
	t.Run("EnableRacingRemoval", func(t *testing.T) { enableRacingRemoval(t, open(t)) })
}

func neverConfigured(t *testing.T, b Backend) {
	r, err := b.Settings.Get("acme")
	if err != nil {
		t.Fatal(err)
	}
	if r.Account != "acme" || r.Settings != (settings.Settings{}) || r.LastTest != nil || len(r.Periods) != 0 || r.Stream.Account != "acme" || r.Stream.Enabled || r.Stream.Generation != 0 {
		t.Fatalf("record of an account never configured: %+v", r)
	}
	st, err := b.Checkpoint.Load("acme")
	if err != nil || st.Account != "acme" || st.Enabled {
		t.Fatalf("stream state of an account never configured: %+v, %v", st, err)
	}
	if all, err := b.Checkpoint.Enabled(); err != nil || len(all) != 0 {
		t.Fatalf("enabled streams of an empty backend: %+v, %v", all, err)
	}
}

func applyNeedsTest(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	end := func() (uint64, error) { return 42, nil }
	test := func(ok bool, age time.Duration, bucket string) settings.ConnectionTest {
		return settings.ConnectionTest{OK: ok, At: now.Add(-age), BucketName: bucket, AWSAccountID: owner}
	}
	noRegion := on
	noRegion.RegionConfirmed = false
	for _, c := range []struct {
		name string
		test *settings.ConnectionTest
		n    settings.Settings
		want string // error text, "" for success
	}{
		{"no test", nil, on, "connection test required: run Test Connection"},
		{"failed test", ptr(test(false, 0, "bkt-one")), on, "connection test required: the last connection test of bucket \"bkt-one\" failed"},
		{"test of another bucket", ptr(test(true, 0, "bkt-other")), on, "the last connection test was for bucket \"bkt-other\""},
		{"old test", ptr(test(true, 2*time.Hour, "bkt-one")), on, "older than an hour"},
		{"region not confirmed", ptr(test(true, time.Minute, "bkt-one")), noRegion, "regionConfirmed: confirm"},
		{"recent passing test", ptr(test(true, time.Minute, "bkt-one")), on, ""},
	} {
		if c.test != nil {
			if _, err := s.SaveTest("a", *c.test); err != nil {
				t.Fatal(err)
			}
		}
		before, _ := b.Settings.Get("a")
		r, err := s.Apply("a", c.n, end)
		switch {
		case c.want == "" && err != nil:
			t.Fatalf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Fatalf("%s: %v, want an error with %q", c.name, err, c.want)
		case c.want != "":
			if after, _ := b.Settings.Get("a"); !Same(t, after, before) {
				t.Fatalf("%s: a refused save changed the record: %+v -> %+v", c.name, before, after)
			}
		default:
			if r.Stream.Generation != 1 || r.Stream.Cursor != 42 || r.Stream.EnabledAtLSN != 42 || !r.Stream.Enabled || r.Stream.Target != on.Target() {
				t.Fatalf("enabled stream %+v: starts at the log's end, generation 1, target %s", r.Stream, on.Target())
			}
		}
	}
	var fe *settings.FieldError
	if _, err := s.Apply("a", noRegion, end); !errors.As(err, &fe) || fe.Field != "regionConfirmed" {
		t.Fatalf("enable without region confirmation: %v, want a FieldError", err)
	}
	if _, err := s.Apply("b", on, end); !errors.Is(err, settings.ErrTestRequired) {
		t.Fatalf("enable without a test: %v, want ErrTestRequired", err)
	}
}

// Same reports whether a and b encode to the same JSON: the comparison of
// records holding pointers and times.
func Same(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(x) == string(y)
}

func ptr[T any](v T) *T { return &v }

func enableDisableReenable(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	r := enable(t, s, "a", "bkt-one", 42)
	if all, err := b.Checkpoint.Enabled(); err != nil || len(all) != 1 || all[0].Account != "a" || all[0].Generation != 1 || all[0].Cursor != 42 {
		t.Fatalf("enabled streams: %+v, %v", all, err)
	}
	if err := b.Checkpoint.Advance("a", 1, 50, 3, "k1", now, 0); err != nil {
		t.Fatal(err)
	}
	r, err := s.Apply("a", settings.Settings{BucketName: r.Settings.BucketName, AWSAccountID: owner}, func() (uint64, error) { return 60, nil })
	if err != nil {
		t.Fatal(err)
	}
	if r.Settings.Enabled || r.Stream.Enabled || r.Stream.Generation != 2 || r.Stream.Cursor != 50 || r.Stream.ObjectsExported != 1 {
		t.Fatalf("disabled stream %+v: keeps its counters, new generation", r.Stream)
	}
	if all, err := b.Checkpoint.Enabled(); err != nil || len(all) != 0 {
		t.Fatalf("enabled streams after disable: %+v, %v", all, err)
	}
	if err := b.Checkpoint.Advance("a", 1, 55, 1, "k2", now, 0); !errors.Is(err, stream.ErrStale) {
		t.Fatalf("the old generation moved the cursor after disable: %v", err)
	}
	r = enable(t, s, "a", "bkt-two", 70)
	if r.Stream.Generation != 3 || r.Stream.Cursor != 70 || r.Stream.EnabledAtLSN != 70 || r.Stream.Target != (settings.Settings{BucketName: "bkt-two", AWSAccountID: owner}).Target() {
		t.Fatalf("re-enabled stream %+v: starts fresh at the log's end", r.Stream)
	}
	var got []string
	for _, p := range r.Periods {
		got = append(got, fmt.Sprintf("%d..%d closed=%v", p.StartLSN, p.EndLSN, !p.EndAt.IsZero()))
	}
	if want := "42..60 closed=true, 70..0 closed=false"; strings.Join(got, ", ") != want {
		t.Fatalf("periods %s, want %s", strings.Join(got, ", "), want)
	}
}

// historyKept: exports and failures add to the stream state's history,
// which is saved with it (a reopen keeps it), survives a disable, and
// holds no bucket older than the window however long the stream ran.
func historyKept(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	enable(t, s, "a", "bkt-one", 10)
	lsn := uint64(10)
	for h := range 30 { // an export an hour for 30 hours, and a failure
		at := now.Add(time.Duration(h) * time.Hour)
		lsn++
		if err := b.Checkpoint.Advance("a", 1, lsn, 2, "k", at, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := b.Checkpoint.SetError("a", 1, &stream.Problem{Code: "X", At: at.Add(time.Second)}, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Apply("a", settings.Settings{BucketName: "bkt-one", AWSAccountID: owner}, func() (uint64, error) { return lsn, nil }); err != nil {
		t.Fatal(err)
	}
	b = b.Reopen()
	st, err := b.Checkpoint.Load("a")
	if err != nil {
		t.Fatal(err)
	}
	last := now.Add(29 * time.Hour)
	if len(st.History) != 24 {
		t.Fatalf("history of 30 hourly exports holds %d buckets, want the last 24: %+v", len(st.History), st.History)
	}
	for _, hb := range st.History {
		if last.Sub(hb.Start) >= stream.HistoryWindow || hb.Objects != 1 || hb.Events != 2 || hb.Failures != 1 || hb.MaxLagSeconds != 180 {
			t.Errorf("bucket %+v: want one object of 2 events, one failure, lag 180s, within %s of %s", hb, stream.HistoryWindow, last)
		}
	}
}

func checkpointFencing(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	enable(t, s, "a", "bkt-one", 10)
	cp := b.Checkpoint
	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"attempt of another generation", func() error { return cp.SaveAttempt("a", 2, 10, 20, "") }, "stream settings changed"},
		{"attempt behind the cursor", func() error { return cp.SaveAttempt("a", 1, 9, 20, "") }, "does not start at the cursor 10"},
		{"attempt", func() error { return cp.SaveAttempt("a", 1, 10, 20, "") }, ""},
		{"advance backwards", func() error { return cp.Advance("a", 1, 10, 1, "k", now, 0) }, "would not move forward"},
		{"advance", func() error { return cp.Advance("a", 1, 20, 4, "k", now, 0) }, ""},
		{"gap", func() error { _, _, err := cp.SkipGap("a", 1, stream.Gap{FromLSN: 21, ToLSN: 30, At: now}); return err }, ""},
		{"error", func() error { return cp.SetError("a", 1, &stream.Problem{Code: "NETWORK", At: now}, 0) }, ""},
		{"error of another generation", func() error { return cp.SetError("a", 7, nil, 0) }, "stream settings changed"},
	}
	for _, st := range steps {
		before, _ := cp.Load("a")
		err := st.do()
		if st.want == "" && err != nil || st.want != "" && (err == nil || !strings.Contains(err.Error(), st.want)) {
			t.Fatalf("%s: %v, want %q", st.name, err, st.want)
		}
		if st.want != "" {
			if after, _ := cp.Load("a"); !Same(t, after, before) {
				t.Fatalf("%s: a refused change was written: %+v -> %+v", st.name, before, after)
			}
		}
	}
	got, err := cp.Load("a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Cursor != 30 || got.Attempt != nil || got.ObjectsExported != 1 || got.EventsExported != 4 || got.LastExportKey != "k" ||
		!got.LastExportAt.Equal(now) || got.LastError == nil || got.LastError.Code != "NETWORK" || len(got.Gaps) != 1 {
		t.Fatalf("stream state %+v", got)
	}
	if _, err := cp.Load("a"); err != nil {
		t.Fatal(err)
	}
	g, isNew, err := cp.SkipGap("a", 1, stream.Gap{FromLSN: 31, ToLSN: 35, At: now})
	if err != nil || isNew || g.FromLSN != 21 || g.ToLSN != 35 {
		t.Fatalf("continued gap: %+v new=%v %v, want 21..35 extended", g, isNew, err)
	}
}

func checkpointLeavesSettings(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	want := enable(t, s, "a", "bkt-one", 5)
	if err := b.Checkpoint.SaveAttempt("a", 1, 5, 9, ""); err != nil {
		t.Fatal(err)
	}
	if err := b.Checkpoint.Advance("a", 1, 9, 2, "k", now, 0); err != nil {
		t.Fatal(err)
	}
	got, err := b.Settings.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if got.Settings != want.Settings || !Same(t, got.LastTest, want.LastTest) || !Same(t, got.Periods, want.Periods) {
		t.Fatalf("checkpoint writes changed the settings: %+v, want %+v", got, want)
	}
	if got.Stream.Cursor != 9 {
		t.Fatalf("Get shows cursor %d, want the checkpoint's 9", got.Stream.Cursor)
	}
}

func failedUpdate(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	enable(t, s, "a", "bkt-one", 5)
	before, _ := b.Settings.Get("a")
	boom := errors.New("boom")
	_, err := b.Settings.Update("a", func(r *settings.Record) error {
		r.Settings.BucketName = "changed"
		r.Stream.Cursor = 99
		r.Periods = nil
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want fn's error", err)
	}
	if after, _ := b.Settings.Get("a"); !Same(t, after, before) {
		t.Fatalf("a failed update was written: %+v -> %+v", before, after)
	}
}

// concurrentWriters runs settings saves and checkpoint writes of one
// account at once: every one of them must be in the final state.
func concurrentWriters(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	enable(t, s, "a", "bkt-one", 0)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range n {
			lsn := uint64(i + 1)
			if err := b.Checkpoint.Advance("a", 1, lsn, 1, fmt.Sprint("k", lsn), now, 0); err != nil {
				errs <- err
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range n {
			if _, err := s.SaveTest("a", settings.ConnectionTest{OK: true, At: now.Add(time.Duration(i) * time.Second), BucketName: "bkt-one", AWSAccountID: owner}); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r, err := b.Settings.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream.Cursor != n || r.Stream.ObjectsExported != n || r.LastTest == nil || !r.LastTest.At.Equal(now.Add((n-1)*time.Second)) {
		t.Fatalf("after %d advances and %d tests at once: cursor %d, objects %d, last test %+v", n, n, r.Stream.Cursor, r.Stream.ObjectsExported, r.LastTest)
	}
}

func survivesReopen(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	enable(t, s, "a", "bkt-one", 5)
	if err := b.Checkpoint.SaveAttempt("a", 1, 5, 8, ""); err != nil {
		t.Fatal(err)
	}
	want, _ := b.Settings.Get("a")
	b = b.Reopen()
	got, err := b.Settings.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	if !Same(t, got, want) {
		t.Fatalf("after reopen %+v, want %+v", got, want)
	}
	if all, err := b.Checkpoint.Enabled(); err != nil || len(all) != 1 || all[0].Attempt == nil || all[0].Attempt.ThroughLSN != 8 {
		t.Fatalf("enabled after reopen: %+v, %v", all, err)
	}
}

// objectSuffix: the suffix an account chooses reaches its stream state
// without a connection test or a new generation, a batch's attempt keeps
// the suffix it was attempted with, both survive a restart, and an
// invalid suffix is refused with nothing written.
func objectSuffix(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	r := enable(t, s, "a", "bkt-one", 5)
	gen := r.Stream.Generation
	// A failed test of the same bucket: a save that needed a test would
	// be refused.
	if _, err := s.SaveTest("a", settings.ConnectionTest{OK: false, At: now, BucketName: "bkt-one", AWSAccountID: owner}); err != nil {
		t.Fatal(err)
	}
	if err := b.Checkpoint.SaveAttempt("a", gen, 5, 8, ".jsonl"); err != nil {
		t.Fatal(err)
	}
	gz := on
	gz.ObjectSuffix = settings.SuffixJSONLGz
	if _, err := s.Apply("a", gz, func() (uint64, error) { return 9, nil }); err != nil {
		t.Fatalf("choosing .jsonl.gz: %v", err)
	}
	bad := on
	bad.ObjectSuffix = ".gz"
	var fe *settings.FieldError
	if _, err := s.Apply("a", bad, func() (uint64, error) { return 9, nil }); !errors.As(err, &fe) || fe.Field != "objectSuffix" {
		t.Fatalf("choosing .gz: %v, want a FieldError of objectSuffix", err)
	}
	b = b.Reopen()
	got, err := b.Settings.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	st := got.Stream
	switch {
	case got.Settings.ObjectSuffix != ".jsonl.gz" || st.Suffix != ".jsonl.gz":
		t.Fatalf("after reopen: settings suffix %q, stream suffix %q; want .jsonl.gz", got.Settings.ObjectSuffix, st.Suffix)
	case st.Generation != gen || !st.Enabled || st.Cursor != 5:
		t.Fatalf("after choosing the suffix: generation %d enabled %v cursor %d; want generation %d, enabled, cursor 5", st.Generation, st.Enabled, st.Cursor, gen)
	case st.Attempt == nil || st.Attempt.Suffix != ".jsonl" || st.Attempt.ThroughLSN != 8:
		t.Fatalf("after reopen the attempt is %+v, want 6..8 with its suffix .jsonl", st.Attempt)
	}
	if all, err := b.Checkpoint.Enabled(); err != nil || len(all) != 1 || all[0].Suffix != ".jsonl.gz" {
		t.Fatalf("enabled after reopen: %+v, %v", all, err)
	}
}

func accountsApart(t *testing.T, b Backend) {
	s := settings.New(b.Settings, clock)
	enable(t, s, "a", "bkt-one", 5)
	enable(t, s, "ab", "bkt-two", 7)
	if err := b.Checkpoint.Advance("a", 1, 6, 1, "k", now, 0); err != nil {
		t.Fatal(err)
	}
	r, err := b.Settings.Get("ab")
	if err != nil || r.Stream.Cursor != 7 || r.Settings.BucketName != "bkt-two" {
		t.Fatalf("account ab after a's advance: %+v, %v", r, err)
	}
	all, err := b.Checkpoint.Enabled()
	if err != nil || len(all) != 2 {
		t.Fatalf("enabled: %+v, %v", all, err)
	}
}
