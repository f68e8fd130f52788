package changelogtest

import (
	"bytes"
	"context"
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

// clock is the backend's clock; tests move it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one test's backend, its clock and the entries the test wrote,
// named so that expectations read as text.
type env struct {
	t      *testing.T
	b      graphtest.Backend
	reopen graphtest.Reopen
	clk    *clock

	mu      sync.Mutex
	objects int               // entities written, for unique keys
	names   map[uint64]string // LSN → name of the entry
	commits map[string]graph.Commit
	account map[string]string // name → account
}

func start(t *testing.T, open graphtest.Opener, r changelog.Retention) *env {
	clk := &clock{t: t0}
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

// testLSNs: LSNs increase strictly in commit order across accounts, and
// each account's log holds exactly its own commits, as committed.
func testLSNs(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	var last uint64
	for i, account := range []string{"acct-a", "acct-b", "acct-a", "acct-c", "acct-c", "acct-b", "acct-a", "acct-a"} {
		c := e.commit(account, fmt.Sprintf("%c%d", account[len(account)-1], i))
		if c.LSN <= last {
			t.Fatalf("commit %d to %s: LSN %d after %d", i, account, c.LSN, last)
		}
		last = c.LSN
	}
	for account, want := range map[string]string{"acct-a": "a0 a2 a6 a7", "acct-b": "b1 b5", "acct-c": "c3 c4"} {
		if got := e.readLog(account, 0); got != want {
			t.Errorf("log of %s: %s, want %s", account, got, want)
		}
		es, err := e.b.ReadLog(account, 0, 100, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range es {
			c := e.commits[e.names[en.LSN]]
			if en.CommitTime != c.CommitTime || en.Count != c.Changes {
				t.Errorf("entry %+v, commit %+v", en, c)
			}
		}
	}
}

// testCommitTimes: an account's commit times increase strictly: a commit
// takes the clock's time unless that is not after the account's last
// commit, when it takes the next microsecond. Accounts are independent;
// a transaction that commits nothing takes no time.
func testCommitTimes(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	last := map[string]int64{}
	for i, s := range []struct {
		advance time.Duration
		account string
		noop    bool
		want    string // "clock" or "last+1µs"
	}{
		{0, "acct1", false, "clock"},
		{0, "acct1", false, "last+1µs"},
		{0, "acct1", false, "last+1µs"},
		{0, "acct2", false, "clock"},
		{0, "acct1", true, "nothing"},
		{0, "acct1", false, "last+1µs"},
		{time.Second, "acct1", false, "clock"},
		{-time.Hour, "acct1", false, "last+1µs"},
		{0, "acct2", false, "last+1µs"},
		{time.Microsecond, "acct1", false, "last+1µs"},
		{2 * time.Hour, "acct1", false, "clock"},
		{0, "acct2", false, "clock"},
	} {
		e.clk.Add(s.advance)
		var txTime time.Time
		c, err := e.b.Update(s.account, func(tx graph.Txn) error {
			txTime = tx.CommitTime()
			if s.noop {
				return nil
			}
			in, err := graph.ParseObject(graph.KindEntity, fmt.Appendf(nil, `{"_key":"user-key-%04d","_type":"test_user","_class":"User"}`, i))
			if err != nil {
				return err
			}
			in.Scope, in.Source = "scope", "api"
			_, _, err = tx.Upsert(&in)
			return err
		})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		var got string
		switch {
		case c == (graph.Commit{}):
			got = "nothing"
		case c.CommitTime == e.clk.Now().UnixMicro():
			got = "clock"
		case c.CommitTime == last[s.account]+1:
			got = "last+1µs"
		default:
			got = fmt.Sprintf("%+dµs from the clock, %+dµs from the last", c.CommitTime-e.clk.Now().UnixMicro(), c.CommitTime-last[s.account])
		}
		if got != s.want {
			t.Errorf("step %d (%s, clock %+v): %s, want %s", i, s.account, e.clk.Now().Sub(t0), got, s.want)
		}
		if c.LSN == 0 {
			continue
		}
		if !txTime.Equal(time.UnixMicro(c.CommitTime)) {
			t.Errorf("step %d: Txn.CommitTime %v, Commit %v", i, txTime, time.UnixMicro(c.CommitTime))
		}
		es, err := e.b.ReadLog(s.account, c.LSN-1, 1, 1<<30)
		if err != nil || len(es) != 1 || es[0].LSN != c.LSN || es[0].CommitTime != c.CommitTime || !es[0].Time().Equal(time.UnixMicro(c.CommitTime)) {
			t.Errorf("step %d: entry %+v, %v; commit %+v", i, es, err, c)
		}
		last[s.account] = c.CommitTime
	}
}

// testEnd: End is the LSN of the account's last entry, 0 for an account
// with none; only the account's own commits move it.
func testEnd(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	noop := func(graph.Txn) error { return nil }
	fail := func(tx graph.Txn) error { return errors.New("fn failed") }
	var got []string
	for _, step := range []struct {
		name string
		do   func()
	}{
		{"nothing written", func() {}},
		{"a1 committed", func() { e.commit("acct1", "a1") }},
		{"b1 committed", func() { e.commit("acct2", "b1") }},
		{"a2 committed", func() { e.commit("acct1", "a2") }},
		{"nothing changed", func() { _, _ = e.b.Update("acct1", noop) }},
		{"a transaction failed", func() { _, _ = e.b.Update("acct1", fail) }},
		{"b2 committed", func() { e.commit("acct2", "b2") }},
	} {
		step.do()
		line := step.name + ":"
		for _, account := range []string{"acct1", "acct2", "acct3"} {
			n := e.end(account)
			name, ok := e.names[n]
			if !ok {
				name = fmt.Sprint(n)
			}
			line += " " + account + "=" + name
		}
		got = append(got, line)
	}
	want := `nothing written: acct1=0 acct2=0 acct3=0
a1 committed: acct1=a1 acct2=0 acct3=0
b1 committed: acct1=a1 acct2=b1 acct3=0
a2 committed: acct1=a2 acct2=b1 acct3=0
nothing changed: acct1=a2 acct2=b1 acct3=0
a transaction failed: acct1=a2 acct2=b1 acct3=0
b2 committed: acct1=a2 acct2=b2 acct3=0`
	if s := strings.Join(got, "\n"); s != want {
		t.Errorf("End after each step:\n%s\nwant\n%s", s, want)
	}
}

// testReadLog: ReadLog returns the account's entries after a position,
// whole: the changes in order, each with its id and record, and the lines
// are the records, each followed by a newline. The entries are the
// caller's: later reads and writes leave them as they were.
func testReadLog(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	e.write("acct1", "a1", 3, 10)
	e.commit("acct2", "b1")
	e.write("acct1", "a2", 1, 0)
	e.commit("acct2", "b2")
	e.write("acct1", "a3", 2, 5)

	for _, c := range []struct {
		account string
		after   string // a name, or "0"
		want    string
	}{
		{"acct1", "0", "a1 a2 a3"},
		{"acct1", "a1", "a2 a3"},
		{"acct1", "b1", "a2 a3"},
		{"acct1", "a3", ""},
		{"acct2", "0", "b1 b2"},
		{"acct2", "a3", ""},
		{"acct3", "0", ""},
	} {
		after := uint64(0)
		if c.after != "0" {
			after = e.lsn(c.after)
		}
		if got := e.readLog(c.account, after); got != c.want {
			t.Errorf("ReadLog(%s, after %s): %q, want %q", c.account, c.after, got, c.want)
		}
	}
	if es, err := e.b.ReadLog("acct1", e.lsn("a3")+1000, 10, 1<<20); err != nil || len(es) != 0 {
		t.Errorf("ReadLog past the end: %+v, %v", es, err)
	}

	es, err := e.b.ReadLog("acct1", 0, 10, 1<<30)
	if err != nil || len(es) != 3 {
		t.Fatalf("ReadLog: %d entries, %v", len(es), err)
	}
	kept := cloneEntries(es)
	for _, en := range es {
		var lines []byte
		for _, ch := range en.Changes {
			if ch.Op != graph.OpCreate || ch.Kind != graph.KindEntity || !bytes.Contains(ch.Record, []byte(`"_id":"`+ch.ID+`"`)) {
				t.Errorf("%s: change %+v (record %s)", e.names[en.LSN], ch, ch.Record)
			}
			lines = append(append(lines, ch.Record...), '\n')
		}
		if c := e.commits[e.names[en.LSN]]; en.Count != c.Changes || len(en.Changes) != en.Count || en.CommitTime != c.CommitTime {
			t.Errorf("%s: entry %+v, commit %+v", e.names[en.LSN], en, c)
		}
		if !bytes.Equal(en.Lines, lines) {
			t.Errorf("%s: lines\n%s\nwant the records, each with a newline\n%s", e.names[en.LSN], en.Lines, lines)
		}
	}
	e.write("acct1", "a4", 2, 100)
	if _, err := e.b.ReadLog("acct1", 0, 10, 1<<30); err != nil {
		t.Fatal(err)
	}
	if err := e.b.ScanLog("acct1", 0, func(*changelog.Entry) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	if !equalEntries(es, kept) {
		t.Errorf("entries ReadLog returned changed after later reads and writes")
	}
}

func cloneEntries(es []changelog.Entry) []changelog.Entry {
	out := make([]changelog.Entry, len(es))
	for i, en := range es {
		out[i] = en
		out[i].Lines = bytes.Clone(en.Lines)
		out[i].Changes = nil
		for _, c := range en.Changes {
			c.Record = bytes.Clone(c.Record)
			out[i].Changes = append(out[i].Changes, c)
		}
	}
	return out
}

func equalEntries(a, b []changelog.Entry) bool {
	return slices.EqualFunc(a, b, func(x, y changelog.Entry) bool {
		return x.LSN == y.LSN && x.CommitTime == y.CommitTime && x.Count == y.Count && bytes.Equal(x.Lines, y.Lines) &&
			slices.EqualFunc(x.Changes, y.Changes, func(p, q changelog.Change) bool {
				return p.Op == q.Op && p.Kind == q.Kind && p.ID == q.ID && bytes.Equal(p.Record, q.Record)
			})
	})
}

// testReadLogLimits: ReadLog returns at most maxEntries entries and stops
// once it has collected maxBytes of them, the entry that reaches the limit
// included; it returns at least one entry when there is one, whatever the
// limits.
func testReadLogLimits(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	rec := newRecorder()
	defer e.b.Subscribe(rec.record)()
	for i, pad := range []int{10, 300, 50, 700, 20} {
		e.write("acct1", fmt.Sprintf("a%d", i+1), 1, pad)
	}
	rec.waitFor(t, 5)
	size := func(names ...string) int {
		sizes, n := rec.sizes(), 0
		for _, name := range names {
			n += sizes[e.lsn(name)]
		}
		return n
	}
	for _, c := range []struct {
		after      string
		maxEntries int
		maxBytes   int
		want       string
	}{
		{"0", 10, 1 << 30, "a1 a2 a3 a4 a5"},
		{"0", 2, 1 << 30, "a1 a2"},
		{"0", 1, 1 << 30, "a1"},
		{"0", 10, 1, "a1"},
		{"0", 10, 0, "a1"},
		{"0", 10, size("a1"), "a1"},
		{"0", 10, size("a1") + 1, "a1 a2"},
		{"0", 10, size("a1", "a2", "a3"), "a1 a2 a3"},
		{"0", 10, size("a1", "a2", "a3") + 1, "a1 a2 a3 a4"},
		{"0", 2, size("a1", "a2", "a3"), "a1 a2"},
		{"a1", 10, size("a2"), "a2"},
		{"a1", 10, size("a2") + 1, "a2 a3"},
		{"a3", 10, 1, "a4"},
		{"a4", 10, 1, "a5"},
		{"a5", 10, 1, ""},
	} {
		after := uint64(0)
		if c.after != "0" {
			after = e.lsn(c.after)
		}
		es, err := e.b.ReadLog("acct1", after, c.maxEntries, c.maxBytes)
		if got := e.render(es); err != nil || got != c.want {
			t.Errorf("ReadLog(after %s, %d entries, %d bytes): %q, %v; want %q", c.after, c.maxEntries, c.maxBytes, got, err, c.want)
		}
	}
	if got, want := e.b.LogBytes(), int64(size("a1", "a2", "a3", "a4", "a5")); got != want {
		t.Errorf("LogBytes %d, want the sum of the entries' sizes %d", got, want)
	}
}

// testScanLog: ScanLog calls fn with the account's entries after a
// position, in order, as ReadLog returns them less their Changes; it stops
// when fn returns false or an error, and reads a snapshot: entries
// committed while it runs are not reported.
func testScanLog(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	e.write("acct1", "a1", 2, 0)
	e.commit("acct2", "b1")
	e.write("acct1", "a2", 1, 0)
	e.write("acct1", "a3", 3, 0)
	full, err := e.b.ReadLog("acct1", 0, 10, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var scanned []changelog.Entry
	err = e.b.ScanLog("acct1", 0, func(en *changelog.Entry) (bool, error) {
		if len(en.Changes) != 0 {
			t.Errorf("ScanLog decoded %d changes", len(en.Changes))
		}
		scanned = append(scanned, changelog.Entry{LSN: en.LSN, CommitTime: en.CommitTime, Count: en.Count, Lines: bytes.Clone(en.Lines)})
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range full {
		full[i].Changes = nil
	}
	if !equalEntries(scanned, full) {
		t.Errorf("ScanLog reported\n%+v\nReadLog returns\n%+v", scanned, full)
	}

	for _, c := range []struct {
		account, after string
		want           string
	}{
		{"acct1", "0", "a1 a2 a3"},
		{"acct1", "a1", "a2 a3"},
		{"acct1", "b1", "a2 a3"},
		{"acct1", "a3", ""},
		{"acct2", "0", "b1"},
		{"acct3", "0", ""},
	} {
		after := uint64(0)
		if c.after != "0" {
			after = e.lsn(c.after)
		}
		if got := e.scanLog(c.account, after); got != c.want {
			t.Errorf("ScanLog(%s, after %s): %q, want %q", c.account, c.after, got, c.want)
		}
	}

	// fn stops the scan: false ends it without error, an error ends it
	// with that error.
	stop := errors.New("stop")
	for _, c := range []struct {
		name   string
		result func(calls int) (bool, error)
		calls  int
		err    error
	}{
		{"false at the second entry", func(calls int) (bool, error) { return calls < 2, nil }, 2, nil},
		{"false at the first entry", func(int) (bool, error) { return false, nil }, 1, nil},
		{"an error at the first entry", func(int) (bool, error) { return true, stop }, 1, stop},
	} {
		calls := 0
		err := e.b.ScanLog("acct1", 0, func(*changelog.Entry) (bool, error) { calls++; return c.result(calls) })
		if calls != c.calls || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("%s: %d calls, %v; want %d calls, %v", c.name, calls, err, c.calls, c.err)
		}
	}

	// Entries committed during the scan are not reported.
	var seen []changelog.Entry
	err = e.b.ScanLog("acct1", 0, func(en *changelog.Entry) (bool, error) {
		if len(seen) == 0 {
			for i := range 3 {
				e.commit("acct1", fmt.Sprintf("during%d", i))
			}
		}
		seen = append(seen, changelog.Entry{LSN: en.LSN})
		return true, nil
	})
	if got := e.render(seen); err != nil || got != "a1 a2 a3" {
		t.Errorf("ScanLog while committing: %q, %v; want a1 a2 a3", got, err)
	}
	if got := e.scanLog("acct1", e.lsn("a3")); got != "during0 during1 during2" {
		t.Errorf("ScanLog after it: %q", got)
	}
}

// testNextCommit: NextCommit gives the commit time of the account's first
// entry after a position, and nothing after its last.
func testNextCommit(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	e.commit("acct1", "a1")
	e.clk.Add(time.Second)
	e.commit("acct2", "b1")
	e.clk.Add(time.Second)
	e.commit("acct1", "a2")
	e.commit("acct1", "a3") // the same clock: the next microsecond
	for _, c := range []struct {
		account, after string
		want           string
	}{
		{"acct1", "0", "a1"},
		{"acct1", "a1", "a2"},
		{"acct1", "b1", "a2"},
		{"acct1", "a2", "a3"},
		{"acct1", "a3", "none"},
		{"acct2", "0", "b1"},
		{"acct2", "b1", "none"},
		{"acct3", "0", "none"},
	} {
		after := uint64(0)
		if c.after != "0" {
			after = e.lsn(c.after)
		}
		if got := e.nextCommit(c.account, after); got != c.want {
			t.Errorf("NextCommit(%s, after %s): %s, want %s", c.account, c.after, got, c.want)
		}
	}
}

// testWait: Wait returns at once when the account has an entry after the
// position, else when one is committed; a commit of another account does
// not end it, its context does.
func testWait(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a1 := e.commit("acct1", "a1").LSN
	if err := e.b.Wait(ctx, "acct1", 0); err != nil {
		t.Errorf("wait before an entry: %v", err)
	}

	woke := make(chan error, 1)
	go func() { woke <- e.b.Wait(ctx, "acct1", a1) }()
	a2 := e.commit("acct1", "a2").LSN
	if err := <-woke; err != nil {
		t.Errorf("wait for a commit: %v", err)
	}

	other, cancelOther := context.WithCancel(ctx)
	go func() { woke <- e.b.Wait(other, "acct1", a2) }()
	e.commit("acct2", "b1")
	cancelOther()
	if err := <-woke; !errors.Is(err, context.Canceled) {
		t.Errorf("wait across another account's commit, then cancelled: %v, want context.Canceled", err)
	}

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if err := e.b.Wait(short, "acct1", a2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait past the end: %v, want context.DeadlineExceeded", err)
	}
	if err := e.b.Wait(short, "acct3", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait on an account with no entries: %v, want context.DeadlineExceeded", err)
	}
}

// renderEvents renders events as "<account> <entry> <changes> changes".
func (e *env) renderEvents(evs []changelog.CommitEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		name := e.names[ev.LSN]
		fmt.Fprintf(&b, "%s %s %d changes\n", ev.Account, name, ev.Changes)
		if c := e.commits[name]; ev.CommitTime != c.CommitTime || ev.Bytes <= 0 {
			e.t.Errorf("event %+v, commit %+v", ev, c)
		}
	}
	return b.String()
}

// testSubscribers: every subscriber hears of every commit that logged
// changes, with its account, LSN, commit time, changes and size; the sizes
// add up to LogBytes.
func testSubscribers(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	if n := e.b.LogBytes(); n != 0 {
		t.Errorf("LogBytes of an empty log: %d", n)
	}
	recs := []*recorder{newRecorder(), newRecorder(), newRecorder()}
	for _, r := range recs {
		defer e.b.Subscribe(r.record)()
	}
	e.commit("acct1", "a1")
	e.write("acct2", "b1", 3, 0)
	if _, err := e.b.Update("acct1", func(graph.Txn) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Update("acct1", func(graph.Txn) error { return errors.New("fn failed") }); err == nil {
		t.Fatal("a failing transaction committed")
	}
	e.write("acct1", "a2", 2, 0)
	want := "acct1 a1 1 changes\nacct2 b1 3 changes\nacct1 a2 2 changes\n"
	for i, r := range recs {
		evs := r.waitFor(t, 3)
		if got := e.renderEvents(evs); got != want {
			t.Errorf("subscriber %d heard\n%s\nwant\n%s", i, got, want)
		}
		total := 0
		for _, ev := range evs {
			total += ev.Bytes
		}
		if int64(total) != e.b.LogBytes() {
			t.Errorf("subscriber %d: the events' sizes add up to %d, LogBytes is %d", i, total, e.b.LogBytes())
		}
	}
}

// testCancel: after cancel returns, a subscriber hears of no more commits;
// the others still do.
func testCancel(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	kept, cancelled := newRecorder(), newRecorder()
	defer e.b.Subscribe(kept.record)()
	cancel := e.b.Subscribe(cancelled.record)
	e.commit("acct1", "a1")
	cancelled.waitFor(t, 1)
	cancel()
	e.commit("acct1", "a2")
	e.commit("acct2", "b1")
	if got, want := e.renderEvents(kept.waitFor(t, 3)), "acct1 a1 1 changes\nacct1 a2 1 changes\nacct2 b1 1 changes\n"; got != want {
		t.Errorf("the subscriber kept heard\n%s\nwant\n%s", got, want)
	}
	if got, want := e.renderEvents(cancelled.waitFor(t, 1)), "acct1 a1 1 changes\n"; got != want {
		t.Errorf("the subscriber cancelled heard\n%s\nwant\n%s", got, want)
	}
}

// testSubscribeBeforeEnd: a reader that subscribes and then reads End
// hears of every entry after End, while writers commit concurrently: no
// commit falls between the two.
func testSubscribeBeforeEnd(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	const account, writers, perWriter, readers = "acct1", 4, 40, 8
	// writing ends when the writers are done.
	writing, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWriter {
				if _, err := e.tryWrite([]string{account, "acct2"}[w%2], "", 1, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); done() }()
	type reader struct {
		rec *recorder
		end uint64
	}
	var rs []reader
	for range readers {
		r := reader{rec: newRecorder()}
		defer e.b.Subscribe(r.rec.record)()
		r.end = e.end(account)
		rs = append(rs, r)
		// The next reader subscribes once the log has grown, unless the
		// writers are done.
		if err := e.b.Wait(writing, account, r.end); err != nil {
			break
		}
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for i, r := range rs {
		es, err := e.b.ReadLog(account, r.end, 1<<20, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		var missing []uint64
		r.rec.waitUntil(deadline, func(evs []changelog.CommitEvent) bool {
			heard := map[uint64]bool{}
			for _, ev := range evs {
				if ev.Account == account {
					heard[ev.LSN] = true
				}
			}
			missing = missing[:0]
			for _, en := range es {
				if !heard[en.LSN] {
					missing = append(missing, en.LSN)
				}
			}
			return len(missing) == 0
		})
		if len(missing) > 0 {
			t.Errorf("reader %d (subscribed, then End %d) never heard of LSNs %v", i, r.end, missing)
		}
	}
}

// testConcurrentWriters: writers on many goroutines over several accounts;
// each account's log holds every commit, LSNs and commit times increasing,
// and a reader following it with Wait and ReadLog, from position to
// position, reads exactly the final log: no entry appears behind a
// position a reader has passed.
func testConcurrentWriters(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	const accounts, writers, perWriter = 3, 4, 25
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	writing, stopReaders := context.WithCancel(ctx)
	var mu sync.Mutex
	committed := map[string][]uint64{}
	followed := make([][]uint64, accounts)
	var writersWG, readersWG sync.WaitGroup
	for a := range accounts {
		account := fmt.Sprintf("acct%d", a)
		readersWG.Add(1)
		go func() {
			defer readersWG.Done()
			var pos uint64
			var lastTime int64
			for {
				waitErr := e.b.Wait(writing, account, pos)
				for {
					es, err := e.b.ReadLog(account, pos, 7, 1<<20)
					if err != nil {
						t.Error(err)
						return
					}
					if len(es) == 0 {
						break
					}
					for _, en := range es {
						if en.LSN <= pos || en.CommitTime <= lastTime {
							t.Errorf("%s: entry %d@%d read after %d@%d", account, en.LSN, en.CommitTime, pos, lastTime)
						}
						pos, lastTime = en.LSN, en.CommitTime
						followed[a] = append(followed[a], en.LSN)
					}
				}
				if waitErr != nil {
					return
				}
			}
		}()
		for range writers {
			writersWG.Add(1)
			go func() {
				defer writersWG.Done()
				for range perWriter {
					c, err := e.tryWrite(account, "", 1, 0)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					committed[account] = append(committed[account], c.LSN)
					mu.Unlock()
				}
			}()
		}
	}
	writersWG.Wait()
	stopReaders()
	readersWG.Wait()
	all := map[uint64]bool{}
	for a := range accounts {
		account := fmt.Sprintf("acct%d", a)
		es, err := e.b.ReadLog(account, 0, 1<<20, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != writers*perWriter {
			t.Fatalf("%s has %d entries, want %d", account, len(es), writers*perWriter)
		}
		var lsns []uint64
		for i, en := range es {
			if i > 0 && (en.LSN <= es[i-1].LSN || en.CommitTime <= es[i-1].CommitTime) {
				t.Fatalf("%s: entry %d out of order: %d@%d after %d@%d", account, i, en.LSN, en.CommitTime, es[i-1].LSN, es[i-1].CommitTime)
			}
			if all[en.LSN] {
				t.Fatalf("LSN %d is in two accounts' logs", en.LSN)
			}
			all[en.LSN] = true
			lsns = append(lsns, en.LSN)
		}
		if !slices.Equal(slices.Sorted(slices.Values(committed[account])), lsns) {
			t.Errorf("%s: the log's LSNs are not the commits'", account)
		}
		if !slices.Equal(followed[a], lsns) {
			t.Errorf("%s: the reader following the log read %d entries, the log holds %d: an entry appeared behind its position", account, len(followed[a]), len(lsns))
		}
	}
}

// testRetentionByAge: a pass removes the entries older than MaxAge (one
// exactly MaxAge old stays), and only those; a read from a position before
// a removed entry of its account gets a *TruncatedError naming the range
// lost, a read from a later position the entries there.
func testRetentionByAge(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{MaxAge: time.Hour, Interval: time.Hour})
	rec := newRecorder()
	defer e.b.Subscribe(rec.record)()
	for i := range 4 {
		e.commit("acct-a", fmt.Sprintf("a%d", i+1))
		e.commit("acct-b", fmt.Sprintf("b%d", i+1))
		e.clk.Add(30 * time.Minute)
	}
	rec.waitFor(t, 8)
	sizes := rec.sizes()
	size := func(names ...string) (n int64) {
		for _, name := range names {
			n += int64(sizes[e.lsn(name)])
		}
		return n
	}
	if got, want := e.b.LogBytes(), size("a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"); got != want {
		t.Errorf("LogBytes %d, want %d", got, want)
	}
	// The clock is 2h past the first commits: a1, b1 (2h old) and a2, b2
	// (1h30) go; a3, b3 are exactly an hour old and stay.
	if n, err := e.b.Truncate(); err != nil || n != 4 {
		t.Fatalf("Truncate removed %d entries, %v; want 4", n, err)
	}
	if n, err := e.b.Truncate(); err != nil || n != 0 {
		t.Errorf("a second pass removed %d entries, %v; want none", n, err)
	}
	if got, want := e.b.LogBytes(), size("a3", "a4", "b3", "b4"); got != want {
		t.Errorf("LogBytes after the pass %d, want %d", got, want)
	}
	checkReads(t, e, []readCase{
		{"acct-a", "0", "truncated through a2"},
		{"acct-a", "a1", "truncated through a2"},
		{"acct-a", "b1", "truncated through a2"},
		{"acct-a", "a2", "a3 a4"},
		{"acct-a", "b2", "a3 a4"},
		{"acct-a", "a3", "a4"},
		{"acct-a", "a4", ""},
		{"acct-b", "0", "truncated through b2"},
		{"acct-b", "a2", "truncated through b2"},
		{"acct-b", "b2", "b3 b4"},
		{"acct-c", "0", ""},
	})
}

// readCase is a read from a position and what ReadLog and ScanLog give:
// the entries' names or the error; NextCommit gives the first of them,
// "none" or the same error.
type readCase struct {
	account, after string // after: a name, or "0"
	want           string
}

func checkReads(t *testing.T, e *env, cases []readCase) {
	t.Helper()
	for _, c := range cases {
		after := uint64(0)
		if c.after != "0" {
			after = e.lsn(c.after)
		}
		next := "none"
		if f := strings.Fields(c.want); strings.HasPrefix(c.want, "truncated") {
			next = c.want
		} else if len(f) > 0 {
			next = f[0]
		}
		for _, r := range []struct {
			name      string
			got, want string
		}{
			{"ReadLog", e.readLog(c.account, after), c.want},
			{"ScanLog", e.scanLog(c.account, after), c.want},
			{"NextCommit", e.nextCommit(c.account, after), next},
		} {
			if r.got != r.want {
				t.Errorf("%s(%s, after %s): %q, want %q", r.name, c.account, c.after, r.got, r.want)
			}
		}
	}
}

// testRetentionByBytes: a pass removes the oldest entries, of every
// account, while the log is larger than MaxBytes.
func testRetentionByBytes(t *testing.T, open graphtest.Opener) {
	const maxBytes = 4000
	e := start(t, open, changelog.Retention{MaxBytes: maxBytes, Interval: time.Hour})
	rec := newRecorder()
	defer e.b.Subscribe(rec.record)()
	var order []string
	for i := range 10 {
		for _, p := range []string{"a", "b"} {
			name := fmt.Sprintf("%s%d", p, i+1)
			e.write("acct-"+p, name, 1, 200+40*i)
			order = append(order, name)
		}
	}
	rec.waitFor(t, len(order))
	sizes := rec.sizes()
	var total int64
	for _, name := range order {
		total += int64(sizes[e.lsn(name)])
	}
	if before := e.b.LogBytes(); before != total || before <= maxBytes {
		t.Fatalf("LogBytes %d, the entries' sizes add up to %d; want equal, and more than %d", before, total, maxBytes)
	}
	// What the pass must remove: the oldest entries while the log is too
	// large.
	lost := map[string]string{} // account → its last entry removed
	removed := 0
	for _, name := range order {
		if total <= maxBytes {
			break
		}
		total -= int64(sizes[e.lsn(name)])
		lost["acct-"+name[:1]] = name
		removed++
	}
	if n, err := e.b.Truncate(); err != nil || n != removed {
		t.Fatalf("Truncate removed %d entries, %v; want %d", n, err, removed)
	}
	if got := e.b.LogBytes(); got != total || got > maxBytes {
		t.Errorf("LogBytes after the pass %d, want %d (at most %d)", got, total, maxBytes)
	}
	var cases []readCase
	for _, account := range []string{"acct-a", "acct-b"} {
		var kept []string
		for _, name := range order {
			if "acct-"+name[:1] == account && (lost[account] == "" || e.lsn(name) > e.lsn(lost[account])) {
				kept = append(kept, name)
			}
		}
		if lost[account] == "" {
			cases = append(cases, readCase{account, "0", strings.Join(kept, " ")})
			continue
		}
		cases = append(cases,
			readCase{account, "0", "truncated through " + lost[account]},
			readCase{account, lost[account], strings.Join(kept, " ")})
	}
	checkReads(t, e, cases)
}

// testReopen: a reopened backend holds the same log, End and LogBytes; its
// next commit follows every LSN and, for its account, every commit time
// before, whatever the clock says; subscribers and Wait work on it.
func testReopen(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{})
	e.write("acct-a", "a1", 2, 0)
	e.commit("acct-b", "b1")
	e.write("acct-a", "a2", 3, 50)
	e.clk.Add(time.Minute)
	e.commit("acct-b", "b2")
	before := map[string][]changelog.Entry{}
	ends := map[string]uint64{}
	for _, account := range []string{"acct-a", "acct-b", "acct-c"} {
		es, err := e.b.ReadLog(account, 0, 100, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		before[account], ends[account] = cloneEntries(es), e.end(account)
	}
	logBytes := e.b.LogBytes()

	e.b = e.reopen()
	for account, want := range before {
		es, err := e.b.ReadLog(account, 0, 100, 1<<30)
		if err != nil || !equalEntries(es, want) {
			t.Errorf("%s after reopening: %s, %v; want %s", account, e.render(es), err, e.render(want))
		}
		if n := e.end(account); n != ends[account] {
			t.Errorf("End(%s) after reopening: %d, want %d", account, n, ends[account])
		}
	}
	if got := e.b.LogBytes(); got != logBytes {
		t.Errorf("LogBytes after reopening: %d, want %d", got, logBytes)
	}

	rec := newRecorder()
	defer e.b.Subscribe(rec.record)()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	woke := make(chan error, 1)
	a2 := e.lsn("a2")
	go func() { woke <- e.b.Wait(ctx, "acct-a", a2) }()
	e.clk.Add(-time.Hour)
	c := e.commit("acct-a", "a3")
	if c.LSN <= e.lsn("b2") || c.CommitTime <= e.commits["a2"].CommitTime {
		t.Errorf("commit after reopening, the clock set back: %+v; want an LSN after %d, a commit time after %d", c, e.lsn("b2"), e.commits["a2"].CommitTime)
	}
	if err := <-woke; err != nil {
		t.Errorf("wait on the reopened backend: %v", err)
	}
	if got := e.renderEvents(rec.waitFor(t, 1)); got != "acct-a a3 1 changes\n" {
		t.Errorf("subscriber after reopening heard %q", got)
	}
}

// testReopenAfterTruncatingEverything: retention removes every entry; End
// stays where it was, a read from before gets a *TruncatedError, one from
// End nothing; after reopening the same holds, and the next commit takes a
// new LSN and a commit time after the account's last, though no entry is
// left to show either.
func testReopenAfterTruncatingEverything(t *testing.T, open graphtest.Opener) {
	e := start(t, open, changelog.Retention{MaxAge: time.Hour, Interval: time.Hour})
	e.commit("acct-a", "a1")
	e.commit("acct-b", "b1")
	e.commit("acct-a", "a2")
	e.commit("acct-b", "b2")
	e.clk.Add(2 * time.Hour)
	if n, err := e.b.Truncate(); err != nil || n != 4 {
		t.Fatalf("Truncate removed %d entries, %v; want 4", n, err)
	}
	cases := []readCase{
		{"acct-a", "0", "truncated through a2"},
		{"acct-a", "a1", "truncated through a2"},
		{"acct-a", "a2", ""},
		{"acct-b", "0", "truncated through b2"},
		{"acct-b", "b2", ""},
		{"acct-c", "0", ""},
	}
	check := func(when string) {
		t.Helper()
		if n := e.b.LogBytes(); n != 0 {
			t.Errorf("%s: LogBytes %d, want 0", when, n)
		}
		for account, want := range map[string]uint64{"acct-a": e.lsn("a2"), "acct-b": e.lsn("b2"), "acct-c": 0} {
			if n := e.end(account); n != want {
				t.Errorf("%s: End(%s) %d, want %d", when, account, n, want)
			}
		}
		checkReads(t, e, cases)
	}
	check("after the pass")
	e.b = e.reopen()
	check("after reopening")

	e.clk.Add(-24 * time.Hour)
	c := e.commit("acct-a", "a3")
	if c.LSN <= e.lsn("b2") {
		t.Errorf("LSN %d after reopening: reused, want more than %d", c.LSN, e.lsn("b2"))
	}
	if c.CommitTime <= e.commits["a2"].CommitTime {
		t.Errorf("commit time %d after reopening, the clock set back: want more than %d", c.CommitTime, e.commits["a2"].CommitTime)
	}
	checkReads(t, e, []readCase{
		{"acct-a", "0", "truncated through a2"},
		{"acct-a", "a2", "a3"},
	})
}
