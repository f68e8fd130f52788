package api_test

// Deleting an entity with many relationships through the REST API: in
// transactions of at most graph.MaxCascade relationships, the entity last.

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
)

func TestDeleteEntityWithManyRelationships(t *testing.T) {
	const n = 2*graph.MaxCascade + 500
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			e := newEnvOn(t, backend)
			key := e.newAccount(t, acct)
			hub := e.hubWithRelationships(t, n)
			end := e.end(t, acct)

			r := e.rest(t, key, "DELETE", restBase+"/entities/"+hub, nil)
			wantStatus(t, r, http.StatusOK)
			wantFields(t, "delete answer", decode(t, r), "_id", hub, "_deleted", true, "_version", 2)

			changes, sizes := e.logSince(t, acct, end)
			if len(sizes) < 3 {
				t.Errorf("the delete committed %d transactions, want at least 3", len(sizes))
			}
			for i, size := range sizes {
				if size > graph.MaxCascade+1 {
					t.Errorf("transaction %d of the delete holds %d changes, more than %d relationships and the entity", i, size, graph.MaxCascade)
				}
			}
			if len(changes) != n+1 {
				t.Fatalf("the delete logged %d changes, want %d", len(changes), n+1)
			}
			for i, c := range changes[:n] {
				if c.Op != "d" || c.Kind != "relationship" {
					t.Fatalf("change %d: %s, want a relationship's delete, before the entity's", i, c.summary())
				}
			}
			if last := changes[n]; last.Op != "d" || last.ID != hub {
				t.Errorf("last change: %s %s, want the entity's delete", last.summary(), last.ID)
			}
			r = e.rest(t, key, "GET", restBase+"/relationships", nil)
			wantStatus(t, r, http.StatusOK)
			if items, _ := decode(t, r)["items"].([]any); len(items) != 0 {
				t.Errorf("%d relationships live after the delete, want none", len(items))
			}
			r = e.rest(t, key, "DELETE", restBase+"/entities/"+hub, nil)
			wantError(t, r, http.StatusNotFound, "NOT_FOUND")
		})
	}
}

// fullAfter is a graph whose disk fills up after a number of
// transactions: from then on every Update fails as the store's own
// space check fails (graph.ErrDiskFull), until room is made.
type fullAfter struct {
	graph.Graph
	left atomic.Int64 // transactions that still fit; below 0: unlimited
}

func (g *fullAfter) Update(account string, fn func(graph.Txn) error) (graph.Commit, error) {
	if g.left.Load() >= 0 && g.left.Add(-1) < 0 {
		return graph.Commit{}, fmt.Errorf("update account %s: %w", account, graph.ErrDiskFull)
	}
	return g.Graph.Update(account, fn)
}

// TestDeleteEntityDiskFullPartway: an entity's delete that the disk stops
// after its first transaction answers 507 DISK_FULL saying how many of the
// relationships were deleted and that the entity is still there (not
// "nothing was written"); sending the DELETE again finishes it.
func TestDeleteEntityDiskFullPartway(t *testing.T) {
	const n = 2*graph.MaxCascade + 500
	g := &fullAfter{}
	g.left.Store(-1)
	e := newEnvOn(t, "pebble", func(c *api.Config) { g.Graph = c.Graph; c.Graph = g })
	key := e.newAccount(t, acct)
	hub := e.hubWithRelationships(t, n)

	// Stopped before its first transaction: nothing was written.
	g.left.Store(0)
	r := e.rest(t, key, "DELETE", restBase+"/entities/"+hub, nil)
	wantError(t, r, http.StatusInsufficientStorage, "DISK_FULL", "nothing was written")

	// Stopped after its first: MaxCascade relationships are gone.
	g.left.Store(1)
	r = e.rest(t, key, "DELETE", restBase+"/entities/"+hub, nil)
	wantError(t, r, http.StatusInsufficientStorage, "DISK_FULL", fmt.Sprintf("%d of the entity's relationships were deleted", graph.MaxCascade), "the entity is still there", "send the DELETE again")
	r = e.rest(t, key, "GET", restBase+"/entities/"+hub, nil)
	wantStatus(t, r, http.StatusOK)

	g.left.Store(-1)
	r = e.rest(t, key, "DELETE", restBase+"/entities/"+hub, nil)
	wantStatus(t, r, http.StatusOK)
	r = e.rest(t, key, "GET", restBase+"/relationships", nil)
	wantStatus(t, r, http.StatusOK)
	if items, _ := decode(t, r)["items"].([]any); len(items) != 0 {
		t.Errorf("%d relationships live after the second delete, want none", len(items))
	}

}

// hubWithRelationships stores an entity with n relationships to another
// entity, in one transaction outside the API, and returns its id.
func (e *env) hubWithRelationships(t *testing.T, n int) string {
	t.Helper()
	parse := func(kind graph.Kind, raw string) *graph.Input {
		in, err := graph.ParseObject(kind, []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		in.Scope, in.Source = "api", "api"
		return &in
	}
	ins := []*graph.Input{
		parse(graph.KindEntity, `{"_key":"cascade-hub-0001","_type":"rest_hub","_class":"Thing"}`),
		parse(graph.KindEntity, `{"_key":"cascade-leaf-0001","_type":"rest_leaf","_class":"Thing"}`),
	}
	for i := range n {
		ins = append(ins, parse(graph.KindRelationship, fmt.Sprintf(
			`{"_key":"cascade-rel-%06d","_type":"rest_hub_has_leaf","_class":"HAS","_fromEntityKey":"cascade-hub-0001","_toEntityKey":"cascade-leaf-0001"}`, i)))
	}
	if _, err := e.store.Update(acct, func(tx graph.Txn) error {
		for _, in := range ins {
			if _, _, err := tx.Upsert(in); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return graph.ObjectID(acct, "api", "cascade-hub-0001")
}
