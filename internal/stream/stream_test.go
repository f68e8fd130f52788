package stream_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/stream"
)

var at = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// show prints the parts of a state the rules change, one line.
func show(s stream.State) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cursor=%d objects=%d events=%d", s.Cursor, s.ObjectsExported, s.EventsExported)
	if s.Attempt != nil {
		fmt.Fprintf(&b, " attempt=%d..%d@%d", s.Attempt.AfterLSN+1, s.Attempt.ThroughLSN, s.Attempt.Generation)
	}
	if s.LastError != nil {
		fmt.Fprintf(&b, " error=%s", s.LastError.Code)
	}
	for _, g := range s.Gaps {
		fmt.Fprintf(&b, " gap=%d..%d", g.FromLSN, g.ToLSN)
	}
	return b.String()
}

// TestRules applies a sequence of changes to a stream of generation 2 at
// cursor 10 and compares the outcome of each with the expected state or
// error.
func TestRules(t *testing.T) {
	type step struct {
		name string
		do   func(*stream.State) error
		want string // the state after, or "error: <text>" when it fails
	}
	attempt := func(gen, after, through uint64) func(*stream.State) error {
		return func(s *stream.State) error { return s.SaveAttempt(gen, after, through, "") }
	}
	advance := func(gen, lsn uint64, events int) func(*stream.State) error {
		return func(s *stream.State) error { return s.Advance(gen, lsn, events, "k", at, 0) }
	}
	gap := func(gen, from, to uint64) func(*stream.State) error {
		return func(s *stream.State) error {
			_, _, err := s.SkipGap(gen, stream.Gap{FromLSN: from, ToLSN: to, At: at})
			return err
		}
	}
	setErr := func(gen uint64, code string) func(*stream.State) error {
		return func(s *stream.State) error {
			var p *stream.Problem
			if code != "" {
				p = &stream.Problem{Code: code, At: at}
			}
			return s.SetError(gen, p, 0)
		}
	}
	disable := func(s *stream.State) error { s.Enabled = false; return nil }
	for _, c := range []struct {
		name  string
		steps []step
	}{
		{"an attempt is saved from the cursor and cleared by the advance", []step{
			{"attempt", attempt(2, 10, 15), "cursor=10 objects=0 events=0 attempt=11..15@2"},
			{"advance", advance(2, 15, 7), "cursor=15 objects=1 events=7"},
		}},
		{"an attempt must start at the cursor and hold something", []step{
			{"behind", attempt(2, 9, 15), "error: attempt a: batch 10..15 does not start at the cursor 10: stream settings changed: the cursor moved under this exporter"},
			{"empty", attempt(2, 10, 10), "error: attempt a: batch 11..10 is empty"},
		}},
		{"the cursor only moves forward", []step{
			{"same", advance(2, 10, 1), "error: advance a: cursor 10 would not move forward from 10: stream settings changed: the cursor moved under this exporter"},
			{"back", advance(2, 9, 1), "error: advance a: cursor 9 would not move forward from 10: stream settings changed: the cursor moved under this exporter"},
		}},
		{"another generation is stale", []step{
			{"attempt", attempt(1, 10, 15), "error: stream settings changed"},
			{"advance", advance(3, 15, 1), "error: stream settings changed"},
			{"gap", gap(1, 11, 20), "error: stream settings changed"},
			{"error", setErr(1, "X"), "error: stream settings changed"},
		}},
		{"a disabled stream moves no cursor but shows its generation's error", []step{
			{"disable", disable, "cursor=10 objects=0 events=0"},
			{"advance", advance(2, 15, 1), "error: stream settings changed"},
			{"error", setErr(2, "ACCESS_DENIED"), "cursor=10 objects=0 events=0 error=ACCESS_DENIED"},
		}},
		{"an error is shown until the next export", []step{
			{"error", setErr(2, "NETWORK"), "cursor=10 objects=0 events=0 error=NETWORK"},
			{"advance", advance(2, 12, 2), "cursor=12 objects=1 events=2"},
		}},
		{"gaps move the cursor, and one outage is one gap", []step{
			{"gap", gap(2, 11, 20), "cursor=20 objects=0 events=0 gap=11..20"},
			{"continued", gap(2, 21, 30), "cursor=30 objects=0 events=0 gap=11..30"},
			{"export", advance(2, 31, 1), "cursor=31 objects=1 events=1 gap=11..30"},
			{"new outage", gap(2, 32, 40), "cursor=40 objects=1 events=1 gap=11..30 gap=32..40"},
		}},
		{"a gap clears the attempt it skips", []step{
			{"attempt", attempt(2, 10, 15), "cursor=10 objects=0 events=0 attempt=11..15@2"},
			{"gap", gap(2, 11, 20), "cursor=20 objects=0 events=0 gap=11..20"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := stream.State{Account: "a", Enabled: true, Generation: 2, Cursor: 10}
			for _, st := range c.steps {
				before := show(s)
				err := st.do(&s)
				got := show(s)
				if err != nil {
					if after := show(s); after != before {
						t.Errorf("%s failed and still changed the state: %s -> %s", st.name, before, after)
					}
					got = "error: " + err.Error()
					if !strings.Contains(got, strings.TrimPrefix(st.want, "error: ")) || !strings.HasPrefix(st.want, "error: ") {
						t.Errorf("%s: %s, want %s", st.name, got, st.want)
					}
					continue
				}
				if got != st.want {
					t.Errorf("%s: %s, want %s", st.name, got, st.want)
				}
			}
		})
	}
}

func TestStaleIsErrStale(t *testing.T) {
	s := stream.State{Enabled: true, Generation: 1}
	if err := s.Advance(2, 5, 1, "k", at, 0); !errors.Is(err, stream.ErrStale) {
		t.Fatalf("advance of another generation: %v, want ErrStale", err)
	}
}

func TestGapsAreBounded(t *testing.T) {
	s := stream.State{Enabled: true, Generation: 1}
	for i := range uint64(stream.MaxGaps + 5) {
		// Each gap leaves one exported change behind it, so none continues
		// the last.
		if _, isNew, err := s.SkipGap(1, stream.Gap{FromLSN: 2*i + 1, ToLSN: 2*i + 1}); err != nil || !isNew {
			t.Fatalf("gap %d: new %v, %v", i, isNew, err)
		}
		if err := s.Advance(1, 2*i+2, 1, "k", at, 0); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Gaps) != stream.MaxGaps || s.Gaps[0].FromLSN != 11 {
		t.Fatalf("%d gaps kept, the first from %d; want the last %d, from 11", len(s.Gaps), s.Gaps[0].FromLSN, stream.MaxGaps)
	}
}
