package syncjobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

var errOutage = errors.New("the database is unreachable")

// outageStore wraps a Store: while down, every finalize chunk (Apply)
// fails with errOutage and writes nothing, as against a database that
// went away.
type outageStore struct {
	syncjobs.Store

	mu     sync.Mutex
	down   bool
	failed int
}

func (o *outageStore) setDown(down bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down = down
}

func (o *outageStore) failures() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.failed
}

func (o *outageStore) Apply(j *syncjobs.Job, fn func(graph.Txn) error) (graph.Commit, error) {
	o.mu.Lock()
	if o.down {
		o.failed++
		o.mu.Unlock()
		return graph.Commit{}, fmt.Errorf("apply: %w", errOutage)
	}
	o.mu.Unlock()
	return o.Store.Apply(j, fn)
}

// TestFinalizeRetry: a finalization that fails with an error Options.Retry
// accepts is tried again in the same process and finishes once the cause
// has passed; without Retry it stops, and the job waits for the next Open.
func TestFinalizeRetry(t *testing.T) {
	for _, retry := range []bool{true, false} {
		t.Run(fmt.Sprintf("retry=%v", retry), func(t *testing.T) {
			store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			st := &outageStore{Store: store.Jobs(), down: true}
			o := syncjobs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			if retry {
				o.Retry = func(err error) bool { return errors.Is(err, errOutage) }
			}
			s, err := syncjobs.Open(store, st, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			const account = "acme"
			j, err := s.Create(account, syncjobs.CreateRequest{Source: "api", Scope: "retry", SyncMode: syncjobs.ModePatch})
			if err != nil {
				t.Fatal(err)
			}
			var ents []json.RawMessage
			for i := range 10 {
				ents = append(ents, json.RawMessage(fmt.Sprintf(`{"_key":"retry-key-%05d","_type":"test_thing","_class":"Thing"}`, i)))
			}
			if _, err := s.Upload(account, j.ID, ents, nil); err != nil {
				t.Fatal(err)
			}
			// Finalize answers when its context ends, the job going on.
			fctx, fcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer fcancel()
			if _, err := s.Finalize(fctx, account, j.ID, nil); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// Two failed attempts (a second apart), then the outage ends.
			deadline := time.Now().Add(30 * time.Second)
			for st.failures() < 2 && retry {
				if time.Now().After(deadline) {
					t.Fatalf("%d failed attempts in 30s, want 2", st.failures())
				}
				time.Sleep(50 * time.Millisecond)
			}
			st.setDown(false)
			if err := s.Wait(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(account, j.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := syncjobs.StatusFinished
			if !retry {
				want = syncjobs.StatusFinalizingEntities
			}
			if got.Status != want {
				t.Errorf("job %s after the outage (%d failed attempts), want %s", got.Status, st.failures(), want)
			}
			if retry && got.NumEntitiesCreated != 10 {
				t.Errorf("finished job created %d entities, want 10", got.NumEntitiesCreated)
			}
			if !retry && st.failures() != 1 {
				t.Errorf("without Retry, %d attempts failed, want 1", st.failures())
			}
		})
	}
}
