package syncjobstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

var errCrashed = errors.New("simulated crash")

// crashingStore wraps a Store: once `after` finalize chunks (Apply calls)
// have committed, every write fails with errCrashed and writes nothing, as
// a process killed at that point writes nothing more. Reads go on. A zero
// `after` never crashes.
type crashingStore struct {
	syncjobs.Store
	after int

	mu      sync.Mutex
	applied int
}

var _ syncjobs.Store = (*crashingStore)(nil)

func (c *crashingStore) crashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.after > 0 && c.applied >= c.after
}

func (c *crashingStore) PutJob(j *syncjobs.Job) error {
	if c.crashed() {
		return errCrashed
	}
	return c.Store.PutJob(j)
}

func (c *crashingStore) SetEvents(account, id string, n int) error {
	if c.crashed() {
		return errCrashed
	}
	return c.Store.SetEvents(account, id, n)
}

func (c *crashingStore) Stage(j *syncjobs.Job, objs []syncjobs.StagedObject, fn func([]bool, syncjobs.Usage) error) error {
	if c.crashed() {
		return errCrashed
	}
	return c.Store.Stage(j, objs, fn)
}

func (c *crashingStore) Finish(j *syncjobs.Job) error {
	if c.crashed() {
		return errCrashed
	}
	return c.Store.Finish(j)
}

func (c *crashingStore) Apply(j *syncjobs.Job, fn func(graph.Txn) error) (graph.Commit, error) {
	if c.crashed() {
		return graph.Commit{}, errCrashed
	}
	cm, err := c.Store.Apply(j, fn)
	if err == nil {
		c.mu.Lock()
		c.applied++
		c.mu.Unlock()
	}
	return cm, err
}

func (c *crashingStore) chunks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}

func openService(t *testing.T, g graph.Graph, st syncjobs.Store) *syncjobs.Service {
	t.Helper()
	s, err := syncjobs.Open(g, st, syncjobs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func entities(from, to int, version string) []json.RawMessage {
	var out []json.RawMessage
	for i := from; i < to; i++ {
		out = append(out, json.RawMessage(fmt.Sprintf(`{"_key":"entity-key-%05d","_type":"test_thing","_class":"Thing","v":%q}`, i, version)))
	}
	return out
}

// runJob creates a job in scope, uploads its objects in requests of 400,
// finalizes it, waits until this process is done with it and returns it.
func runJob(t *testing.T, s *syncjobs.Service, scope, mode string, partial *syncjobs.PartialDatasets, ents, rels []json.RawMessage) syncjobs.Job {
	t.Helper()
	j, err := s.Create(account, syncjobs.CreateRequest{Source: "api", Scope: scope, SyncMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		objs []json.RawMessage
		kind graph.Kind
	}{{ents, graph.KindEntity}, {rels, graph.KindRelationship}} {
		for i := 0; i < len(l.objs); i += 400 {
			part := l.objs[i:min(i+400, len(l.objs))]
			if l.kind == graph.KindEntity {
				_, err = s.Upload(account, j.ID, part, nil)
			} else {
				_, err = s.Upload(account, j.ID, nil, part)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.Finalize(ctx, account, j.ID, partial); err != nil {
		t.Fatal(err)
	}
	return waitJob(t, s, j.ID)
}

func waitJob(t *testing.T, s *syncjobs.Service, id string) syncjobs.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	j, err := s.Get(account, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func counts(j syncjobs.Job) string {
	return fmt.Sprintf("%s; entities uploaded %d created %d updated %d deleted %d; relationships uploaded %d created %d updated %d deleted %d",
		j.Status, j.NumEntitiesUploaded, j.NumEntitiesCreated, j.NumEntitiesUpdated, j.NumEntitiesDeleted,
		j.NumRelationshipsUploaded, j.NumRelationshipsCreated, j.NumRelationshipsUpdated, j.NumRelationshipsDeleted)
}

// testResumeAfterCrash runs a DIFF finalization of three entity chunks
// twice on fresh backends: once uninterrupted, once crashing after its
// second chunk, then restarting (reopen, Open resumes it). The restarted
// run ends with the same counters and the same graph, and its log holds
// every change exactly once.
func testResumeAfterCrash(t *testing.T, open Opener) {
	plain := crashRun(t, open, 0)
	resumed := crashRun(t, open, 2)
	if resumed.job != plain.job {
		t.Errorf("resumed job: %s\nuninterrupted: %s", resumed.job, plain.job)
	}
	if resumed.graph != plain.graph {
		t.Errorf("the resumed run's graph differs from the uninterrupted run's:\n%s", firstDiff(resumed.graph, plain.graph))
	}
}

type runResult struct{ job, graph string }

func crashRun(t *testing.T, open Opener, crashAfter int) runResult {
	g, st, reopen := open(t)
	s := openService(t, g, st)
	// 1,200 entities exist; the DIFF job keeps 0-599 unchanged, changes
	// 600-899, omits 900-1199 and adds 1200-1699.
	if j := runJob(t, s, scope, syncjobs.ModePatch, nil, entities(0, 1200, "a"), nil); j.NumEntitiesCreated != 1200 {
		t.Fatalf("setup job: %s", counts(j))
	}
	s.Close()
	var start uint64
	r, isLog := g.(changelog.Reader)
	if isLog {
		var err error
		if start, err = r.End(account); err != nil {
			t.Fatal(err)
		}
	}

	cs := &crashingStore{Store: st, after: crashAfter}
	s = openService(t, g, cs)
	upload := append(append(entities(0, 600, "a"), entities(600, 900, "b")...), entities(1200, 1700, "a")...)
	j := runJob(t, s, scope, syncjobs.ModeDiff, nil, upload, nil)
	s.Close()
	if crashAfter > 0 {
		if j.Status != syncjobs.StatusFinalizingEntities || cs.chunks() != crashAfter {
			t.Fatalf("after the crash the job is %s after %d chunks, want FINALIZING_ENTITIES after %d", j.Status, cs.chunks(), crashAfter)
		}
		g, st = reopen()
		s = openService(t, g, st)
		j = waitJob(t, s, j.ID)
		s.Close()
	}
	const want = "FINISHED; entities uploaded 1400 created 500 updated 300 deleted 300; relationships uploaded 0 created 0 updated 0 deleted 0"
	if got := counts(j); got != want {
		t.Fatalf("job (crash after %d chunks): %s\nwant %s", crashAfter, got, want)
	}

	if r, isLog = g.(changelog.Reader); isLog {
		checkChangedOnce(t, r, account, start, 500, 300, 300)
	}

	var b strings.Builder
	for i := range 1700 {
		key := fmt.Sprintf("entity-key-%05d", i)
		fmt.Fprintf(&b, "%s %s\n", key, objectSummary(t, g, scope, key))
	}
	return runResult{job: counts(j), graph: b.String()}
}

// objectSummary is an object's kind, version, state and property v (or its
// ends, for a relationship), without times.
func objectSummary(t *testing.T, g graph.Graph, scope, key string) string {
	t.Helper()
	o, _, err := g.Get(account, graph.ObjectID(account, scope, key))
	if errors.Is(err, graph.ErrNotFound) {
		return "none"
	}
	if err != nil {
		t.Fatal(err)
	}
	state := "live"
	if o.Deleted {
		state = "deleted"
	}
	s := fmt.Sprintf("%s v%d %s", o.Kind, o.Version, state)
	if v, ok := o.Prop("v"); ok {
		s += " v=" + string(v)
	}
	if o.Kind == graph.KindRelationship {
		s += " " + o.FromKey + "->" + o.ToKey
	}
	return s
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d: %q, want %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(al), len(bl))
}

func object(key, typ string, ends ...string) json.RawMessage {
	m := map[string]string{"_key": key, "_type": typ, "_class": "Thing"}
	if len(ends) > 0 {
		m["_class"] = "HAS"
		m["_fromEntityKey"], m["_toEntityKey"] = ends[0], ends[1]
		if len(ends) > 2 {
			m["_toEntityScope"] = ends[2]
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// testDiffDeletes pins what a job deletes and counts: in scope-1, nodes a,
// b (test_node) and c (test_other), links a->b and b->a; in scope-2 node d
// and link d->c across scopes. The job of each case uploads a, b and a->b
// to scope-1. Deleting an entity deletes its relationships, of any scope,
// and the job counts them.
func testDiffDeletes(t *testing.T, open Opener) {
	cases := []struct {
		name    string
		mode    string
		partial *syncjobs.PartialDatasets
		job     string
		graph   string
	}{{
		name:  "PATCH deletes nothing",
		mode:  syncjobs.ModePatch,
		job:   "FINISHED; entities uploaded 2 created 0 updated 0 deleted 0; relationships uploaded 1 created 0 updated 0 deleted 0",
		graph: "a live, b live, c live, a->b live, b->a live, d live, d->c live",
	}, {
		name:  "DIFF deletes what it did not upload and the relationships of what it deletes",
		mode:  syncjobs.ModeDiff,
		job:   "FINISHED; entities uploaded 2 created 0 updated 0 deleted 1; relationships uploaded 1 created 0 updated 0 deleted 2",
		graph: "a live, b live, c deleted, a->b live, b->a deleted, d live, d->c deleted",
	}, {
		name:    "DIFF keeps types of partialDatasets",
		mode:    syncjobs.ModeDiff,
		partial: &syncjobs.PartialDatasets{Types: []string{"test_other"}},
		job:     "FINISHED; entities uploaded 2 created 0 updated 0 deleted 0; relationships uploaded 1 created 0 updated 0 deleted 1",
		graph:   "a live, b live, c live, a->b live, b->a deleted, d live, d->c live",
	}, {
		name:    "DIFF keeps relationship types of partialDatasets",
		mode:    syncjobs.ModeDiff,
		partial: &syncjobs.PartialDatasets{Types: []string{"test_back"}},
		job:     "FINISHED; entities uploaded 2 created 0 updated 0 deleted 1; relationships uploaded 1 created 0 updated 0 deleted 1",
		graph:   "a live, b live, c deleted, a->b live, b->a live, d live, d->c deleted",
	}}
	node := func(k string) string { return "node-key-" + k }
	link := func(k string) string { return "link-key-" + k }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g, st, _ := open(t)
			s := openService(t, g, st)
			defer s.Close()
			setup := []syncjobs.Job{
				runJob(t, s, "scope-1", syncjobs.ModePatch, nil,
					[]json.RawMessage{object(node("a"), "test_node"), object(node("b"), "test_node"), object(node("c"), "test_other")},
					[]json.RawMessage{object(link("ab"), "test_link", node("a"), node("b")), object(link("ba"), "test_back", node("b"), node("a"))}),
				runJob(t, s, "scope-2", syncjobs.ModePatch, nil,
					[]json.RawMessage{object(node("d"), "test_node")},
					[]json.RawMessage{object(link("dc"), "test_link", node("d"), node("c"), "scope-1")}),
			}
			for _, j := range setup {
				if j.Status != syncjobs.StatusFinished {
					t.Fatalf("setup job: %s %+v", counts(j), j.Error)
				}
			}
			j := runJob(t, s, "scope-1", c.mode, c.partial,
				[]json.RawMessage{object(node("a"), "test_node"), object(node("b"), "test_node")},
				[]json.RawMessage{object(link("ab"), "test_link", node("a"), node("b"))})
			if got := counts(j); got != c.job {
				t.Errorf("job: %s\nwant %s", got, c.job)
			}
			var states []string
			for _, o := range []struct{ name, scope, key string }{
				{"a", "scope-1", node("a")}, {"b", "scope-1", node("b")}, {"c", "scope-1", node("c")},
				{"a->b", "scope-1", link("ab")}, {"b->a", "scope-1", link("ba")},
				{"d", "scope-2", node("d")}, {"d->c", "scope-2", link("dc")},
			} {
				state := "live"
				obj, _, err := g.Get(account, graph.ObjectID(account, o.scope, o.key))
				switch {
				case errors.Is(err, graph.ErrNotFound):
					state = "none"
				case err != nil:
					t.Fatal(err)
				case obj.Deleted:
					state = "deleted"
				}
				states = append(states, o.name+" "+state)
			}
			if got := strings.Join(states, ", "); got != c.graph {
				t.Errorf("graph: %s\nwant  %s", got, c.graph)
			}
		})
	}
}

// checkChangedOnce fails unless the account's log after start changes
// each object once, with these numbers of creates, updates and deletes.
func checkChangedOnce(t *testing.T, r changelog.Reader, account string, start uint64, creates, updates, deletes int) {
	t.Helper()
	es, err := r.ReadLog(account, start, 1<<20, 1<<30)
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
	if ops[graph.OpCreate] != creates || ops[graph.OpUpdate] != updates || ops[graph.OpDelete] != deletes {
		t.Fatalf("log ops %v, want %d c, %d u, %d d", ops, creates, updates, deletes)
	}
}
