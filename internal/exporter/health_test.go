package exporter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
)

// TestHealthOf pins the badge's rules: not enabled wins over everything,
// then a failure, then lag.
func TestHealthOf(t *testing.T) {
	for _, c := range []struct {
		enabled, failed, lagging bool
		want                     exporter.Health
	}{
		{false, false, false, exporter.HealthStopped},
		{false, true, true, exporter.HealthStopped},
		{true, true, true, exporter.HealthFailing},
		{true, true, false, exporter.HealthFailing},
		{true, false, true, exporter.HealthDelayed},
		{true, false, false, exporter.HealthStreaming},
	} {
		if got := exporter.HealthOf(c.enabled, c.failed, c.lagging); got != c.want {
			t.Errorf("HealthOf(enabled %v, failed %v, lagging %v) = %s, want %s", c.enabled, c.failed, c.lagging, got, c.want)
		}
	}
}

// TestHistoryCountsExportsFailuresAndLag: the exporter adds each stored
// object to the account's history with the age of its oldest change, and
// each failed attempt with the age of the oldest change it held, on the
// exporter's clock.
func TestHistoryCountsExportsFailuresAndLag(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Second, Classify: func(err error) exporter.Classification {
		return exporter.Classification{Code: "ACCESS_DENIED", Message: "fix the bucket policy", Permanent: true}
	}})
	// totals sums the history's buckets.
	totals := func() (objects, events, failures int64, maxLag float64) {
		r, _ := e.st.Get("acct1")
		for _, b := range r.Stream.History {
			objects, events, failures = objects+b.Objects, events+b.Events, failures+b.Failures
			maxLag = max(maxLag, b.MaxLagSeconds)
		}
		return
	}
	e.enable("acct1", "bkt")
	e.write("acct1", 2)
	e.clock.Advance(3 * time.Second) // stored 3 s after the commit
	waitFor(t, "the export", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.ObjectsExported == 1
	})
	if o, ev, f, lag := totals(); o != 1 || ev != 2 || f != 0 || lag != 3 {
		t.Fatalf("after the export the history counts %d objects, %d events, %d failures, greatest lag %vs; want 1, 2, 0 and 3s", o, ev, f, lag)
	}
	e.dest.fail = func(string) error { return errors.New("AccessDenied") }
	e.write("acct1", 1)
	e.clock.Advance(5 * time.Second) // fails 5 s after the commit
	waitFor(t, "the failure", func() bool {
		r, _ := e.st.Get("acct1")
		return r.Stream.LastError != nil
	})
	if o, ev, f, lag := totals(); o != 1 || ev != 2 || f != 1 || lag != 5 {
		t.Fatalf("after the failure the history counts %d objects, %d events, %d failures, greatest lag %vs; want 1, 2, 1 and 5s", o, ev, f, lag)
	}
}
