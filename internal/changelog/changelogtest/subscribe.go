package changelogtest

import (
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
