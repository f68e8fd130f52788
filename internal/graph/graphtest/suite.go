package graphtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
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
		{"DeleteCascadeLimit", testDeleteCascadeLimit},
		{"DeleteManyRelationships", testDeleteManyRelationships},
		{"DeleteCrashBetweenChunks", testDeleteCrashBetweenChunks},
		{"DeleteWhileAttaching", testDeleteWhileAttaching},
		{"DeleteEntityNotFound", testDeleteEntityNotFound},
		{"TxnSeesOwnWrites", testTxnSeesOwnWrites},
		{"FailedTransactionWritesNothing", testFailedTransaction},
		{"ListPages", testListPages},
		{"ListBytes", testListBytes},
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

// start opens a backend whose clock stands at t0.
func start(t *testing.T, open Opener) (Backend, *Clock) {
	clk := NewClock(t0)
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
