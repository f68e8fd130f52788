package syncjobstest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Reopen closes a backend and opens it again from what it holds durably,
// as a restarted process does, and returns the new instance; the old one is
// not used again.
type Reopen func() (graph.Graph, syncjobs.Store)

// Opener opens a new, empty backend for one test: its graph and the Store
// of its jobs, over the same storage. The backend is closed when the test
// ends (t.Cleanup), whichever instance reopen last returned.
type Opener func(t *testing.T) (graph.Graph, syncjobs.Store, Reopen)

// Run runs the suite against the backend open opens.
func Run(t *testing.T, open Opener) {
	t.Run("JobRecords", func(t *testing.T) { testJobRecords(t, open) })
	t.Run("Stage", func(t *testing.T) { testStage(t, open) })
	t.Run("StagedOrder", func(t *testing.T) { testStagedOrder(t, open) })
	t.Run("Apply", func(t *testing.T) { testApply(t, open) })
	t.Run("Revisions", func(t *testing.T) { testRevisions(t, open) })
	t.Run("RevisionRace", func(t *testing.T) { testRevisionRace(t, open) })
	t.Run("UnfinishedAfterReopen", func(t *testing.T) { testUnfinished(t, open) })
	t.Run("ResumeAfterCrash", func(t *testing.T) { testResumeAfterCrash(t, open) })
	t.Run("DiffDeletes", func(t *testing.T) { testDiffDeletes(t, open) })
	t.Run("Conflicts", func(t *testing.T) { testConflicts(t, open) })
	t.Run("Fairness", func(t *testing.T) { testFairness(t, open) })
	t.Run("Quotas", func(t *testing.T) { testQuotas(t, open) })
	t.Run("ListJobs", func(t *testing.T) { testListJobs(t, open) })
}

const (
	account = "acct"
	scope   = "scope-1"
)

func newJob(id string, status syncjobs.Status) *syncjobs.Job {
	return &syncjobs.Job{ID: id, AccountID: account, Source: "api", Scope: scope, SyncMode: syncjobs.ModeDiff, Status: status}
}

func mustJob(t *testing.T, st syncjobs.Store, account, id string) syncjobs.Job {
	t.Helper()
	j, err := st.Job(account, id)
	if err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	return j
}

// testJobRecords pins the job record and the event count: a record reads
// back as written, progress included; the event count is kept apart from
// it; jobs belong to their account.
func testJobRecords(t *testing.T, open Opener) {
	_, st, _ := open(t)
	if _, err := st.Job(account, "job-1"); !errors.Is(err, syncjobs.ErrJobNotFound) {
		t.Fatalf("a job never written: err %v, want ErrJobNotFound", err)
	}
	j := newJob("job-1", syncjobs.StatusFinalizingEntities)
	j.NumEntitiesUploaded, j.Progress = 12, "e:some-id"
	j.PartialDatasets = &syncjobs.PartialDatasets{Types: []string{"test_thing"}}
	if err := st.PutJob(j); err != nil {
		t.Fatal(err)
	}
	got := mustJob(t, st, account, "job-1")
	if !reflect.DeepEqual(got, *j) {
		t.Fatalf("job read back:\n%+v\nwant\n%+v", got, *j)
	}
	if _, err := st.Job("other-acct", "job-1"); !errors.Is(err, syncjobs.ErrJobNotFound) {
		t.Fatalf("the job from another account: err %v, want ErrJobNotFound", err)
	}

	// The event count is the one SetEvents wrote, whatever the record holds,
	// and writing the record leaves it.
	steps := []struct {
		do   func() error
		want int
	}{
		{func() error { return nil }, 0},
		{func() error { return st.SetEvents(account, "job-1", 3) }, 3},
		{func() error { j.NumEvents = 40; return st.PutJob(j) }, 3},
		{func() error { return st.SetEvents(account, "job-1", 5) }, 5},
		{func() error { return st.Finish(j) }, 5},
	}
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if got := mustJob(t, st, account, "job-1").NumEvents; got != s.want {
			t.Fatalf("step %d: NumEvents %d, want %d", i, got, s.want)
		}
	}
}

// stage calls Stage on a job with objects written "<e|r>:<id>:<data>",
// separated by spaces; a leading "!" makes fn fail. Like the Service, fn
// counts the objects added on the job. It returns what happened.
func stage(st syncjobs.Store, j *syncjobs.Job, call string) string {
	fail := strings.HasPrefix(call, "!")
	var objs []syncjobs.StagedObject
	for _, f := range strings.Fields(strings.TrimPrefix(call, "!")) {
		k, rest, _ := strings.Cut(f, ":")
		id, data, _ := strings.Cut(rest, ":")
		kind := graph.KindEntity
		if k == "r" {
			kind = graph.KindRelationship
		}
		objs = append(objs, syncjobs.StagedObject{Kind: kind, ID: id, Data: []byte(data)})
	}
	var added []string
	err := st.Stage(j, objs, func(a []bool, _ syncjobs.Usage) error {
		for i, ok := range a {
			if !ok {
				continue
			}
			added = append(added, fmt.Sprintf("%c:%s", objs[i].Kind, objs[i].ID))
			if objs[i].Kind == graph.KindEntity {
				j.NumEntitiesUploaded++
			} else {
				j.NumRelationshipsUploaded++
			}
		}
		if fail {
			return errors.New("fn failed")
		}
		return nil
	})
	var dup *syncjobs.DuplicateError
	switch {
	case errors.As(err, &dup):
		return fmt.Sprintf("duplicate: object %d, staged as %s", dup.Index, dup.Kind)
	case err != nil:
		return "error: " + err.Error()
	case len(added) == 0:
		return "added none"
	}
	return "added " + strings.Join(added, " ")
}

// dumpStaging lists a job's staging and its record's upload counts.
func dumpStaging(t *testing.T, st syncjobs.Store, jobID string) string {
	t.Helper()
	var b strings.Builder
	for _, kind := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
		err := st.ScanStaged(account, jobID, kind, "", func(id string, data []byte) error {
			fmt.Fprintf(&b, "%s staged %c:%s:%s\n", jobID, kind, id, data)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	j := mustJob(t, st, account, jobID)
	fmt.Fprintf(&b, "%s uploaded %d entities, %d relationships\n", jobID, j.NumEntitiesUploaded, j.NumRelationshipsUploaded)
	return b.String()
}

// testStage pins staging: which objects a call adds, which it skips as
// retried, which it refuses as duplicates, and that a refused call, or one
// whose fn fails, writes nothing (neither objects nor the record).
func testStage(t *testing.T, open Opener) {
	cases := []struct {
		name  string
		calls []string // "<job>: <objects>"
		want  string
	}{{
		name:  "new objects are added with the record",
		calls: []string{"job-1: e:id-1:a r:id-2:b e:id-3:c"},
		want: `job-1: added e:id-1 r:id-2 e:id-3
job-1 staged e:id-1:a
job-1 staged e:id-3:c
job-1 staged r:id-2:b
job-1 uploaded 2 entities, 1 relationships
`,
	}, {
		name:  "a retried upload is skipped",
		calls: []string{"job-1: e:id-1:a r:id-2:b", "job-1: r:id-2:b e:id-1:a e:id-3:c"},
		want: `job-1: added e:id-1 r:id-2
job-1: added e:id-3
job-1 staged e:id-1:a
job-1 staged e:id-3:c
job-1 staged r:id-2:b
job-1 uploaded 2 entities, 1 relationships
`,
	}, {
		name:  "other content under a staged id is a duplicate and writes nothing",
		calls: []string{"job-1: e:id-1:a", "job-1: e:id-4:d e:id-1:changed"},
		want: `job-1: added e:id-1
job-1: duplicate: object 1, staged as entity
job-1 staged e:id-1:a
job-1 uploaded 1 entities, 0 relationships
`,
	}, {
		name:  "the other kind under a staged id is a duplicate",
		calls: []string{"job-1: r:id-1:a", "job-1: e:id-1:a"},
		want: `job-1: added r:id-1
job-1: duplicate: object 0, staged as relationship
job-1 staged r:id-1:a
job-1 uploaded 0 entities, 1 relationships
`,
	}, {
		name:  "within one call, a repeat is skipped and other content is a duplicate",
		calls: []string{"job-1: e:id-1:a e:id-1:a", "job-1: e:id-2:b r:id-3:c e:id-2:other"},
		want: `job-1: added e:id-1
job-1: duplicate: object 2, staged as entity
job-1 staged e:id-1:a
job-1 uploaded 1 entities, 0 relationships
`,
	}, {
		name:  "an error from fn writes nothing",
		calls: []string{"job-1: e:id-1:a", "job-1: !e:id-2:b"},
		want: `job-1: added e:id-1
job-1: error: fn failed
job-1 staged e:id-1:a
job-1 uploaded 1 entities, 0 relationships
`,
	}, {
		name:  "staging is per job",
		calls: []string{"job-1: e:id-1:a", "job-2: e:id-1:other r:id-2:b"},
		want: `job-1: added e:id-1
job-2: added e:id-1 r:id-2
job-1 staged e:id-1:a
job-1 uploaded 1 entities, 0 relationships
job-2 staged e:id-1:other
job-2 staged r:id-2:b
job-2 uploaded 1 entities, 1 relationships
`,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, st, _ := open(t)
			jobs := map[string]*syncjobs.Job{}
			var ids []string
			var b strings.Builder
			for _, call := range c.calls {
				id, objs, _ := strings.Cut(call, ": ")
				j := jobs[id]
				if j == nil {
					j = newJob(id, syncjobs.StatusAwaitingUploads)
					if err := st.PutJob(j); err != nil {
						t.Fatal(err)
					}
					jobs[id] = j
					ids = append(ids, id)
				}
				// The caller's copy changes in fn even when nothing is
				// written: each call starts from the stored record, as the
				// Service's do.
				*j = mustJob(t, st, account, id)
				fmt.Fprintf(&b, "%s: %s\n", id, stage(st, j, objs))
			}
			for _, id := range ids {
				b.WriteString(dumpStaging(t, st, id))
			}
			if got := b.String(); got != c.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// testStagedOrder pins reading staged objects: in id order whatever the
// order of staging, after a position, one kind at a time, one object by
// kind and id; Finish drops the job's staging and no other job's.
func testStagedOrder(t *testing.T, open Opener) {
	_, st, _ := open(t)
	j1, j2 := newJob("job-1", syncjobs.StatusAwaitingUploads), newJob("job-2", syncjobs.StatusAwaitingUploads)
	for _, call := range []struct {
		j    *syncjobs.Job
		objs string
	}{
		{j1, "e:id-07:g e:id-02:b r:id-05:e"},
		{j1, "e:id-10:j e:id-01:a r:id-03:c e:id-04:d"},
		{j2, "e:id-06:f"},
		{j1, "r:id-09:i e:id-08:h"},
	} {
		if got := stage(st, call.j, call.objs); !strings.HasPrefix(got, "added e") && !strings.HasPrefix(got, "added r") {
			t.Fatalf("stage %s: %s", call.objs, got)
		}
	}
	scan := func(jobID string, kind graph.Kind, after string) string {
		var got []string
		err := st.ScanStaged(account, jobID, kind, after, func(id string, data []byte) error {
			got = append(got, id+"="+string(data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, " ")
	}
	for _, c := range []struct {
		job   string
		kind  graph.Kind
		after string
		want  string
	}{
		{"job-1", graph.KindEntity, "", "id-01=a id-02=b id-04=d id-07=g id-08=h id-10=j"},
		{"job-1", graph.KindEntity, "id-04", "id-07=g id-08=h id-10=j"},
		{"job-1", graph.KindEntity, "id-05", "id-07=g id-08=h id-10=j"},
		{"job-1", graph.KindEntity, "id-10", ""},
		{"job-1", graph.KindRelationship, "", "id-03=c id-05=e id-09=i"},
		{"job-1", graph.KindRelationship, "id-03", "id-05=e id-09=i"},
		{"job-2", graph.KindEntity, "", "id-06=f"},
		{"job-3", graph.KindEntity, "", ""},
	} {
		if got := scan(c.job, c.kind, c.after); got != c.want {
			t.Errorf("ScanStaged(%s, %s, %q) = %q, want %q", c.job, c.kind, c.after, got, c.want)
		}
	}

	// An error from fn stops the scan and is returned.
	stop := errors.New("stop")
	n := 0
	err := st.ScanStaged(account, "job-1", graph.KindEntity, "", func(string, []byte) error {
		if n++; n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("ScanStaged with fn failing at the second object: err %v after %d calls, want stop after 2", err, n)
	}

	for _, c := range []struct {
		job  string
		kind graph.Kind
		id   string
		want string // "-" when none
	}{
		{"job-1", graph.KindEntity, "id-04", "d"},
		{"job-1", graph.KindRelationship, "id-04", "-"},
		{"job-1", graph.KindRelationship, "id-09", "i"},
		{"job-1", graph.KindEntity, "id-06", "-"},
		{"job-2", graph.KindEntity, "id-06", "f"},
	} {
		data, ok, err := st.Staged(account, c.job, c.kind, c.id)
		got := string(data)
		if !ok {
			got = "-"
		}
		if err != nil || got != c.want {
			t.Errorf("Staged(%s, %s, %s) = %q, %v, want %q", c.job, c.kind, c.id, got, err, c.want)
		}
	}

	j1.Status = syncjobs.StatusFinished
	if err := st.Finish(j1); err != nil {
		t.Fatal(err)
	}
	if got := mustJob(t, st, account, "job-1").Status; got != syncjobs.StatusFinished {
		t.Errorf("finished job is %s", got)
	}
	for _, kind := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
		if got := scan("job-1", kind, ""); got != "" {
			t.Errorf("job-1's %s staging after Finish: %s", kind, got)
		}
	}
	if _, ok, _ := st.Staged(account, "job-1", graph.KindEntity, "id-04"); ok {
		t.Error("Staged finds an object of a finished job")
	}
	if got := scan("job-2", graph.KindEntity, ""); got != "id-06=f" {
		t.Errorf("job-2's staging after job-1 finished: %q", got)
	}
}

func thing(key string) *graph.Input {
	return &graph.Input{Kind: graph.KindEntity, Key: key, Type: "test_thing", Class: []string{"Thing"}, Scope: scope, Source: "api"}
}

// testApply pins the finalize chunk: the transaction's changes and the
// job's record are written together, or neither is; they survive a restart.
func testApply(t *testing.T, open Opener) {
	g, st, reopen := open(t)
	j := newJob("job-1", syncjobs.StatusFinalizingEntities)
	j.Progress = "e:"
	if err := st.PutJob(j); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("chunk failed")
	steps := []struct {
		name     string
		fn       func(graph.Txn) error
		progress string // what fn sets
		wantErr  error
	}{
		{"a change and the record", func(tx graph.Txn) error {
			_, _, err := tx.Upsert(thing("thing-key-1"))
			return err
		}, "e:1", nil},
		{"an error from fn writes neither", func(tx graph.Txn) error {
			if _, _, err := tx.Upsert(thing("thing-key-2")); err != nil {
				return err
			}
			return failed
		}, "e:2", failed},
		{"no object changed, the record still is", func(tx graph.Txn) error {
			_, _, err := tx.Upsert(thing("thing-key-1"))
			return err
		}, "e:3", nil},
		{"a delete and the record", func(tx graph.Txn) error {
			_, err := tx.Delete(graph.ObjectID(account, scope, "thing-key-1"))
			return err
		}, "dr:4", nil},
	}
	var log strings.Builder
	for _, s := range steps {
		next := *j
		c, err := st.Apply(&next, func(tx graph.Txn) error {
			if err := s.fn(tx); err != nil {
				return err
			}
			next.Add(tx.Counts())
			next.Progress = s.progress
			return nil
		})
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		if err == nil {
			*j = next
		}
		fmt.Fprintf(&log, "%s: changes %d; %s\n", s.name, c.Changes, describe(t, g, st))
	}
	g, st = reopen()
	fmt.Fprintf(&log, "after reopen: %s\n", describe(t, g, st))
	want := `a change and the record: changes 1; progress e:1, created 1 deleted 0; thing-key-1 v1, thing-key-2 none
an error from fn writes neither: changes 0; progress e:1, created 1 deleted 0; thing-key-1 v1, thing-key-2 none
no object changed, the record still is: changes 0; progress e:3, created 1 deleted 0; thing-key-1 v1, thing-key-2 none
a delete and the record: changes 1; progress dr:4, created 1 deleted 1; thing-key-1 v2 deleted, thing-key-2 none
after reopen: progress dr:4, created 1 deleted 1; thing-key-1 v2 deleted, thing-key-2 none
`
	if got := log.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// describe prints job-1's record and the things of testApply.
func describe(t *testing.T, g graph.Graph, st syncjobs.Store) string {
	t.Helper()
	j := mustJob(t, st, account, "job-1")
	s := fmt.Sprintf("progress %s, created %d deleted %d;", j.Progress, j.NumEntitiesCreated, j.NumEntitiesDeleted)
	for i, key := range []string{"thing-key-1", "thing-key-2"} {
		if i > 0 {
			s += ","
		}
		s += " " + key + " " + objectState(t, g, graph.ObjectID(account, scope, key))
	}
	return s
}

// objectState is an object's version and whether it is deleted, or "none".
func objectState(t *testing.T, g graph.Graph, id string) string {
	t.Helper()
	o, _, err := g.Get(account, id)
	if errors.Is(err, graph.ErrNotFound) {
		return "none"
	}
	if err != nil {
		t.Fatal(err)
	}
	if o.Deleted {
		return fmt.Sprintf("v%d deleted", o.Version)
	}
	return fmt.Sprintf("v%d", o.Version)
}

// testUnfinished pins Unfinished: after a restart it lists exactly the
// jobs, of every account, being finalized, with their progress.
func testUnfinished(t *testing.T, open Opener) {
	_, st, reopen := open(t)
	statuses := []syncjobs.Status{
		syncjobs.StatusAwaitingUploads, syncjobs.StatusFinalizePending, syncjobs.StatusFinalizingEntities,
		syncjobs.StatusFinalizingRelationships, syncjobs.StatusAborted, syncjobs.StatusFinished, syncjobs.StatusErrorBadData,
	}
	for _, acct := range []string{"acct-a", "acct-b"} {
		for i, s := range statuses {
			j := newJob(fmt.Sprintf("job-%d", i), s)
			j.AccountID = acct
			if s.Finalizing() {
				j.Progress = fmt.Sprintf("e:%s-%d", acct, i)
			}
			if err := st.PutJob(j); err != nil {
				t.Fatal(err)
			}
		}
	}
	_, st = reopen()
	jobs, err := st.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, j := range jobs {
		got = append(got, fmt.Sprintf("%s/%s %s %s", j.AccountID, j.ID, j.Status, j.Progress))
	}
	slices.Sort(got)
	want := []string{
		"acct-a/job-1 FINALIZE_PENDING e:acct-a-1",
		"acct-a/job-2 FINALIZING_ENTITIES e:acct-a-2",
		"acct-a/job-3 FINALIZING_RELATIONSHIPS e:acct-a-3",
		"acct-b/job-1 FINALIZE_PENDING e:acct-b-1",
		"acct-b/job-2 FINALIZING_ENTITIES e:acct-b-2",
		"acct-b/job-3 FINALIZING_RELATIONSHIPS e:acct-b-3",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("unfinished after reopen:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
