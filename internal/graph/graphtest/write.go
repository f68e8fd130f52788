package graphtest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

// testLifecycle pins an object's life: the metadata the store keeps
// (_id, _version, _createdOn, _beginOn, _endOn, _deleted, _accountId,
// _scope, _source) and the exact record lines each transaction logs; an
// upload equal to what is stored commits nothing; deletion is soft,
// cascades to relationships and is logged with the after-image; a deleted
// object uploaded again is created with the next version. After each step
// the graph holds what the log's last record of each object says.
func testLifecycle(t *testing.T, open Opener) {
	b, clk := start(t, open)
	const account = "j1dev"
	ids := strings.NewReplacer(
		"$user", graph.ObjectID(account, scopeA, "slack-user:team_T1:user_U1"),
		"$team", graph.ObjectID(account, scopeA, "slack-team:team_T1"),
		"$has", graph.ObjectID(account, scopeA, "team_T1|has|user_U1"),
	)
	userID := graph.ObjectID(account, scopeA, "slack-user:team_T1:user_U1")
	updated := `{"_key":"slack-user:team_T1:user_U1","_type":"slack_user","_class":["User"],"username":"some.user","active":false}`
	steps := []struct {
		name    string
		advance time.Duration // the clock moves before the step
		do      func(graph.Txn) error
		commit  string // describe's rendering of the Commit
		lines   string // the entry's record lines; ids as $user, $team, $has
	}{
		{
			name:   "create a user and a team",
			do:     upserts(entity(t, user1), entity(t, team)),
			commit: "2 changes, entities created 2",
			lines: `
{"operation":"c","eventType":"entity","properties":{"_scope":"scope-a","_source":"integration-managed","_key":"slack-user:team_T1:user_U1","_accountId":"j1dev","_type":"slack_user","_class":["User"],"_id":"$user","_deleted":false,"_version":1,"_createdOn":1795687200000,"_beginOn":1795687200000,"active":true,"username":"some.user"},"labels":["Entity","User","slack_user"]}
{"operation":"c","eventType":"entity","properties":{"_scope":"scope-a","_source":"integration-managed","_key":"slack-team:team_T1","_accountId":"j1dev","_type":"slack_team","_class":["Account","Organization"],"_id":"$team","_deleted":false,"_version":1,"_createdOn":1795687200000,"_beginOn":1795687200000,"name":"T1"},"labels":["Entity","Account","Organization","slack_team"]}
`,
		},
		{
			name:   "relate them, in the same millisecond",
			do:     upserts(relationship(t, hasUser1)),
			commit: "1 changes, relationships created 1",
			lines: `
{"operation":"c","eventType":"relationship","properties":{"_scope":"scope-a","_source":"integration-managed","_key":"team_T1|has|user_U1","_accountId":"j1dev","_type":"slack_team_has_user","_class":"HAS","_id":"$has","_deleted":false,"_version":1,"_createdOn":1795687200000,"_beginOn":1795687200000,"_fromEntityId":"$team","_toEntityId":"$user","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"},"labels":["Relationship","HAS","slack_team_has_user"]}
`,
		},
		{
			name:   "the same upload again",
			do:     upserts(entity(t, user1), entity(t, team), relationship(t, hasUser1)),
			commit: "nothing",
		},
		{
			name:    "update the user",
			advance: time.Second,
			do:      upserts(entity(t, updated)),
			commit:  "1 changes, entities updated 1",
			lines: `
{"operation":"u","eventType":"entity","properties":{"_scope":"scope-a","_source":"integration-managed","_key":"slack-user:team_T1:user_U1","_accountId":"j1dev","_type":"slack_user","_class":["User"],"_id":"$user","_deleted":false,"_version":2,"_createdOn":1795687200000,"_beginOn":1795687201000,"active":false,"username":"some.user"},"labels":["Entity","User","slack_user"]}
`,
		},
		{
			name:    "delete the user: its relationship goes first",
			advance: time.Second,
			do:      deletes(userID),
			commit:  "2 changes, entities deleted 1, relationships deleted 1",
			lines: `
{"operation":"d","eventType":"relationship","properties":{"_scope":"scope-a","_source":"integration-managed","_key":"team_T1|has|user_U1","_accountId":"j1dev","_type":"slack_team_has_user","_class":"HAS","_id":"$has","_deleted":true,"_version":2,"_createdOn":1795687200000,"_beginOn":1795687200000,"_endOn":1795687202000,"_fromEntityId":"$team","_toEntityId":"$user","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"},"labels":["Relationship","HAS","slack_team_has_user"]}
{"operation":"d","eventType":"entity","properties":{"_scope":"scope-a","_source":"integration-managed","_key":"slack-user:team_T1:user_U1","_accountId":"j1dev","_type":"slack_user","_class":["User"],"_id":"$user","_deleted":true,"_version":3,"_createdOn":1795687200000,"_beginOn":1795687201000,"_endOn":1795687202000,"active":false,"username":"some.user"},"labels":["Entity","User","slack_user"]}
`,
		},
		{
			name:    "delete it again, and an id never stored",
			advance: time.Second,
			do: func(tx graph.Txn) error {
				for _, id := range []string{userID, graph.ObjectID(account, scopeA, "never-stored-key")} {
					if ok, err := tx.Delete(id); ok || err != nil {
						return fmt.Errorf("delete %s: %v %v, want false and no error", id, ok, err)
					}
				}
				return nil
			},
			commit: "nothing",
		},
		{
			name:   "upload the deleted user again",
			do:     upserts(entity(t, user1)),
			commit: "1 changes, entities created 1",
			lines: `
{"operation":"c","eventType":"entity","properties":{"_scope":"scope-a","_source":"integration-managed","_key":"slack-user:team_T1:user_U1","_accountId":"j1dev","_type":"slack_user","_class":["User"],"_id":"$user","_deleted":false,"_version":4,"_createdOn":1795687203000,"_beginOn":1795687203000,"active":true,"username":"some.user"},"labels":["Entity","User","slack_user"]}
`,
		},
	}
	for _, s := range steps {
		clk.Add(s.advance)
		before := end(t, b, account)
		c, err := b.Update(account, s.do)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := describe(c); got != s.commit {
			t.Errorf("%s: commit %q, want %q", s.name, got, s.commit)
		}
		es := entries(t, b, account, before)
		var lines string
		switch {
		case c.LSN == 0 && len(es) != 0:
			t.Fatalf("%s: committed nothing, yet the log grew by %d entries", s.name, len(es))
		case c.LSN == 0:
		case len(es) != 1 || es[0].LSN != c.LSN || es[0].CommitTime != c.CommitTime || es[0].Count != c.Changes:
			t.Fatalf("%s: commit %+v, log after %d: %+v", s.name, c, before, es)
		default:
			lines = string(es[0].Lines)
			checkGraphMatchesLog(t, b, account, es[0])
		}
		if want := ids.Replace(strings.TrimPrefix(s.lines, "\n")); lines != want {
			t.Errorf("%s: record lines\n%s\nwant\n%s", s.name, lines, want)
		}
	}

	// Listing shows live objects only; Get shows deleted ones too.
	if items, next, err := b.List(account, graph.KindRelationship, "", "", 10); err != nil || len(items) != 0 || next != "" {
		t.Errorf("list relationships: %d items, next %q, %v; want none", len(items), next, err)
	}
	if items, _, err := b.List(account, graph.KindEntity, "", "", 10); err != nil || len(items) != 2 {
		t.Errorf("list entities: %d items, %v; want the user and the team", len(items), err)
	}
	hasID := graph.ObjectID(account, scopeA, "team_T1|has|user_U1")
	if o, _, err := b.Get(account, hasID); err != nil || !o.Deleted || o.Version != 2 || o.Kind != graph.KindRelationship {
		t.Errorf("get the deleted relationship: %+v, %v", o, err)
	}
	if _, _, err := b.Get(account, graph.ObjectID(account, scopeA, "never-stored-key")); !errors.Is(err, graph.ErrNotFound) {
		t.Errorf("get an id never stored: %v, want ErrNotFound", err)
	}
	if err := b.CheckSpace(); err != nil {
		t.Errorf("CheckSpace: %v", err)
	}
}

// testUpsertOps pins when an upload changes an object: whatever a writer
// controls (type, class, source, properties) counts; member order,
// formatting, _rawData and store-owned metadata in the upload do not.
func testUpsertOps(t *testing.T, open Opener) {
	b, clk := start(t, open)
	const account = "acct1"
	withSource := func(in *graph.Input, s string) *graph.Input { in.Source = s; return in }
	steps := []struct {
		name string
		in   *graph.Input
		want string // op (or "none") and the version Upsert returns
	}{
		{"first upload", entity(t, `{"_key":"thing-key-0001","_type":"test_thing","_class":["A","B"],"name":"n","tags":[1,"x"]}`), "c v1"},
		{"the same upload", entity(t, `{"_key":"thing-key-0001","_type":"test_thing","_class":["A","B"],"name":"n","tags":[1,"x"]}`), "none v1"},
		{"members reordered, reformatted", entity(t, "{ \"tags\" : [ 1, \"\\u0078\" ],\"name\":\"n\", \"_class\":[\"A\",\"B\"], \"_type\":\"test_thing\", \"_key\":\"thing-key-0001\" }"), "none v1"},
		{"_rawData and store-owned metadata", entity(t, `{"_key":"thing-key-0001","_type":"test_thing","_class":["A","B"],"name":"n","tags":[1,"x"],"_rawData":[{"name":"default","rawData":{}}],"_version":9,"_id":"x","_deleted":true}`), "none v1"},
		{"a property changed", entity(t, `{"_key":"thing-key-0001","_type":"test_thing","_class":["A","B"],"name":"m","tags":[1,"x"]}`), "u v2"},
		{"a property removed", entity(t, `{"_key":"thing-key-0001","_type":"test_thing","_class":["A","B"],"name":"m"}`), "u v3"},
		{"classes reordered", entity(t, `{"_key":"thing-key-0001","_type":"test_thing","_class":["B","A"],"name":"m"}`), "u v4"},
		{"the type changed", entity(t, `{"_key":"thing-key-0001","_type":"test_other","_class":["B","A"],"name":"m"}`), "u v5"},
		{"the source changed", withSource(entity(t, `{"_key":"thing-key-0001","_type":"test_other","_class":["B","A"],"name":"m"}`), "api"), "u v6"},
		{"the same again", withSource(entity(t, `{"_key":"thing-key-0001","_type":"test_other","_class":["B","A"],"name":"m"}`), "api"), "none v6"},
	}
	for _, s := range steps {
		clk.Add(time.Second)
		before := end(t, b, account)
		var got string
		c, err := b.Update(account, func(tx graph.Txn) error {
			op, o, err := tx.Upsert(s.in)
			if op == 0 {
				got = fmt.Sprintf("none v%d", o.Version)
			} else {
				got = fmt.Sprintf("%c v%d", op, o.Version)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.want {
			t.Errorf("%s: %s, want %s", s.name, got, s.want)
		}
		if noop := strings.HasPrefix(s.want, "none"); noop != (c == graph.Commit{}) || noop != (end(t, b, account) == before) {
			t.Errorf("%s: commit %+v, log end %d -> %d", s.name, c, before, end(t, b, account))
		}
		o, _, err := b.Get(account, graph.ObjectID(account, scopeA, "thing-key-0001"))
		if err != nil || fmt.Sprintf("v%d", o.Version) != strings.Fields(s.want)[1] {
			t.Errorf("%s: stored %+v, %v", s.name, o, err)
		}
	}
}

// testKindConflict: an id belongs to one kind for good; an upload of the
// other kind with the same scope and key fails with ErrKindConflict and
// its transaction writes nothing.
func testKindConflict(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "acct1"
	upsert(t, b, account, entity(t, user1), entity(t, team), relationship(t, hasUser1), thing(t, "deleted-thing"))
	if _, err := b.Update(account, deletes(graph.ObjectID(account, scopeA, "deleted-thing"))); err != nil {
		t.Fatal(err)
	}
	asEntity := func(key string) *graph.Input { return thing(t, key) }
	asRelationship := func(key string) *graph.Input {
		return relationship(t, `{"_key":"`+key+`","_type":"test_relates","_class":"RELATES","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"}`)
	}
	otherScope := func(in *graph.Input) *graph.Input {
		in.Scope, in.FromScope, in.ToScope = "scope-b", scopeA, scopeA
		return in
	}
	for _, c := range []struct {
		name string
		in   *graph.Input
		want error
	}{
		{"relationship over an entity", asRelationship("slack-user:team_T1:user_U1"), graph.ErrKindConflict},
		{"entity over a relationship", asEntity("team_T1|has|user_U1"), graph.ErrKindConflict},
		{"relationship over a deleted entity", asRelationship("deleted-thing"), graph.ErrKindConflict},
		{"the same key in another scope", otherScope(asRelationship("slack-user:team_T1:user_U1")), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := end(t, b, account)
			_, err := b.Update(account, upserts(thing(t, "written-before-the-conflict"), c.in))
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("upsert: %v, want %v", err, c.want)
			}
			if c.want == nil {
				return
			}
			if e := end(t, b, account); e != before {
				t.Errorf("the log moved from %d to %d", before, e)
			}
			if _, _, err := b.Get(account, graph.ObjectID(account, scopeA, "written-before-the-conflict")); !errors.Is(err, graph.ErrNotFound) {
				t.Errorf("an object of the failed transaction is stored: %v", err)
			}
		})
	}
}

// testRelationshipEnds: a relationship's ends, by id or by key (in its own
// scope or the one named), must be live entities of the account; an end
// that is not gives an *EndpointError naming the field and the value.
func testRelationshipEnds(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "acct1"
	id := func(key string) string { return graph.ObjectID(account, scopeA, key) }
	inScopeB := thing(t, "entity-key-b2")
	inScopeB.Scope = "scope-b"
	upsert(t, b, account, thing(t, "entity-key-a"), thing(t, "entity-key-b"), thing(t, "entity-key-gone"), inScopeB,
		relationship(t, `{"_key":"existing-relationship","_type":"test_relates","_class":"RELATES","_fromEntityKey":"entity-key-a","_toEntityKey":"entity-key-b"}`))
	if _, err := b.Update(account, deletes(id("entity-key-gone"))); err != nil {
		t.Fatal(err)
	}
	upsert(t, b, "other-acct", thing(t, "entity-key-a"))
	names := map[string]string{
		id("entity-key-a"): "a", id("entity-key-b"): "b",
		graph.ObjectID(account, "scope-b", "entity-key-b2"): "b2",
	}
	for _, c := range []struct {
		name, ends string // ends: the relationship's end members
		want       string
	}{
		{"keys", `"_fromEntityKey":"entity-key-a","_toEntityKey":"entity-key-b"`, "a entity-key-a -> b entity-key-b"},
		{"ids", `"_fromEntityId":"` + id("entity-key-a") + `","_toEntityId":"` + id("entity-key-b") + `"`, "a entity-key-a -> b entity-key-b"},
		{"id and key", `"_fromEntityId":"` + id("entity-key-b") + `","_toEntityKey":"entity-key-a"`, "b entity-key-b -> a entity-key-a"},
		{"key in the scope named", `"_fromEntityKey":"entity-key-a","_toEntityKey":"entity-key-b2","_toEntityScope":"scope-b"`, "a entity-key-a -> b2 entity-key-b2"},
		{"key in another scope", `"_fromEntityKey":"entity-key-a","_toEntityKey":"entity-key-b2"`, `_toEntityKey "entity-key-b2"`},
		{"key never stored", `"_fromEntityKey":"entity-key-a","_toEntityKey":"no-such-entity"`, `_toEntityKey "no-such-entity"`},
		{"id never stored", `"_fromEntityId":"` + id("no-such-entity") + `","_toEntityKey":"entity-key-b"`, `_fromEntityId "` + id("no-such-entity") + `"`},
		{"deleted entity", `"_fromEntityKey":"entity-key-gone","_toEntityKey":"entity-key-b"`, `_fromEntityKey "entity-key-gone"`},
		{"a relationship", `"_fromEntityKey":"entity-key-a","_toEntityId":"` + id("existing-relationship") + `"`, `_toEntityId "` + id("existing-relationship") + `"`},
		{"another account's entity", `"_fromEntityKey":"entity-key-a","_toEntityId":"` + graph.ObjectID("other-acct", scopeA, "entity-key-a") + `"`, `_toEntityId "` + graph.ObjectID("other-acct", scopeA, "entity-key-a") + `"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := relationship(t, `{"_key":"relationship-under-test","_type":"test_relates","_class":"RELATES",`+c.ends+`}`)
			before := end(t, b, account)
			var o graph.Object
			_, err := b.Update(account, func(tx graph.Txn) error {
				var err error
				_, o, err = tx.Upsert(in)
				return err
			})
			var got string
			var ee *graph.EndpointError
			switch {
			case errors.As(err, &ee):
				if !errors.Is(err, graph.ErrEndpointNotFound) {
					t.Errorf("%v does not wrap ErrEndpointNotFound", err)
				}
				got = fmt.Sprintf("%s %q", ee.Field, ee.Value)
				if e := end(t, b, account); e != before {
					t.Errorf("the log moved from %d to %d", before, e)
				}
			case err != nil:
				t.Fatalf("upsert: %v", err)
			default:
				got = fmt.Sprintf("%s %s -> %s %s", names[o.FromID], o.FromKey, names[o.ToID], o.ToKey)
				stored, _, err := b.Get(account, o.ID)
				if err != nil || stored.FromID != o.FromID || stored.ToID != o.ToID || stored.FromKey != o.FromKey || stored.ToKey != o.ToKey {
					t.Errorf("stored %+v, %v; Upsert returned %+v", stored, err, o)
				}
			}
			if got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
}

// testDeleteCascade: deleting an entity deletes the relationships attached
// to it as the transaction left them: one created earlier in the same
// transaction too, and not one the transaction already deleted; each is
// deleted once.
func testDeleteCascade(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "j1dev"
	rel := func(key string) *graph.Input {
		return relationship(t, `{"_key":"`+key+`","_type":"slack_team_has_user","_class":"HAS","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"}`)
	}
	upsert(t, b, account, entity(t, user1), entity(t, team), rel("team_T1|has|user_U1|stored"))
	before := end(t, b, account)
	id := func(key string) string { return graph.ObjectID(account, scopeA, key) }
	c, err := b.Update(account, func(tx graph.Txn) error {
		if _, _, err := tx.Upsert(rel("team_T1|has|user_U1|new")); err != nil {
			return err
		}
		return deletes(id("team_T1|has|user_U1|stored"), id("slack-team:team_T1"))(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(c), "4 changes, entities deleted 1, relationships created 1, relationships deleted 2"; got != want {
		t.Errorf("commit %q, want %q", got, want)
	}
	want := `c relationship team_T1|has|user_U1|new v1
d relationship team_T1|has|user_U1|stored v2
d relationship team_T1|has|user_U1|new v2
d entity slack-team:team_T1 v2
`
	if got := summaries(t, b, account, before); got != want {
		t.Errorf("records\n%s\nwant\n%s", got, want)
	}
	// The user's relationships are gone: deleting it cascades to nothing.
	c, err = b.Update(account, deletes(id("slack-user:team_T1:user_U1")))
	if got, want := describe(c), "1 changes, entities deleted 1"; err != nil || got != want {
		t.Errorf("delete the user: %q, %v; want %q", got, err, want)
	}
}

// testTxnSeesOwnWrites: reads in a transaction see its writes, and its
// tally follows them; the commit reports what the transaction reported.
func testTxnSeesOwnWrites(t *testing.T, open Opener) {
	b, clk := start(t, open)
	const account = "acct1"
	id := func(key string) string { return graph.ObjectID(account, scopeA, key) }
	upsert(t, b, account, thing(t, "stored-thing"))
	clk.Add(time.Minute)
	before := end(t, b, account)
	var steps []string
	note := func(tx graph.Txn, what string, err error) {
		result := "ok"
		switch {
		case errors.Is(err, graph.ErrNotFound):
			result = "ErrNotFound"
		case err != nil:
			result = err.Error()
		}
		steps = append(steps, fmt.Sprintf("%s: %s; %s", what, result, tally(tx.Changes(), tx.Counts())))
	}
	newThing := thing(t, "new-thing-key")
	newToStored := relationship(t, `{"_key":"new-to-stored","_type":"test_relates","_class":"RELATES","_fromEntityKey":"new-thing-key","_toEntityKey":"stored-thing"}`)
	var txTime time.Time
	c, err := b.Update(account, func(tx graph.Txn) error {
		txTime = tx.CommitTime()
		if tx.Account() != account {
			return fmt.Errorf("Account() = %q", tx.Account())
		}
		_, err := tx.Get(id("new-thing-key"))
		note(tx, "get new-thing-key before it is written", err)
		_, _, err = tx.Upsert(newThing)
		note(tx, "create new-thing-key", err)
		o, err := tx.Get(id("new-thing-key"))
		note(tx, fmt.Sprintf("get new-thing-key: v%d deleted=%v", o.Version, o.Deleted), err)
		op, _, err := tx.Upsert(newThing)
		note(tx, fmt.Sprintf("upload it again: op %d", op), err)
		_, _, err = tx.Upsert(newToStored)
		note(tx, "relate it to stored-thing", err)
		_, err = tx.Delete(id("new-thing-key"))
		note(tx, "delete new-thing-key", err)
		o, err = tx.Get(id("new-to-stored"))
		note(tx, fmt.Sprintf("get the relationship: v%d deleted=%v", o.Version, o.Deleted), err)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(steps, "\n")
	want := `get new-thing-key before it is written: ErrNotFound; 0 changes
create new-thing-key: ok; 1 changes, entities created 1
get new-thing-key: v1 deleted=false: ok; 1 changes, entities created 1
upload it again: op 0: ok; 1 changes, entities created 1
relate it to stored-thing: ok; 2 changes, entities created 1, relationships created 1
delete new-thing-key: ok; 4 changes, entities created 1, entities deleted 1, relationships created 1, relationships deleted 1
get the relationship: v2 deleted=true: ok; 4 changes, entities created 1, entities deleted 1, relationships created 1, relationships deleted 1`
	if got != want {
		t.Errorf("inside the transaction:\n%s\nwant\n%s", got, want)
	}
	if got, want := describe(c), "4 changes, entities created 1, entities deleted 1, relationships created 1, relationships deleted 1"; got != want {
		t.Errorf("commit %q, want %q", got, want)
	}
	if !txTime.Equal(time.UnixMicro(c.CommitTime)) || !txTime.Equal(clk.Now()) {
		t.Errorf("Txn.CommitTime %v, Commit.CommitTime %v, clock %v: want all equal", txTime, time.UnixMicro(c.CommitTime), clk.Now())
	}
	wantLog := `c entity new-thing-key v1
c relationship new-to-stored v1
d relationship new-to-stored v2
d entity new-thing-key v2
`
	if got := summaries(t, b, account, before); got != wantLog {
		t.Errorf("records\n%s\nwant\n%s", got, wantLog)
	}
}

// testFailedTransaction: when fn fails, Update returns its error and a zero
// Commit, and nothing fn wrote (creates, updates, deletes) is stored or
// logged.
func testFailedTransaction(t *testing.T, open Opener) {
	b, _ := start(t, open)
	const account = "acct1"
	id := func(key string) string { return graph.ObjectID(account, scopeA, key) }
	upsert(t, b, account, entity(t, team), thing(t, "stored-thing"))
	errFn := errors.New("fn failed")
	changed := entity(t, `{"_key":"stored-thing","_type":"test_thing","_class":"Thing","changed":true}`)
	user := entity(t, user1)
	for _, c := range []struct {
		name string
		fn   func(graph.Txn) error
		want func(error) bool
	}{
		{
			name: "a relationship end is missing",
			fn:   upserts(entity(t, user1), relationship(t, `{"_key":"team_T1|has|nobody","_type":"slack_team_has_user","_class":"HAS","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"no-such-entity-key"}`)),
			want: func(err error) bool {
				var ee *graph.EndpointError
				return errors.As(err, &ee) && ee.Field == "_toEntityKey"
			},
		},
		{
			name: "fn returns an error after its writes",
			fn: func(tx graph.Txn) error {
				if err := upserts(user, changed)(tx); err != nil {
					return err
				}
				if err := deletes(id("slack-team:team_T1"))(tx); err != nil {
					return err
				}
				return fmt.Errorf("after the writes: %w", errFn)
			},
			want: func(err error) bool { return errors.Is(err, errFn) },
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := end(t, b, account)
			got, err := b.Update(account, c.fn)
			if !c.want(err) || got != (graph.Commit{}) {
				t.Fatalf("Update: %+v, %v", got, err)
			}
			if e := end(t, b, account); e != before {
				t.Errorf("the log moved from %d to %d", before, e)
			}
			if _, _, err := b.Get(account, id("slack-user:team_T1:user_U1")); !errors.Is(err, graph.ErrNotFound) {
				t.Errorf("an entity of the failed transaction is stored: %v", err)
			}
			for _, key := range []string{"slack-team:team_T1", "stored-thing"} {
				if o, _, err := b.Get(account, id(key)); err != nil || o.Version != 1 || o.Deleted {
					t.Errorf("%s: %+v, %v; want version 1, live", key, o, err)
				}
			}
			if items, _, err := b.List(account, graph.KindEntity, "", "", 10); err != nil || len(items) != 2 {
				t.Errorf("list: %d items, %v; want 2", len(items), err)
			}
		})
	}
}
