package changelogtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
)

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
