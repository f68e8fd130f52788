package verify

import (
	"fmt"
	"strings"
	"time"
)

// Period is one continuous enabled period of the account, as j1ds reports
// it in the data-streaming status: changes after StartLSN up to EndLSN
// (0 while it runs) were streamed. EndAt is zero while it runs.
type Period struct {
	StartLSN uint64    `json:"startLsn"`
	StartAt  time.Time `json:"startAt,omitzero"`
	EndLSN   uint64    `json:"endLsn,omitempty"`
	EndAt    time.Time `json:"endAt,omitzero"`
}

// Gap is a range of changes dropped because the account's backlog outlived
// the log's retention, as j1ds reports it.
type Gap struct {
	FromLSN uint64    `json:"fromLsn"`
	ToLSN   uint64    `json:"toLsn"`
	At      time.Time `json:"at"`
}

func (g Gap) String() string {
	return fmt.Sprintf("LSN %d-%d (recorded %s)", g.FromLSN, g.ToLSN, g.At.UTC().Format(time.RFC3339))
}

// periodSlack widens each period at its start. Enabling reads the log's
// end and then the clock, so a change committed in between belongs to the
// period and carries a commit time a moment before its start.
const periodSlack = time.Second

// periods assigns commit times to periods.
type periods struct {
	list []Period // oldest first; one zero period when unknown
	gaps [][]Gap  // per period, the retention gaps inside it
}

func newPeriods(ps []Period, gaps []Gap) *periods {
	if len(ps) == 0 {
		ps = []Period{{}}
	}
	p := &periods{list: ps, gaps: make([][]Gap, len(ps))}
	for _, g := range gaps {
		for i, pr := range ps {
			if g.FromLSN > pr.StartLSN && (pr.EndLSN == 0 || g.FromLSN <= pr.EndLSN) {
				p.gaps[i] = append(p.gaps[i], g)
				break
			}
		}
	}
	return p
}

// find returns the period holding commit time ms (epoch ms): the one with
// start ≤ t ≤ end, else one that starts within periodSlack after t. A time
// outside every period gets the next period after it (or the last one)
// and inside false.
func (p *periods) find(ms int64) (i int, inside bool) {
	for i, pr := range p.list {
		if (pr.StartAt.IsZero() || pr.StartAt.UnixMilli() <= ms) && (pr.EndAt.IsZero() || ms <= pr.EndAt.UnixMilli()) {
			return i, true
		}
	}
	t := time.UnixMilli(ms)
	for i, pr := range p.list {
		if t.Before(pr.StartAt) {
			return i, !t.Before(pr.StartAt.Add(-periodSlack))
		}
	}
	return len(p.list) - 1, false
}

// gapNote names the retention gaps of period i, or "".
func (p *periods) gapNote(i int) string {
	if len(p.gaps[i]) == 0 {
		return ""
	}
	var s []string
	for _, g := range p.gaps[i] {
		s = append(s, g.String())
	}
	return fmt.Sprintf("; period %d has retention gaps, changes were dropped: %s", i+1, strings.Join(s, ", "))
}
