package changelogtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
)

// Run runs the suite against the backend open opens.
func Run(t *testing.T, open graphtest.Opener) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, graphtest.Opener)
	}{
		{"LSNsIncreaseAcrossAccounts", testLSNs},
		{"CommitTimesIncreasePerAccount", testCommitTimes},
		{"End", testEnd},
		{"ReadLog", testReadLog},
		{"ReadLogLimits", testReadLogLimits},
		{"ScanLog", testScanLog},
		{"NextCommit", testNextCommit},
		{"Wait", testWait},
		{"SubscribersHearEveryCommit", testSubscribers},
		{"CancelStopsDelivery", testCancel},
		{"SubscribeBeforeEndMissesNothing", testSubscribeBeforeEnd},
		{"ConcurrentWritersKeepOrder", testConcurrentWriters},
		{"RetentionByAge", testRetentionByAge},
		{"RetentionByBytes", testRetentionByBytes},
		{"Reopen", testReopen},
		{"ReopenAfterTruncatingEverything", testReopenAfterTruncatingEverything},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

// t0 is where the suite's clock starts.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// env is one test's backend, its clock and the entries the test wrote,
// named so that expectations read as text.
type env struct {
	t      *testing.T
	b      graphtest.Backend
	reopen graphtest.Reopen
	clk    *graphtest.Clock

	mu      sync.Mutex
	objects int               // entities written, for unique keys
	names   map[uint64]string // LSN → name of the entry
	commits map[string]graph.Commit
	account map[string]string // name → account
}

func start(t *testing.T, open graphtest.Opener, r changelog.Retention) *env {
	clk := graphtest.NewClock(t0)
	b, reopen := open(t, graphtest.Options{Now: clk.Now, Retention: r})
	return &env{t: t, b: b, reopen: reopen, clk: clk, names: map[uint64]string{}, commits: map[string]graph.Commit{}, account: map[string]string{}}
}

// write commits one transaction creating n entities in the account, each
// with a pad property of pad bytes, and names its entry.
func (e *env) write(account, name string, n, pad int) graph.Commit {
	e.t.Helper()
	c, err := e.tryWrite(account, name, n, pad)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// commit writes one entity to the account and names the entry.
func (e *env) commit(account, name string) graph.Commit {
	e.t.Helper()
	return e.write(account, name, 1, 0)
}

// tryWrite is write for goroutines other than the test's: it returns its
// error.
func (e *env) tryWrite(account, name string, n, pad int) (graph.Commit, error) {
	ins := make([]*graph.Input, n)
	e.mu.Lock()
	for i := range ins {
		e.objects++
		in, err := graph.ParseObject(graph.KindEntity, fmt.Appendf(nil, `{"_key":"entity-key-%06d","_type":"test_thing","_class":"Thing","pad":"%s"}`, e.objects, strings.Repeat("x", pad)))
		if err != nil {
			e.mu.Unlock()
			return graph.Commit{}, err
		}
		in.Scope, in.Source = "scope", "api"
		ins[i] = &in
	}
	e.mu.Unlock()
	c, err := e.b.Update(account, func(tx graph.Txn) error {
		for _, in := range ins {
			if _, _, err := tx.Upsert(in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return c, fmt.Errorf("write %s to %s: %w", name, account, err)
	}
	if c.LSN == 0 || c.Changes != n {
		return c, fmt.Errorf("write %s to %s: commit %+v, want %d changes", name, account, c, n)
	}
	if name != "" {
		e.mu.Lock()
		e.names[c.LSN], e.commits[name], e.account[name] = name, c, account
		e.mu.Unlock()
	}
	return c, nil
}

// lsn returns the LSN of a named entry.
func (e *env) lsn(name string) uint64 {
	e.t.Helper()
	e.mu.Lock()
	c, ok := e.commits[name]
	e.mu.Unlock()
	if !ok {
		e.t.Fatalf("no entry named %s", name)
	}
	return c.LSN
}

// render names the entries, separated by spaces.
func (e *env) render(es []changelog.Entry) string {
	var out []string
	for _, en := range es {
		n, ok := e.names[en.LSN]
		if !ok {
			n = fmt.Sprintf("lsn%d", en.LSN)
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

// renderErr renders a read's error: a *TruncatedError as "truncated
// through <name>", after checking it names the account and starts right
// after the position read from.
func (e *env) renderErr(account string, after uint64, err error) string {
	e.t.Helper()
	var te *changelog.TruncatedError
	if !errors.As(err, &te) {
		return "error: " + err.Error()
	}
	if !errors.Is(err, changelog.ErrLogTruncated) || te.Account != account || te.From != after+1 {
		e.t.Errorf("read %s after %d: %#v (%v), want account %s from %d", account, after, te, err, account, after+1)
	}
	n, ok := e.names[te.To]
	if !ok {
		n = fmt.Sprintf("lsn%d", te.To)
	}
	return "truncated through " + n
}

// readLog renders ReadLog of everything after a position.
func (e *env) readLog(account string, after uint64) string {
	e.t.Helper()
	es, err := e.b.ReadLog(account, after, 1<<20, 1<<30)
	if err != nil {
		return e.renderErr(account, after, err)
	}
	return e.render(es)
}

// scanLog renders ScanLog of everything after a position.
func (e *env) scanLog(account string, after uint64) string {
	e.t.Helper()
	var es []changelog.Entry
	err := e.b.ScanLog(account, after, func(en *changelog.Entry) (bool, error) {
		es = append(es, changelog.Entry{LSN: en.LSN})
		return true, nil
	})
	if err != nil {
		return e.renderErr(account, after, err)
	}
	return e.render(es)
}

// nextCommit renders NextCommit after a position: the name of the entry
// whose commit time it gives, or "none".
func (e *env) nextCommit(account string, after uint64) string {
	e.t.Helper()
	at, ok, err := e.b.NextCommit(account, after)
	switch {
	case err != nil:
		return e.renderErr(account, after, err)
	case !ok:
		return "none"
	}
	for name, c := range e.commits {
		if c.CommitTime == at && e.account[name] == account {
			return name
		}
	}
	return fmt.Sprintf("commit time %d", at)
}

// end returns the account's End.
func (e *env) end(account string) uint64 {
	e.t.Helper()
	n, err := e.b.End(account)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// recorder records the events a subscriber hears.
type recorder struct {
	mu     sync.Mutex
	events []changelog.CommitEvent
	grew   chan struct{} // closed and replaced at each event
}

func newRecorder() *recorder { return &recorder{grew: make(chan struct{})} }

func (r *recorder) record(ev changelog.CommitEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	close(r.grew)
	r.grew = make(chan struct{})
}

// waitFor returns the events once there are at least n, failing the test
// if they do not come within 10s.
func (r *recorder) waitFor(t *testing.T, n int) []changelog.CommitEvent {
	t.Helper()
	evs, ok := r.waitUntil(time.Now().Add(10*time.Second), func(evs []changelog.CommitEvent) bool { return len(evs) >= n })
	if !ok {
		t.Fatalf("%d events after 10s, want %d", len(evs), n)
	}
	return evs
}

// waitUntil returns the events once done says they are all there, or
// what there is at the deadline, and whether done said so.
func (r *recorder) waitUntil(deadline time.Time, done func([]changelog.CommitEvent) bool) ([]changelog.CommitEvent, bool) {
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	for {
		r.mu.Lock()
		evs, grew := slices.Clone(r.events), r.grew
		r.mu.Unlock()
		if done(evs) {
			return evs, true
		}
		select {
		case <-grew:
		case <-timeout.C:
			return evs, false
		}
	}
}

// sizes returns the sizes of the entries, by LSN, as events report them.
func (r *recorder) sizes() map[uint64]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[uint64]int{}
	for _, ev := range r.events {
		m[ev.LSN] = ev.Bytes
	}
	return m
}
