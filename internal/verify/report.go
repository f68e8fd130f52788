package verify

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

// Report is the result of a verification. Its JSON form is what --json
// prints.
type Report struct {
	Account string `json:"account"`
	Source  string `json:"source"`
	Objects int    `json:"objects"`
	// Records counts the records read, by operation and by event type.
	Records RecordCounts `json:"records"`
	// IDs is the number of distinct object ids.
	IDs int `json:"objectIds"`
	// PeriodsFromJ1ds is false when no status was read and the whole stream
	// was checked as one period.
	PeriodsFromJ1ds bool           `json:"periodsFromJ1ds"`
	Periods         []PeriodReport `json:"periods"`
	// PredateStreaming counts object ids whose first record is at a version
	// above 1: created before streaming was enabled (or while it was
	// disabled). Not a violation.
	PredateStreaming int            `json:"predateStreaming"`
	Compare          *CompareReport `json:"compare,omitempty"`
	// Violations is the total; ByKind counts them per kind; List holds the
	// first ones (up to the configured maximum), in the order found.
	Violations int          `json:"violations"`
	ByKind     map[Kind]int `json:"violationsByKind"`
	List       []Violation  `json:"violationList"`
	Notes      []string     `json:"notes,omitempty"`
}

// RecordCounts counts records.
type RecordCounts struct {
	Total         int `json:"total"`
	Create        int `json:"create"`
	Update        int `json:"update"`
	Delete        int `json:"delete"`
	Entities      int `json:"entity"`
	Relationships int `json:"relationship"`
}

// PeriodReport is one enabled period and the records assigned to it.
type PeriodReport struct {
	Period
	Records int   `json:"records"`
	Gaps    []Gap `json:"gaps,omitempty"`
}

// CompareReport is the result of diffing the rebuilt graph against j1ds.
type CompareReport struct {
	StoreEntities      int `json:"storeEntities"`
	StoreRelationships int `json:"storeRelationships"`
	// Live is the number of objects live in the rebuilt graph.
	Live     int `json:"bucketLive"`
	Matching int `json:"matching"`
	Missing  int `json:"missingFromBucket"`
	Extra    int `json:"extraInBucket"`
	Differ   int `json:"differ"`
}

func newReport(cfg Config, p *periods) *Report {
	r := &Report{
		Account:         cfg.Account,
		Source:          cfg.Source.String(),
		PeriodsFromJ1ds: len(cfg.Periods) > 0,
		ByKind:          map[Kind]int{},
		List:            []Violation{},
		Notes:           slices.Clone(cfg.Notes),
	}
	for i, pr := range p.list {
		r.Periods = append(r.Periods, PeriodReport{Period: pr, Gaps: p.gaps[i]})
	}
	if !r.PeriodsFromJ1ds {
		r.Notes = append(r.Notes, "no enabled periods from j1ds (give --url and an administrator --key): the whole stream is checked as one period, so a version jump across a disable and re-enable is reported as a gap")
	}
	if cfg.Store != nil {
		r.Compare = &CompareReport{}
	}
	return r
}

func (r *Report) add(v Violation, keep int) {
	r.Violations++
	r.ByKind[v.Kind]++
	if len(r.List) < keep {
		r.List = append(r.List, v)
	}
}

func (r *Report) count(rec record) {
	c := &r.Records
	c.Total++
	switch rec.op {
	case graph.OpCreate:
		c.Create++
	case graph.OpUpdate:
		c.Update++
	case graph.OpDelete:
		c.Delete++
	}
	if rec.kind == graph.KindEntity {
		c.Entities++
	} else {
		c.Relationships++
	}
}

func (r *Report) finish() {
	if r.PredateStreaming > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("objects that predate streaming: %d; their first record in the bucket is at a version above 1, so their earlier history is not in the bucket", r.PredateStreaming))
	}
}

// Clean reports whether no rule was broken.
func (r *Report) Clean() bool { return r.Violations == 0 }

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("account:   %s", r.Account)
	p("source:    %s", r.Source)
	c := r.Records
	p("objects:   %d", r.Objects)
	p("records:   %d (create %d, update %d, delete %d; entity %d, relationship %d)", c.Total, c.Create, c.Update, c.Delete, c.Entities, c.Relationships)
	p("object ids: %d (%d predate streaming)", r.IDs, r.PredateStreaming)
	if r.PeriodsFromJ1ds {
		p("periods:   %d (from j1ds)", len(r.Periods))
		for i, pr := range r.Periods {
			end := "running"
			if !pr.EndAt.IsZero() {
				end = pr.EndAt.UTC().Format(time.RFC3339)
			}
			p("  %d. %s to %s: %d records", i+1, pr.StartAt.UTC().Format(time.RFC3339), end, pr.Records)
			for _, g := range pr.Gaps {
				p("     retention gap: %s", g)
			}
		}
	} else {
		p("periods:   1 (assumed: no status from j1ds)")
	}
	if cr := r.Compare; cr != nil {
		p("compare:   j1ds has %d entities and %d relationships live, the bucket %d objects live", cr.StoreEntities, cr.StoreRelationships, cr.Live)
		p("           matching %d, missing from the bucket %d, extra in the bucket %d, different %d", cr.Matching, cr.Missing, cr.Extra, cr.Differ)
	}
	for _, n := range r.Notes {
		p("note:      %s", n)
	}
	if r.Clean() {
		p("result:    OK, no violations")
		_, err := io.WriteString(w, b.String())
		return err
	}
	p("violations: %d", r.Violations)
	kinds := make([]Kind, 0, len(r.ByKind))
	for k := range r.ByKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		p("  %-20s %d", k, r.ByKind[k])
	}
	p("first %d:", len(r.List))
	for _, v := range r.List {
		p("  %s", v)
	}
	p("result:    FAILED, %d violations", r.Violations)
	_, err := io.WriteString(w, b.String())
	return err
}

// progress writes "objects read n/total": on a terminal in place, a few
// times a second; elsewhere (--progress into a file) a line every few
// seconds.
type progress struct {
	w     io.Writer
	tty   bool
	total int
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, tty bool, total int) *progress {
	return &progress{w: w, tty: tty, total: total, last: time.Now()}
}

func (p *progress) update(n int) {
	if p.w == nil {
		return
	}
	every, end := 5*time.Second, "\n"
	if p.tty {
		every, end = 200*time.Millisecond, ""
	}
	now := time.Now()
	if n != p.total && now.Sub(p.last) < every {
		return
	}
	p.last, p.shown = now, true
	pct := 100.0
	if p.total > 0 {
		pct = float64(n) * 100 / float64(p.total)
	}
	if p.tty {
		fmt.Fprint(p.w, "\r")
	}
	fmt.Fprintf(p.w, "verify: objects read %d/%d (%.0f%%)%s", n, p.total, pct, end)
}

func (p *progress) done() {
	if p.w != nil && p.shown && p.tty {
		fmt.Fprintln(p.w)
	}
}
