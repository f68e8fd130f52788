package syncjobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// A DIFF finalize deletes an entity of its scope with 2,500 relationships
// from another scope.
func TestFinalizeDeletesEntityWithManyRelationships(t *testing.T) {
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const account, n = "acme", 2500
	parse := func(kind graph.Kind, scope, raw string) *graph.Input {
		in, err := graph.ParseObject(kind, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		in.Scope, in.Source = scope, "api"
		return &in
	}
	ins := []*graph.Input{
		parse(graph.KindEntity, "diff", `{"_key":"doomed-hub-key","_type":"test_thing","_class":"Thing"}`),
		parse(graph.KindEntity, "other", `{"_key":"other-leaf-key","_type":"test_thing","_class":"Thing"}`),
	}
	for i := range n {
		ins = append(ins, parse(graph.KindRelationship, "other", fmt.Sprintf(`{"_key":"other-rel-%06d","_type":"test_rel","_class":"HAS","_fromEntityKey":"other-leaf-key","_toEntityKey":"doomed-hub-key","_toEntityScope":"diff"}`, i)))
	}
	if _, err := store.Update(account, func(tx graph.Txn) error {
		for _, in := range ins {
			if _, _, err := tx.Upsert(in); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := syncjobs.Open(store, store.Jobs(), syncjobs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	j, err := s.Create(account, syncjobs.CreateRequest{Source: "api", Scope: "diff", SyncMode: syncjobs.ModeDiff})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Upload(account, j.ID, []json.RawMessage{json.RawMessage(`{"_key":"kept-thing-key","_type":"test_thing","_class":"Thing"}`)}, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, _ := store.End(account)
	if _, err := s.Finalize(ctx, account, j.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(account, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != syncjobs.StatusFinished || got.NumEntitiesDeleted != 1 || got.NumRelationshipsDeleted != n {
		t.Fatalf("job %s, entities deleted %d, relationships deleted %d", got.Status, got.NumEntitiesDeleted, got.NumRelationshipsDeleted)
	}
	es, err := store.ReadLog(account, before, 1<<20, 1<<40)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Count > graph.MaxCascade+1 {
			t.Errorf("entry of %d changes", e.Count)
		}
	}
}
