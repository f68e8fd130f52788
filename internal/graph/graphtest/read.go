package graphtest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
)

// testListPages: List returns the live objects of a kind, optionally of one
// type, in pages whose cursors chain without gaps or repeats, in a stable
// order, whatever the page size; a cursor List did not return is refused.
func testListPages(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "acct1"
	var ins []*graph.Input
	for i := range 7 {
		ins = append(ins, entity(t, fmt.Sprintf(`{"_key":"user-key-%04d","_type":"test_user","_class":"User"}`, i)))
	}
	upsert(t, b, account, append(ins, entity(t, team), thing(t, "deleted-thing"), thing(t, "other-thing"),
		relationship(t, `{"_key":"thing-relates-thing","_type":"test_relates","_class":"RELATES","_fromEntityKey":"other-thing","_toEntityKey":"user-key-0000"}`))...)
	if _, err := b.Update(account, deletes(graph.ObjectID(account, scopeA, "deleted-thing"))); err != nil {
		t.Fatal(err)
	}
	upsert(t, b, "other-acct", thing(t, "someone-elses"))

	keys := func(items [][]byte) []string {
		var out []string
		for _, raw := range items {
			o, err := graph.DecodeObject(raw)
			if err != nil {
				t.Fatalf("List returned %s: %v", raw, err)
			}
			out = append(out, o.Key)
		}
		return out
	}
	for _, c := range []struct {
		kind graph.Kind
		typ  string
		want string // the keys listed, sorted
	}{
		{graph.KindEntity, "test_user", "user-key-0000 user-key-0001 user-key-0002 user-key-0003 user-key-0004 user-key-0005 user-key-0006"},
		{graph.KindEntity, "test_thing", "other-thing"},
		{graph.KindEntity, "", "other-thing slack-team:team_T1 user-key-0000 user-key-0001 user-key-0002 user-key-0003 user-key-0004 user-key-0005 user-key-0006"},
		{graph.KindRelationship, "", "thing-relates-thing"},
		{graph.KindRelationship, "test_thing", ""},
		{graph.KindEntity, "no_such_type", ""},
	} {
		items, next, err := b.List(account, c.kind, c.typ, "", 1000)
		if err != nil || next != "" {
			t.Fatalf("list %c %q: next %q, %v", c.kind, c.typ, next, err)
		}
		all := keys(items)
		if got := strings.Join(slices.Sorted(slices.Values(all)), " "); got != c.want {
			t.Errorf("list %c %q: %s, want %s", c.kind, c.typ, got, c.want)
		}
		for _, limit := range []int{1, 2, 3, 7, 8} {
			var paged []string
			cursor := ""
			for page := 0; ; page++ {
				items, next, err := b.List(account, c.kind, c.typ, cursor, limit)
				if err != nil {
					t.Fatalf("list %c %q limit %d page %d: %v", c.kind, c.typ, limit, page, err)
				}
				if len(items) > limit || (next != "" && len(items) != limit) {
					t.Fatalf("list %c %q limit %d page %d: %d items, next %q", c.kind, c.typ, limit, page, len(items), next)
				}
				paged = append(paged, keys(items)...)
				if next == "" {
					break
				}
				if page > len(all) {
					t.Fatalf("list %c %q limit %d: paging does not end", c.kind, c.typ, limit)
				}
				cursor = next
			}
			if !slices.Equal(paged, all) {
				t.Errorf("list %c %q in pages of %d: %v, want %v", c.kind, c.typ, limit, paged, all)
			}
		}
	}
	if _, _, err := b.List(account, graph.KindEntity, "", "!!", 3); !errors.Is(err, graph.ErrBadCursor) {
		t.Errorf("list with cursor !!: %v, want ErrBadCursor", err)
	}
}

// testScanScope: ScanScope reports the live objects of one kind in one
// scope, in id order, after the id given, with their types; it reads a
// snapshot, and an error from fn stops it.
func testScanScope(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "acct1"
	inScope := func(scope string, in *graph.Input) *graph.Input { in.Scope = scope; return in }
	var ins []*graph.Input
	for i := range 6 {
		ins = append(ins, entity(t, fmt.Sprintf(`{"_key":"entity-key-%d","_type":"test_type_%d","_class":"Thing"}`, i, i%2)))
	}
	ins = append(ins,
		relationship(t, `{"_key":"relationship-key","_type":"test_relates","_class":"RELATES","_fromEntityKey":"entity-key-0","_toEntityKey":"entity-key-1"}`),
		inScope("scope-b", thing(t, "entity-in-scope-b")),
		thing(t, "deleted-entity"),
	)
	upsert(t, b, account, ins...)
	upsert(t, b, "other-acct", thing(t, "entity-key-0"))
	if _, err := b.Update(account, deletes(graph.ObjectID(account, scopeA, "deleted-entity"))); err != nil {
		t.Fatal(err)
	}
	keyOf := map[string]string{}
	for _, in := range ins {
		keyOf[graph.ObjectID(account, in.Scope, in.Key)] = in.Key
	}
	scan := func(scope string, kind graph.Kind, after string) ([]string, []string) {
		var ids, got []string
		err := b.ScanScope(account, scope, kind, after, func(id, typ string) error {
			ids = append(ids, id)
			got = append(got, keyOf[id]+" "+typ)
			return nil
		})
		if err != nil {
			t.Fatalf("scan %s %c after %q: %v", scope, kind, after, err)
		}
		if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
			t.Errorf("scan %s %c after %q: ids not in increasing order: %v", scope, kind, after, ids)
		}
		return ids, got
	}
	for _, c := range []struct {
		scope string
		kind  graph.Kind
		want  string // "<key> <type>", sorted
	}{
		{scopeA, graph.KindEntity, "entity-key-0 test_type_0,entity-key-1 test_type_1,entity-key-2 test_type_0,entity-key-3 test_type_1,entity-key-4 test_type_0,entity-key-5 test_type_1"},
		{scopeA, graph.KindRelationship, "relationship-key test_relates"},
		{"scope-b", graph.KindEntity, "entity-in-scope-b test_thing"},
		{"scope-b", graph.KindRelationship, ""},
		{"no-such-scope", graph.KindEntity, ""},
	} {
		_, got := scan(c.scope, c.kind, "")
		sort.Strings(got)
		if strings.Join(got, ",") != c.want {
			t.Errorf("scan %s %c: %v, want %s", c.scope, c.kind, got, c.want)
		}
	}
	// After an id, the scan goes on where the full scan would.
	all, _ := scan(scopeA, graph.KindEntity, "")
	for i, after := range all {
		if ids, _ := scan(scopeA, graph.KindEntity, after); !slices.Equal(ids, all[i+1:]) {
			t.Errorf("scan after the id at %d: %v, want %v", i, ids, all[i+1:])
		}
	}

	// An error from fn stops the scan and is returned.
	stop := errors.New("stop")
	calls := 0
	if err := b.ScanScope(account, scopeA, graph.KindEntity, "", func(string, string) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("scan stopped by fn: %v after %d calls", err, calls)
	}

	// Objects written while the scan runs are not reported.
	var seen []string
	err := b.ScanScope(account, scopeA, graph.KindEntity, "", func(id, _ string) error {
		if len(seen) == 0 {
			var more []*graph.Input
			for i := range 20 {
				more = append(more, thing(t, fmt.Sprintf("written-during-scan-%d", i)))
			}
			if _, err := b.Update(account, upserts(more...)); err != nil {
				return err
			}
		}
		seen = append(seen, id)
		return nil
	})
	if err != nil || !slices.Equal(seen, all) {
		t.Errorf("scan while writing: %v, %v; want the %d objects there when it started", seen, err, len(all))
	}
}

// testAccountsIsolated: the same upload in two accounts makes two objects
// with ids of their own; reads, lists, scans, deletes and the log of one
// account never touch the other's.
func testAccountsIsolated(t *testing.T, open Opener) {
	b, _ := start(t, open)
	ca := upsert(t, b, "acct-a", entity(t, user1), entity(t, team), relationship(t, hasUser1))
	cb := upsert(t, b, "acct-b", entity(t, user1), entity(t, team), relationship(t, hasUser1))
	if ca.Changes != 3 || cb.Changes != 3 {
		t.Fatalf("commits %+v %+v, want 3 creates each", ca, cb)
	}
	idA := graph.ObjectID("acct-a", scopeA, "slack-team:team_T1")
	idB := graph.ObjectID("acct-b", scopeA, "slack-team:team_T1")
	if idA == idB {
		t.Fatal("the same scope and key in two accounts give one id")
	}
	if _, _, err := b.Get("acct-b", idA); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("acct-b reads acct-a's object: %v", err)
	}
	if o, _, err := b.Get("acct-a", idA); err != nil || o.AccountID != "acct-a" {
		t.Errorf("acct-a's object: %+v, %v", o, err)
	}
	if _, err := b.Update("acct-b", func(tx graph.Txn) error {
		if ok, err := tx.Delete(idA); ok || err != nil {
			return fmt.Errorf("acct-b deletes acct-a's object: %v %v", ok, err)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if _, err := b.Update("acct-a", deletes(idA)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		account       string
		entities, rel int
	}{{"acct-a", 1, 0}, {"acct-b", 2, 1}} {
		if items, _, err := b.List(c.account, graph.KindEntity, "", "", 10); err != nil || len(items) != c.entities {
			t.Errorf("%s lists %d entities, %v; want %d", c.account, len(items), err, c.entities)
		}
		if items, _, err := b.List(c.account, graph.KindRelationship, "", "", 10); err != nil || len(items) != c.rel {
			t.Errorf("%s lists %d relationships, %v; want %d", c.account, len(items), err, c.rel)
		}
		n := 0
		if err := b.ScanScope(c.account, scopeA, graph.KindEntity, "", func(string, string) error { n++; return nil }); err != nil || n != c.entities {
			t.Errorf("%s scans %d entities, %v; want %d", c.account, n, err, c.entities)
		}
	}
	if got, want := summaries(t, b, "acct-b", 0), "c entity slack-user:team_T1:user_U1 v1\nc entity slack-team:team_T1 v1\nc relationship team_T1|has|user_U1 v1\n"; got != want {
		t.Errorf("acct-b's log:\n%s\nwant\n%s", got, want)
	}
	if e := end(t, b, "acct-never-written"); e != 0 {
		t.Errorf("end of an account never written: %d", e)
	}
}
