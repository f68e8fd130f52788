package syncjobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// changingStore wraps a Store: while on, every write of a job's record
// that a request makes (PutJob, Stage, Finish) fails with ErrJobChanged,
// as if other nodes changed the job between every read and write.
type changingStore struct {
	syncjobs.Store
	on     atomic.Bool
	writes atomic.Int64
}

func (c *changingStore) refuse() error {
	if !c.on.Load() {
		return nil
	}
	c.writes.Add(1)
	return syncjobs.ErrJobChanged
}

func (c *changingStore) PutJob(j *syncjobs.Job) error {
	if err := c.refuse(); err != nil {
		return err
	}
	return c.Store.PutJob(j)
}

func (c *changingStore) Stage(j *syncjobs.Job, objs []syncjobs.StagedObject, fn func([]bool, syncjobs.Usage) error) error {
	if err := c.refuse(); err != nil {
		return err
	}
	return c.Store.Stage(j, objs, fn)
}

func (c *changingStore) Finish(j *syncjobs.Job) error {
	if err := c.refuse(); err != nil {
		return err
	}
	return c.Store.Finish(j)
}

// TestJobChangedWithoutPause: a request that finds its job changed at
// every write starts over a bounded number of times, then fails with an
// error that is no API error of the job (the API answers it as internal)
// and wraps ErrJobChanged; the job is left as it was.
func TestJobChangedWithoutPause(t *testing.T) {
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	st := &changingStore{Store: store.Jobs()}
	s, err := syncjobs.Open(store, st, syncjobs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const account = "acme"
	j, err := s.Create(account, syncjobs.CreateRequest{Source: "api", Scope: "changing", SyncMode: syncjobs.ModePatch})
	if err != nil {
		t.Fatal(err)
	}
	st.on.Store(true)
	requests := []struct {
		name string
		do   func() error
	}{
		{"upload", func() error {
			_, err := s.Upload(account, j.ID, []json.RawMessage{json.RawMessage(`{"_key":"thing-key-1","_type":"test_thing","_class":"Thing"}`)}, nil)
			return err
		}},
		{"abort", func() error { _, err := s.Abort(account, j.ID, "changing"); return err }},
		{"finalize", func() error { _, err := s.Finalize(context.Background(), account, j.ID, nil); return err }},
	}
	for _, r := range requests {
		before := st.writes.Load()
		err := r.do()
		var je *syncjobs.Error
		if !errors.Is(err, syncjobs.ErrJobChanged) || errors.As(err, &je) {
			t.Errorf("%s: err %v, want one wrapping ErrJobChanged and no *syncjobs.Error", r.name, err)
		}
		if n := st.writes.Load() - before; n != 101 {
			t.Errorf("%s: %d writes tried, want 101 (the first and 100 more)", r.name, n)
		}
	}
	got, err := s.Get(account, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != syncjobs.StatusAwaitingUploads || got.NumEntitiesUploaded != 0 || got.Revision != j.Revision {
		t.Errorf("job after the requests: %s, %d uploaded, revision %d; want AWAITING_UPLOADS, 0, %d", got.Status, got.NumEntitiesUploaded, got.Revision, j.Revision)
	}
}
