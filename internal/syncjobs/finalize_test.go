package syncjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

func entities(from, to int, version string) []json.RawMessage {
	var out []json.RawMessage
	for i := from; i < to; i++ {
		out = append(out, json.RawMessage(fmt.Sprintf(`{"_key":"entity-key-%05d","_type":"test_thing","_class":"Thing","v":%q}`, i, version)))
	}
	return out
}

func runJob(t *testing.T, s *Service, mode string, objs []json.RawMessage) Job {
	t.Helper()
	j, err := s.Create("acct", CreateRequest{Source: "api", Scope: "scope-1", SyncMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(objs); i += 400 {
		if _, err := s.Upload("acct", j.ID, objs[i:min(i+400, len(objs))], nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Finalize(ctx, "acct", j.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	j, err = s.Get("acct", j.ID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestFinalizeResumesAfterCrash stops a DIFF finalization after its second
// chunk, as a crash would, and checks that a new service resumes it: the
// counters and the log hold every change exactly once.
func TestFinalizeResumesAfterCrash(t *testing.T) {
	store, err := graph.Open(t.TempDir(), graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Open(store, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// 1,200 entities exist; the DIFF job keeps 0-599 unchanged, changes
	// 600-899, omits 900-1199 and adds 1200-1699.
	if j := runJob(t, s, ModePatch, entities(0, 1200, "a")); j.NumEntitiesCreated != 1200 {
		t.Fatalf("setup job: %+v", j)
	}
	s.Close()
	start, _ := store.End("acct")

	chunks := 0
	crash := errors.New("simulated crash")
	s, err = Open(store, Options{Logger: quiet, afterChunk: func(*Job) error {
		if chunks++; chunks == 2 {
			return crash
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	upload := append(append(entities(0, 600, "a"), entities(600, 900, "b")...), entities(1200, 1700, "a")...)
	j := runJob(t, s, ModeDiff, upload)
	if j.Status != StatusFinalizingEntities || chunks != 2 {
		t.Fatalf("after the crash the job is %s after %d chunks, want FINALIZING_ENTITIES after 2", j.Status, chunks)
	}
	s.Close()

	s, err = Open(store, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	j, err = s.Get("acct", j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != StatusFinished || j.NumEntitiesCreated != 500 || j.NumEntitiesUpdated != 300 || j.NumEntitiesDeleted != 300 || j.NumEntitiesUploaded != 1400 {
		t.Fatalf("resumed job: %s created %d updated %d deleted %d uploaded %d; want FINISHED 500/300/300/1400",
			j.Status, j.NumEntitiesCreated, j.NumEntitiesUpdated, j.NumEntitiesDeleted, j.NumEntitiesUploaded)
	}
	es, err := store.ReadLog("acct", start, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	ops := map[graph.Op]int{}
	for _, e := range es {
		for _, c := range e.Changes {
			seen[c.ID]++
			ops[c.Op]++
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("object %s changed %d times in the log, want once", id, n)
		}
	}
	if ops[graph.OpCreate] != 500 || ops[graph.OpUpdate] != 300 || ops[graph.OpDelete] != 300 {
		t.Fatalf("log ops %v, want 500 c, 300 u, 300 d", ops)
	}
}
