package changelogtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
)

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
