package stream_test

import (
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/stream"
)

// TestHistoryRecordsAndStaysBounded exports and fails on a stream for two
// days, one object a minute and a failure every ten minutes, and checks
// what the history holds: at most HistoryBuckets buckets, none older than
// HistoryWindow, each with the sums of its fifteen minutes.
func TestHistoryRecordsAndStaysBounded(t *testing.T) {
	s := stream.State{Account: "a", Enabled: true, Generation: 1}
	start := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	var now time.Time
	for m := range 2 * 24 * 60 {
		now = start.Add(time.Duration(m) * time.Minute)
		if err := s.Advance(1, uint64(m+1), 3, "k", now, time.Duration(m%15)*time.Second); err != nil {
			t.Fatal(err)
		}
		if m%10 == 0 {
			if err := s.SetError(1, &stream.Problem{Code: "X", At: now}, 40*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if len(s.History) > stream.HistoryBuckets {
			t.Fatalf("after %d minutes the history holds %d buckets, over %d", m, len(s.History), stream.HistoryBuckets)
		}
	}
	if len(s.History) != stream.HistoryBuckets {
		t.Fatalf("history holds %d buckets, want %d", len(s.History), stream.HistoryBuckets)
	}
	if oldest := s.History[0].Start; now.Sub(oldest) >= stream.HistoryWindow {
		t.Errorf("oldest bucket starts %s, %s before the last record: over the window", oldest, now.Sub(oldest))
	}
	b := s.History[len(s.History)-1] // 23:45 to 24:00 of the second day
	if b.Objects != 15 || b.Events != 45 || b.MaxLagSeconds != 40 || b.Failures != 1 {
		t.Errorf("last bucket = %+v, want 15 objects, 45 events, 1 failure (at :50), max lag 40s", b)
	}
	b = s.History[len(s.History)-2] // 23:30 to 23:45: failures at :30 and :40
	if b.Failures != 2 {
		t.Errorf("bucket %s has %d failures, want 2", b.Start, b.Failures)
	}

	// Read an hour after the last record: dense, ending at now, the last
	// four buckets empty.
	got := s.HistoryAt(now.Add(time.Hour))
	if len(got) != stream.HistoryBuckets {
		t.Fatalf("HistoryAt returned %d buckets, want %d", len(got), stream.HistoryBuckets)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Start.Sub(got[i-1].Start) != stream.HistoryBucketWidth {
			t.Fatalf("buckets %d and %d are not %s apart: %s, %s", i-1, i, stream.HistoryBucketWidth, got[i-1].Start, got[i].Start)
		}
	}
	for _, b := range got[len(got)-4:] {
		if b.Objects != 0 || b.Failures != 0 {
			t.Errorf("bucket %s after the last record holds %+v", b.Start, b)
		}
	}
	if b := got[len(got)-5]; b.Objects != 15 {
		t.Errorf("bucket %s holds %d objects, want 15", b.Start, b.Objects)
	}
}

// TestHistoryOutOfOrder records at an earlier time than the last record
// (another node's clock): the record lands in its own bucket, in order.
func TestHistoryOutOfOrder(t *testing.T) {
	s := stream.State{Account: "a", Enabled: true, Generation: 1}
	t0 := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	for i, at := range []time.Time{t0.Add(time.Hour), t0, t0.Add(30 * time.Minute)} {
		if err := s.Advance(1, uint64(i+1), 1, "k", at, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.History) != 3 || !s.History[0].Start.Equal(t0) || !s.History[1].Start.Equal(t0.Add(30*time.Minute)) || !s.History[2].Start.Equal(t0.Add(time.Hour)) {
		t.Fatalf("history = %+v, want three buckets in order", s.History)
	}
}
