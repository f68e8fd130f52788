package graphtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// Run runs the suite against the backend open opens.
func Run(t *testing.T, open Opener) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"Lifecycle", testLifecycle},
		{"UpsertOps", testUpsertOps},
		{"KindConflict", testKindConflict},
		{"RelationshipEnds", testRelationshipEnds},
		{"DeleteCascadeSeesTransaction", testDeleteCascade},
		{"TxnSeesOwnWrites", testTxnSeesOwnWrites},
		{"FailedTransactionWritesNothing", testFailedTransaction},
		{"ListPages", testListPages},
		{"ScanScope", testScanScope},
		{"AccountsIsolated", testAccountsIsolated},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open) })
	}
}

const (
	scopeA = "scope-a"
	source = "integration-managed"
)

// t0 is where the suite's clock starts: 1795687200000 ms.
var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// clock is the backend's clock; tests move it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// start opens a backend whose clock stands at t0.
func start(t *testing.T, open Opener) (Backend, *clock) {
	clk := &clock{t: t0}
	b, _ := open(t, Options{Now: clk.Now})
	return b, clk
}

const (
	user1    = `{"_key":"slack-user:team_T1:user_U1","_type":"slack_user","_class":["User"],"username":"some.user","active":true}`
	team     = `{"_key":"slack-team:team_T1","_type":"slack_team","_class":["Account","Organization"],"name":"T1"}`
	hasUser1 = `{"_key":"team_T1|has|user_U1","_type":"slack_team_has_user","_class":"HAS","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"}`
)

func parse(t *testing.T, kind graph.Kind, js string) *graph.Input {
	t.Helper()
	in, err := graph.ParseObject(kind, []byte(js))
	if err != nil {
		t.Fatalf("parse %s: %v", js, err)
	}
	in.Scope, in.Source = scopeA, source
	return &in
}

func entity(t *testing.T, js string) *graph.Input { t.Helper(); return parse(t, graph.KindEntity, js) }

func relationship(t *testing.T, js string) *graph.Input {
	t.Helper()
	return parse(t, graph.KindRelationship, js)
}

// thing is an entity of type test_thing with the key given.
func thing(t *testing.T, key string) *graph.Input {
	t.Helper()
	return entity(t, `{"_key":"`+key+`","_type":"test_thing","_class":"Thing"}`)
}

// upserts returns a transaction that upserts ins.
func upserts(ins ...*graph.Input) func(graph.Txn) error {
	return func(tx graph.Txn) error {
		for _, in := range ins {
			if _, _, err := tx.Upsert(in); err != nil {
				return err
			}
		}
		return nil
	}
}

func upsert(t *testing.T, g graph.Graph, account string, ins ...*graph.Input) graph.Commit {
	t.Helper()
	c, err := g.Update(account, upserts(ins...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deletes returns a transaction that deletes the objects with ids, each of
// which must be live.
func deletes(ids ...string) func(graph.Txn) error {
	return func(tx graph.Txn) error {
		for _, id := range ids {
			ok, err := tx.Delete(id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("delete %s found no live object", id)
			}
		}
		return nil
	}
}

func end(t *testing.T, l changelog.Reader, account string) uint64 {
	t.Helper()
	e, err := l.End(account)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// entries returns all of the account's log entries after an LSN.
func entries(t *testing.T, l changelog.Reader, account string, after uint64) []changelog.Entry {
	t.Helper()
	es, err := l.ReadLog(account, after, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

type record struct {
	Operation  string          `json:"operation"`
	EventType  string          `json:"eventType"`
	Properties json.RawMessage `json:"properties"`
	Labels     []string        `json:"labels"`
}

// summary renders a change record as "<op> <event type> <_key> v<_version>".
func summary(t *testing.T, rec []byte) string {
	t.Helper()
	var r record
	if err := json.Unmarshal(rec, &r); err != nil {
		t.Fatalf("record %s: %v", rec, err)
	}
	var p struct {
		Key     string `json:"_key"`
		Version int64  `json:"_version"`
	}
	if err := json.Unmarshal(r.Properties, &p); err != nil {
		t.Fatalf("record %s: %v", rec, err)
	}
	return fmt.Sprintf("%s %s %s v%d", r.Operation, r.EventType, p.Key, p.Version)
}

// summaries renders the records of the account's entries after an LSN,
// one line each (see summary).
func summaries(t *testing.T, l changelog.Reader, account string, after uint64) string {
	t.Helper()
	var b strings.Builder
	for _, e := range entries(t, l, account, after) {
		for _, c := range e.Changes {
			b.WriteString(summary(t, c.Record))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// describe renders a Commit: "nothing" for the zero Commit, else its
// changes and their tally.
func describe(c graph.Commit) string {
	if c == (graph.Commit{}) {
		return "nothing"
	}
	return tally(c.Changes, c.Counts)
}

// tally renders a count of changes and their non-zero counts.
func tally(changes int, n graph.Counts) string {
	parts := []string{fmt.Sprintf("%d changes", changes)}
	for _, f := range []struct {
		name string
		v    int
	}{
		{"entities created", n.EntitiesCreated}, {"entities updated", n.EntitiesUpdated}, {"entities deleted", n.EntitiesDeleted},
		{"relationships created", n.RelationshipsCreated}, {"relationships updated", n.RelationshipsUpdated}, {"relationships deleted", n.RelationshipsDeleted},
	} {
		if f.v != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f.name, f.v))
		}
	}
	return strings.Join(parts, ", ")
}

// checkGraphMatchesLog fails unless each object an entry changed is stored
// as its last record in the entry gives it, byte for byte.
func checkGraphMatchesLog(t *testing.T, b Backend, account string, e changelog.Entry) {
	t.Helper()
	last := map[string][]byte{}
	for _, c := range e.Changes {
		var r record
		if err := json.Unmarshal(c.Record, &r); err != nil {
			t.Fatalf("record %s: %v", c.Record, err)
		}
		last[c.ID] = r.Properties
	}
	for id, props := range last {
		_, raw, err := b.Get(account, id)
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if !bytes.Equal(raw, props) {
			t.Errorf("%s is stored as\n%s\nbut its last record says\n%s", id, raw, props)
		}
	}
}

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
