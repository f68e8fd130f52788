package graphtest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// The deletion of an entity with many relationships: no transaction holds
// more than graph.MaxCascade of them plus the entity, every relationship's
// delete is logged before the entity's, and no commit (nor a crash between
// two) leaves a live relationship whose end is deleted.

const (
	hubKey    = "cascade-hub-key"
	hubLeaves = 100 // entities the hub's relationships go to
)

// star creates, in account, the hub entity with n relationships from it to
// hubLeaves leaf entities and one from a leaf to it (n+1 in all), plus a
// relationship between two leaves that a delete of the hub leaves live. It
// returns the hub's id.
func star(t *testing.T, g graph.Graph, account string, n int) string {
	t.Helper()
	ins := []*graph.Input{entity(t, `{"_key":"`+hubKey+`","_type":"test_hub","_class":"Thing"}`)}
	for i := range hubLeaves {
		ins = append(ins, thing(t, fmt.Sprintf("cascade-leaf-%04d", i)))
	}
	ins = append(ins,
		relationship(t, `{"_key":"cascade-leaf-to-hub","_type":"test_leaf_has_hub","_class":"HAS","_fromEntityKey":"cascade-leaf-0000","_toEntityKey":"`+hubKey+`"}`),
		relationship(t, `{"_key":"cascade-leaf-to-leaf","_type":"test_leaf_has_leaf","_class":"HAS","_fromEntityKey":"cascade-leaf-0000","_toEntityKey":"cascade-leaf-0001"}`))
	ins = append(ins, spokes(t, "cascade-spoke", n)...)
	for len(ins) > 0 {
		k := min(len(ins), 2000)
		upsert(t, g, account, ins[:k]...)
		ins = ins[k:]
	}
	return graph.ObjectID(account, scopeA, hubKey)
}

// spokes returns n relationships from the hub to its leaves, keyed
// <prefix>-<i>.
func spokes(t *testing.T, prefix string, n int) []*graph.Input {
	t.Helper()
	out := make([]*graph.Input, n)
	for i := range n {
		out[i] = relationship(t, fmt.Sprintf(`{"_key":"%s-%06d","_type":"test_hub_has_leaf","_class":"HAS","_fromEntityKey":"%s","_toEntityKey":"cascade-leaf-%04d"}`,
			prefix, i, hubKey, i%hubLeaves))
	}
	return out
}

// checkCascadeLog fails unless the entries are the deletion of the hub
// (with id) and of deleted relationships attached to it: deletes only,
// none of more than graph.MaxCascade relationships plus the entity, each
// relationship once and before the entity, the entity last when
// entityLast, else not at all.
func checkCascadeLog(t *testing.T, es []changelog.Entry, hub string, deleted int, entityLast bool) {
	t.Helper()
	seen := map[string]bool{}
	entity := false
	for i, e := range es {
		if e.Count > graph.MaxCascade+1 {
			t.Errorf("entry %d (LSN %d) holds %d changes, more than %d relationships and the entity", i, e.LSN, e.Count, graph.MaxCascade)
		}
		for _, c := range e.Changes {
			switch {
			case c.Op != graph.OpDelete:
				t.Fatalf("entry %d: %c %s %s, want deletes only", i, c.Op, c.Kind, c.ID)
			case entity:
				t.Fatalf("entry %d: %s %s after the entity's delete", i, c.Kind, c.ID)
			case c.ID == hub:
				entity = true
				if i != len(es)-1 {
					t.Errorf("the entity's delete is in entry %d of %d, want the last", i, len(es))
				}
			case c.Kind != graph.KindRelationship:
				t.Fatalf("entry %d: deletes entity %s, want only the hub's relationships", i, c.ID)
			case seen[c.ID]:
				t.Fatalf("entry %d: relationship %s deleted twice", i, c.ID)
			default:
				seen[c.ID] = true
			}
		}
	}
	if len(seen) != deleted || entity != entityLast {
		t.Fatalf("log deletes %d relationships and the entity: %v; want %d and %v", len(seen), entity, deleted, entityLast)
	}
}

// liveRelationships returns the number of live relationships of the
// account, and fails if any has an end that is not a live entity.
func liveRelationships(t *testing.T, b Backend, account string) int {
	t.Helper()
	ends := map[string]bool{}
	n := 0
	for cursor := ""; ; {
		page, next, err := b.List(account, graph.KindRelationship, "", cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page {
			o, err := graph.DecodeObject(raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{o.FromID, o.ToID} {
				live, ok := ends[id]
				if !ok {
					e, _, err := b.Get(account, id)
					if err != nil {
						t.Fatalf("relationship %s: end %s: %v", o.Key, id, err)
					}
					live = e.Kind == graph.KindEntity && !e.Deleted
					ends[id] = live
				}
				if !live {
					t.Fatalf("relationship %s is live, yet its end %s is deleted", o.Key, id)
				}
			}
			n++
		}
		if cursor = next; cursor == "" {
			return n
		}
	}
}

// testDeleteManyRelationships deletes an entity with 20,001
// relationships: in chunks, relationships first, the entity last, and
// nothing of it left live.
func testDeleteManyRelationships(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account, n = "j1dev", 20_000
	hub := star(t, b, account, n)
	before := end(t, b, account)
	counts, err := graph.DeleteEntity(graph.UpdaterOf(b, account), hub)
	if err != nil {
		t.Fatal(err)
	}
	if want := (graph.Counts{EntitiesDeleted: 1, RelationshipsDeleted: n + 1}); counts != want {
		t.Errorf("counts %+v, want %+v", counts, want)
	}
	es := entries(t, b, account, before)
	if min := (n + 1 + graph.MaxCascade - 1) / graph.MaxCascade; len(es) < min {
		t.Errorf("%d transactions, want at least %d", len(es), min)
	}
	checkCascadeLog(t, es, hub, n+1, true)
	checkGraphMatchesLog(t, b, account, es[len(es)-1])
	if o, _, err := b.Get(account, hub); err != nil || !o.Deleted {
		t.Fatalf("hub after the delete: deleted %v, %v", o.Deleted, err)
	}
	if got := liveRelationships(t, b, account); got != 1 {
		t.Errorf("%d live relationships, want 1 (between two leaves)", got)
	}
	if _, err := graph.DeleteEntity(graph.UpdaterOf(b, account), hub); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("delete the deleted hub again: %v, want ErrNotFound", err)
	}
}

// errCrash stands for a process killed between two transactions.
var errCrash = errors.New("crash injected between two transactions")

// crashAfter returns an Updater that commits k transactions with update,
// then fails every other with errCrash, committing nothing.
func crashAfter(update graph.Updater, k int) graph.Updater {
	return func(fn func(graph.Txn) error) (graph.Commit, error) {
		if k == 0 {
			return graph.Commit{}, errCrash
		}
		k--
		return update(fn)
	}
}

// testDeleteCrashBetweenChunks stops a delete after two chunks and
// restarts the store: the entity is live with fewer relationships, none
// live with a deleted end; the delete run again completes.
func testDeleteCrashBetweenChunks(t *testing.T, open Opener) {
	b, reopen := open(t, Options{Now: NewClock(t0).Now})
	const account, n, k = "j1dev", 4500, 2
	hub := star(t, b, account, n)
	before := end(t, b, account)
	_, err := graph.DeleteEntity(crashAfter(graph.UpdaterOf(b, account), k), hub)
	if !errors.Is(err, errCrash) {
		t.Fatalf("delete with a crash after %d chunks: %v", k, err)
	}
	b = reopen()
	es := entries(t, b, account, before)
	if len(es) != k {
		t.Fatalf("%d transactions committed before the crash, want %d", len(es), k)
	}
	checkCascadeLog(t, es, hub, k*graph.MaxCascade, false)
	if o, _, err := b.Get(account, hub); err != nil || o.Deleted {
		t.Fatalf("hub after the crash: deleted %v, %v; want live", o.Deleted, err)
	}
	if got, want := liveRelationships(t, b, account), n+2-k*graph.MaxCascade; got != want {
		t.Fatalf("%d live relationships after the crash, want %d", got, want)
	}
	if _, err := graph.DeleteEntity(graph.UpdaterOf(b, account), hub); err != nil {
		t.Fatal(err)
	}
	checkCascadeLog(t, entries(t, b, account, before), hub, n+1, true)
	if got := liveRelationships(t, b, account); got != 1 {
		t.Errorf("%d live relationships, want 1 (between two leaves)", got)
	}
}

// testDeleteWhileAttaching attaches more relationships to the entity than
// a chunk holds between two of its delete's chunks: they are deleted too,
// before the entity.
func testDeleteWhileAttaching(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account, n, added = "j1dev", 2500, graph.MaxCascade + 500
	hub := star(t, b, account, n)
	before := end(t, b, account)
	commits := 0
	update := func(fn func(graph.Txn) error) (graph.Commit, error) {
		c, err := b.Update(account, fn)
		if commits++; commits == 2 {
			upsert(t, b, account, spokes(t, "cascade-added", added)...)
			before = end(t, b, account)
		}
		return c, err
	}
	if _, err := graph.DeleteEntity(update, hub); err != nil {
		t.Fatal(err)
	}
	if commits < 4 {
		t.Errorf("%d transactions, want at least 4", commits)
	}
	checkCascadeLog(t, entries(t, b, account, before), hub, n+1+added-2*graph.MaxCascade, true)
	if got := liveRelationships(t, b, account); got != 1 {
		t.Errorf("%d live relationships, want 1 (between two leaves)", got)
	}
}

// testDeleteCascadeLimit pins Txn.Delete's bound: an entity with more
// than graph.MaxCascade live relationships, as the transaction sees them,
// is refused with a *CascadeError and the transaction goes on unchanged;
// with MaxCascade it is deleted in one transaction.
func testDeleteCascadeLimit(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "j1dev"
	hub := star(t, b, account, graph.MaxCascade) // and one from a leaf
	before := end(t, b, account)
	c, err := b.Update(account, func(tx graph.Txn) error {
		ok, err := tx.Delete(hub)
		var ce *graph.CascadeError
		if ok || !errors.As(err, &ce) || !errors.Is(err, graph.ErrTooManyRelationships) || ce.ID != hub || ce.Limit != graph.MaxCascade {
			return fmt.Errorf("delete of an entity with %d relationships: %v %v, want a CascadeError", graph.MaxCascade+1, ok, err)
		}
		if tx.Changes() != 0 {
			return fmt.Errorf("the refused delete left %d changes in the transaction", tx.Changes())
		}
		_, _, err = tx.Upsert(thing(t, "cascade-other-key"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(c); got != "1 changes, entities created 1" {
		t.Errorf("the transaction that went on committed %s", got)
	}
	if got := summaries(t, b, account, before); got != "c entity cascade-other-key v1\n" {
		t.Errorf("the transaction that went on logged\n%s", got)
	}
	if got := liveRelationships(t, b, account); got != graph.MaxCascade+2 {
		t.Fatalf("%d live relationships after the refused delete, want %d", got, graph.MaxCascade+2)
	}
	before = end(t, b, account)
	// One relationship deleted first: the transaction sees MaxCascade.
	c, err = b.Update(account, func(tx graph.Txn) error {
		if ok, err := tx.Delete(graph.ObjectID(account, scopeA, "cascade-leaf-to-hub")); !ok || err != nil {
			return fmt.Errorf("delete a relationship: %v %v", ok, err)
		}
		_, err := tx.Delete(hub)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(c), tally(graph.MaxCascade+2, graph.Counts{EntitiesDeleted: 1, RelationshipsDeleted: graph.MaxCascade + 1}); got != want {
		t.Errorf("commit %s, want %s", got, want)
	}
	if es := entries(t, b, account, before); len(es) != 1 || es[0].Changes[len(es[0].Changes)-1].ID != hub {
		t.Errorf("the delete logged %d entries, want one that ends with the entity's delete", len(es))
	}
	if got := liveRelationships(t, b, account); got != 1 {
		t.Errorf("%d live relationships, want 1 (between two leaves)", got)
	}
}

// testDeleteEntityNotFound: DeleteEntity of no live entity commits
// nothing and returns ErrNotFound.
func testDeleteEntityNotFound(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "j1dev"
	star(t, b, account, 3)
	before := end(t, b, account)
	for _, key := range []string{"cascade-leaf-to-hub", "never-stored-key"} {
		if _, err := graph.DeleteEntity(graph.UpdaterOf(b, account), graph.ObjectID(account, scopeA, key)); !errors.Is(err, graph.ErrNotFound) {
			t.Errorf("DeleteEntity(%s): %v, want ErrNotFound", key, err)
		}
	}
	if got := end(t, b, account); got != before {
		t.Errorf("the log moved from %d to %d", before, got)
	}
}
