package syncjobstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

const (
	busyAccount  = "acct-busy"
	quietAccount = "acct-quiet"
	// chunk is the most objects one turn of a finalization applies
	// (syncjobs' finalizeChunk).
	chunk = 500
)

// fairStore wraps a Store: it logs every finalize chunk committed (Apply)
// as "apply <account> <objects changed>" and every job that ended as
// "finish <account>", and holds the busy account's first chunk, before it
// starts, until release is closed.
type fairStore struct {
	syncjobs.Store

	held, release chan struct{}
	holdOnce      sync.Once
	releaseOnce   sync.Once
	// second is closed when a second chunk of the busy account starts.
	second chan struct{}

	mu      sync.Mutex
	log     []string
	entered int // chunks of the busy account that started
}

func newFairStore(st syncjobs.Store) *fairStore {
	return &fairStore{Store: st, held: make(chan struct{}), release: make(chan struct{}), second: make(chan struct{})}
}

func (f *fairStore) releaseHeld() { f.releaseOnce.Do(func() { close(f.release) }) }

func (f *fairStore) add(entry string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, entry)
}

func (f *fairStore) busyEntered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.entered
}

func changedObjects(j syncjobs.Job) int {
	return j.NumEntitiesCreated + j.NumEntitiesUpdated + j.NumEntitiesDeleted +
		j.NumRelationshipsCreated + j.NumRelationshipsUpdated + j.NumRelationshipsDeleted
}

func (f *fairStore) Apply(j *syncjobs.Job, fn func(graph.Txn) error) (graph.Commit, error) {
	if j.AccountID == busyAccount {
		f.mu.Lock()
		if f.entered++; f.entered == 2 {
			close(f.second)
		}
		f.mu.Unlock()
		f.holdOnce.Do(func() {
			close(f.held)
			<-f.release
		})
	}
	before := changedObjects(*j)
	c, err := f.Store.Apply(j, fn)
	if err == nil {
		f.add(fmt.Sprintf("apply %s %d", j.AccountID, changedObjects(*j)-before))
	}
	return c, err
}

func (f *fairStore) Finish(j *syncjobs.Job) error {
	err := f.Store.Finish(j)
	if err == nil {
		f.add("finish " + j.AccountID)
	}
	return err
}

// stageJob creates a job of n entities in the account and scope and
// uploads them.
func stageJob(t *testing.T, s *syncjobs.Service, account, scope string, n int) string {
	t.Helper()
	j, err := s.Create(account, syncjobs.CreateRequest{Source: "api", Scope: scope, SyncMode: syncjobs.ModeDiff})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		var ents []json.RawMessage
		for k := i; k < min(i+1000, n); k++ {
			ents = append(ents, json.RawMessage(fmt.Sprintf(`{"_key":"entity-key-%06d","_type":"test_thing","_class":"Thing"}`, k)))
		}
		if _, err := s.Upload(account, j.ID, ents, nil); err != nil {
			t.Fatal(err)
		}
	}
	return j.ID
}

// testFairness reproduces one account's backlog of large finalizations
// delaying another account's small one. The busy account asks to
// finalize six jobs of 1,001 entities (three chunks each), its first chunk
// held before it starts; then the quiet account asks to finalize a job of
// one entity, and the chunk is released.
//
// With one worker the accounts take turns: after the quiet account's
// request at most one turn of the busy account's (one chunk, 500 objects)
// is applied before the quiet job ends, and every busy job ends after it.
// With two workers the busy account runs one finalization at a time: while
// its held chunk holds one worker, the quiet job ends on the other, and
// no other chunk of the busy account started.
func testFairness(t *testing.T, open Opener) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			g, st, _ := open(t)
			fs := newFairStore(st)
			s, err := syncjobs.Open(g, fs, syncjobs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			defer fs.releaseHeld() // before Close, which waits for the held chunk
			var busy []string
			for n := range 6 {
				busy = append(busy, stageJob(t, s, busyAccount, fmt.Sprintf("scope-%d", n), 2*chunk+1))
			}
			quiet := stageJob(t, s, quietAccount, "scope-q", 1)

			asked, cancel := context.WithCancel(context.Background())
			cancel() // Finalize answers at once; the finalization goes on
			for _, id := range busy {
				if _, err := s.Finalize(asked, busyAccount, id, nil); err != nil {
					t.Fatal(err)
				}
			}
			safety, stop := context.WithTimeout(context.Background(), 2*time.Minute)
			defer stop()
			select {
			case <-fs.held:
			case <-safety.Done():
				t.Fatal("the busy account's first chunk never started")
			}
			if _, err := s.Finalize(asked, quietAccount, quiet, nil); err != nil {
				t.Fatal(err)
			}
			fs.add("requested " + quietAccount)
			if workers == 1 {
				fs.releaseHeld()
			}
			quietDone := make(chan error, 1)
			go func() { quietDone <- s.Wait(safety, quiet) }()
			select {
			case err := <-quietDone:
				if err != nil {
					t.Fatalf("the quiet account's job: %v", err)
				}
			case <-fs.second:
				if workers > 1 {
					t.Fatal("while one chunk of the busy account was held, another of its chunks started: want one finalization per account")
				}
				if err := <-quietDone; err != nil {
					t.Fatalf("the quiet account's job: %v", err)
				}
			}
			if workers > 1 {
				if n := fs.busyEntered(); n != 1 {
					t.Errorf("while one chunk of the busy account was held, %d of its chunks started; want 1 (one finalization per account)", n)
				}
				fs.releaseHeld()
			}
			for _, id := range busy {
				if err := s.Wait(safety, id); err != nil {
					t.Fatal(err)
				}
				if j, _ := s.Get(busyAccount, id); j.Status != syncjobs.StatusFinished || j.NumEntitiesCreated != 2*chunk+1 {
					t.Errorf("busy job: %s", counts(j))
				}
			}
			if j, _ := s.Get(quietAccount, quiet); j.Status != syncjobs.StatusFinished || j.NumEntitiesCreated != 1 {
				t.Errorf("quiet job: %s", counts(j))
			}

			fs.mu.Lock()
			log := fs.log
			fs.mu.Unlock()
			busyAfter, busyFinished, requested := 0, 0, false
			for _, e := range log {
				var account string
				var n int
				switch {
				case e == "requested "+quietAccount:
					requested = true
				case e == "finish "+quietAccount:
					if busyFinished > 0 {
						t.Errorf("%d of the busy account's jobs finished before the quiet account's", busyFinished)
					}
					if busyAfter > chunk {
						t.Errorf("between the quiet account's request and its job's end, %d of the busy account's objects were applied; want at most one chunk (%d)", busyAfter, chunk)
					}
					if workers > 1 && busyAfter > 0 {
						t.Errorf("the quiet account's job waited for %d of the busy account's objects; want none (a worker was free)", busyAfter)
					}
					return
				case e == "finish "+busyAccount:
					busyFinished++
				case requested:
					if _, err := fmt.Sscanf(e, "apply %s %d", &account, &n); err == nil && account == busyAccount {
						busyAfter += n
					}
				}
			}
			t.Errorf("the quiet account's job never finished; log:\n%s", strings.Join(log, "\n"))
		})
	}
}
