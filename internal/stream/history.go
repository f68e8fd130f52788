package stream

import (
	"slices"
	"time"
)

// The export history of an account is kept in its State as fixed buckets
// of HistoryBucketWidth: at most HistoryBuckets of them, covering the last
// HistoryWindow. Fixed buckets bound the history whatever the flush
// interval (from one second to hours): 96 buckets of about 100 bytes of
// JSON, under 10 KB in the state row. Fifteen minutes holds a few flushes
// at the default interval of five minutes, so a bucket shows what a flush
// did without the state growing with every flush.
const (
	HistoryBucketWidth = 15 * time.Minute
	HistoryWindow      = 24 * time.Hour
	HistoryBuckets     = int(HistoryWindow / HistoryBucketWidth)
)

// HistoryBucket is what an account's exports did in one interval of
// HistoryBucketWidth starting at Start.
type HistoryBucket struct {
	Start time.Time `json:"start"`
	// Objects and Events count the objects stored and the change records
	// they hold.
	Objects int64 `json:"objects"`
	Events  int64 `json:"events"`
	// Failures counts the attempts that failed.
	Failures int64 `json:"failures"`
	// MaxLagSeconds is the greatest age of the oldest change of a batch,
	// when it was stored or when an attempt to store it failed.
	MaxLagSeconds float64 `json:"maxLagSeconds"`
}

// record adds an export outcome at time at to the history: objects and
// events stored, failures, and the lag of the batch. Buckets older than
// HistoryWindow before at are dropped, so the history never holds more
// than HistoryBuckets.
func (s *State) record(at time.Time, objects, events, failures int64, lag time.Duration) {
	start := at.UTC().Truncate(HistoryBucketWidth)
	i, found := slices.BinarySearchFunc(s.History, start, func(b HistoryBucket, t time.Time) int { return b.Start.Compare(t) })
	if !found {
		s.History = slices.Insert(s.History, i, HistoryBucket{Start: start})
	}
	b := &s.History[i]
	b.Objects += objects
	b.Events += events
	b.Failures += failures
	b.MaxLagSeconds = max(b.MaxLagSeconds, max(0, lag.Seconds()))
	s.pruneHistory(start)
}

// pruneHistory drops the buckets that start HistoryWindow or more before
// the bucket starting at newest, and any past HistoryBuckets.
func (s *State) pruneHistory(newest time.Time) {
	cut := newest.Add(-HistoryWindow)
	n := 0
	for n < len(s.History) && !s.History[n].Start.After(cut) {
		n++
	}
	s.History = s.History[n:]
	if len(s.History) > HistoryBuckets {
		s.History = s.History[len(s.History)-HistoryBuckets:]
	}
	if len(s.History) == 0 {
		s.History = nil
	}
}

// HistoryAt returns the history as seen at now: HistoryBuckets buckets,
// oldest first, the last one holding now, with zero buckets where nothing
// was recorded (no export, no failure).
func (s State) HistoryAt(now time.Time) []HistoryBucket {
	last := now.UTC().Truncate(HistoryBucketWidth)
	first := last.Add(-time.Duration(HistoryBuckets-1) * HistoryBucketWidth)
	out := make([]HistoryBucket, HistoryBuckets)
	for i := range out {
		out[i].Start = first.Add(time.Duration(i) * HistoryBucketWidth)
	}
	for _, b := range s.History {
		if i := int(b.Start.Sub(first) / HistoryBucketWidth); !b.Start.Before(first) && i < HistoryBuckets {
			out[i] = b
		}
	}
	return out
}
