package exporter_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/settings"
)

// owned is the set of accounts a cluster node exports (Config.Owns), as
// its cluster manager would change it.
type owned struct {
	mu  sync.Mutex
	set map[string]bool
}

func (o *owned) owns(a string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.set[a]
}

func (o *owned) only(accounts ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.set = map[string]bool{}
	for _, a := range accounts {
		o.set[a] = true
	}
}

// TestOwnsForgetRescan: an exporter exports only the accounts it owns;
// when its groups move, Forget drops those it lost and Rescan takes up
// those it gained, from their saved state: everything lands once.
func TestOwnsForgetRescan(t *testing.T) {
	o := &owned{}
	o.only("mine")
	e := newEnv(t, exporter.Config{FlushInterval: time.Second, Owns: o.owns})
	e.enable("mine", "bkt")
	e.enable("theirs", "bkt")
	if n := e.exp.Accounts(); n != 1 {
		t.Fatalf("the exporter took %d accounts, want only the one it owns", n)
	}
	mine := e.write("mine", 2)
	theirs := e.write("theirs", 3)
	e.clock.Advance(2 * time.Second)
	waitFor(t, "the owned account's object", func() bool {
		return len(e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=mine/")) == len(mine)
	})
	if got := e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=theirs/"); len(got) != 0 {
		t.Fatalf("an account another node owns was exported: %q", got)
	}
	if l := e.exp.Status("theirs"); l.Enabled {
		t.Fatalf("the exporter shows a live state for an account it does not own: %+v", l)
	}

	// The groups move: this exporter now owns "theirs" only.
	o.only("theirs")
	e.exp.Forget(o.owns)
	if err := e.exp.Rescan(); err != nil {
		t.Fatal(err)
	}
	if n := e.exp.Accounts(); n != 1 || !e.exp.Status("theirs").Enabled || e.exp.Status("mine").Enabled {
		t.Fatalf("after the move the exporter holds %d accounts (theirs %+v, mine %+v)", n, e.exp.Status("theirs"), e.exp.Status("mine"))
	}
	e.write("mine", 1) // another node's now
	e.advanceUntil("the taken-over account's object", func() bool {
		return len(e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=theirs/")) == len(theirs)
	})
	if got := e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=theirs/"); !slices.Equal(got, theirs) {
		t.Fatalf("the taken-over account's records differ:\n got %q\nwant %q", got, theirs)
	}
	if got := e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=mine/"); !slices.Equal(got, mine) {
		t.Fatalf("the account given up was exported again after the move: %d lines, want %d", len(got), len(mine))
	}
}

// TestStaleStateIsReloaded: settings saved elsewhere (another node, whose
// word did not arrive) bump the generation under the exporter; its next
// checkpoint write is refused as stale, and it reloads the account and
// exports to the new target instead of stalling.
func TestStaleStateIsReloaded(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Second})
	e.enable("acct", "old")
	// Retargeted without telling the exporter (no Reload).
	if _, err := e.st.SaveTest("acct", settings.ConnectionTest{OK: true, At: e.clock.Now(), BucketName: "new", AWSAccountID: "111122223333"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Apply("acct", settings.Settings{Enabled: true, BucketName: "new", AWSAccountID: "111122223333", RegionConfirmed: true},
		func() (uint64, error) { return e.store.End("acct") }); err != nil {
		t.Fatal(err)
	}
	e.write("acct", 1) // before the exporter learns of the new target: its flush is refused
	want := e.write("acct", 2)
	e.advanceUntil("the object in the new bucket", func() bool {
		return len(e.dest.lines(t, "new/jupiterone/graph/cdc/accountId=acct/")) > 0
	})
	if got := e.dest.keys(); slices.ContainsFunc(got, func(k string) bool { return k[:4] == "old/" }) {
		t.Fatalf("an object went to the old target after the retarget: %q", got)
	}
	got := e.dest.lines(t, "new/jupiterone/graph/cdc/accountId=acct/")
	if len(got) < len(want) || !slices.Equal(got[len(got)-len(want):], want) {
		t.Fatalf("the new bucket's records %q do not end with the last writes %q", got, want)
	}
}

// TestReinstallWaitsForTheFlushOfTheCopyRemoved: an account given up and
// taken again (Forget, then Rescan: as when a node hears the others again
// after a lost connection) while one of its flushes is past the upload
// gets no second copy until that flush has moved the cursor; the new copy
// starts from there and the stream goes on, every change once.
func TestReinstallWaitsForTheFlushOfTheCopyRemoved(t *testing.T) {
	o := &owned{}
	o.only("acct")
	uploaded, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e := newEnv(t, exporter.Config{FlushInterval: time.Second, Owns: o.owns, AfterUpload: func(string, string) {
		once.Do(func() {
			close(uploaded)
			<-release
		})
	}})
	var released sync.Once
	unblock := func() { released.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the exporter's Close, which waits for the flush
	e.enable("acct", "bkt")
	want := e.write("acct", 2)
	e.clock.Advance(2 * time.Second)
	<-uploaded // stored; the cursor has not moved yet

	e.exp.Forget(func(string) bool { return false })
	if err := e.exp.Rescan(); err != nil {
		t.Fatal(err)
	}
	if n := e.exp.Accounts(); n != 0 {
		t.Fatalf("a second copy of the account was installed while the first one's flush ran (%d accounts)", n)
	}
	unblock()
	waitFor(t, "the account installed again once the flush ended", func() bool { return e.exp.Accounts() == 1 })

	want = append(want, e.write("acct", 3)...)
	caughtUp := func() bool {
		r, _ := e.st.Get("acct")
		return r.Stream.Cursor == mustEnd(t, e.store, "acct")
	}
	e.advanceUntil("the next changes exported", caughtUp)
	if got := e.dest.lines(t, "bkt/jupiterone/graph/cdc/accountId=acct/"); !slices.Equal(got, want) {
		t.Fatalf("records differ:\n got %q\nwant %q", got, want)
	}
	if r, _ := e.st.Get("acct"); r.Stream.LastError != nil {
		t.Fatalf("the stream shows an error: %+v", r.Stream.LastError)
	}
	if puts, keys := e.dest.putCount(), len(e.dest.keys()); puts != keys {
		t.Fatalf("%d uploads for %d objects: a batch was stored twice", puts, keys)
	}
}
