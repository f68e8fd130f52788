package syncjobstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// changed is how a step's result reads: "ok", or "job changed" for
// ErrJobChanged; any other error fails the test.
func changed(t *testing.T, err error) string {
	t.Helper()
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, syncjobs.ErrJobChanged):
		return "job changed"
	}
	t.Fatal(err)
	return ""
}

// stagedIDs lists the objects staged for a job, "-" when none.
func stagedIDs(t *testing.T, st syncjobs.Store, jobID string) string {
	t.Helper()
	var ids []string
	for _, kind := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
		err := st.ScanStaged(account, jobID, kind, "", func(id string, _ []byte) error {
			ids = append(ids, fmt.Sprintf("%c:%s", kind, id))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(ids) == 0 {
		return "-"
	}
	return strings.Join(ids, " ")
}

// testRevisions pins the conditional writes of a job's record, step by
// step: a write succeeds only from the revision of the stored record (0
// for a job without one), moves the record to the next revision and the
// caller's copy with it; a write from any other revision fails with
// ErrJobChanged and writes nothing, neither record nor objects nor
// staging, and leaves the copy as it was. SetEvents neither checks nor
// moves the revision. Revisions survive a restart.
func testRevisions(t *testing.T, open Opener) {
	g, st, reopen := open(t)
	// at[r] is the job as read at revision r.
	at := map[int64]syncjobs.Job{}
	from := func(r int64) *syncjobs.Job {
		j, ok := at[r]
		if !ok {
			t.Fatalf("the job was never read at revision %d", r)
		}
		return &j
	}
	var copyRev int64 // the revision of the last step's copy after its call
	put := func(j *syncjobs.Job) string {
		err := st.PutJob(j)
		copyRev = j.Revision
		return changed(t, err)
	}
	stageAt := func(r int64, id string) string {
		j := from(r)
		err := st.Stage(j, []syncjobs.StagedObject{{Kind: graph.KindEntity, ID: id, Data: []byte("d")}}, func(added []bool, _ syncjobs.Usage) error {
			for _, a := range added {
				if a {
					j.NumEntitiesUploaded++
				}
			}
			return nil
		})
		copyRev = j.Revision
		return changed(t, err)
	}
	applyAt := func(r int64) string {
		j := from(r)
		j.Status, j.Progress = syncjobs.StatusFinalizingEntities, fmt.Sprintf("e:from-r%d", r)
		_, err := st.Apply(j, func(tx graph.Txn) error {
			if _, _, err := tx.Upsert(thing("thing-key-1")); err != nil {
				return err
			}
			j.Add(tx.Counts())
			return nil
		})
		copyRev = j.Revision
		return changed(t, err)
	}
	finishAt := func(r int64, status syncjobs.Status) string {
		j := from(r)
		j.Status, j.Progress = status, ""
		err := st.Finish(j)
		copyRev = j.Revision
		return changed(t, err)
	}
	steps := []struct {
		name string
		do   func() string
	}{
		{"create at revision 2", func() string {
			j := newJob("job-1", syncjobs.StatusAwaitingUploads)
			j.Revision = 2
			return put(j)
		}},
		{"create at revision 0", func() string { return put(newJob("job-1", syncjobs.StatusAwaitingUploads)) }},
		{"create again at revision 0", func() string { return put(newJob("job-1", syncjobs.StatusAborted)) }},
		{"stage x from r1", func() string { return stageAt(1, "x") }},
		{"stage y from r1", func() string { return stageAt(1, "y") }},
		{"set events to 3", func() string { return changed(t, st.SetEvents(account, "job-1", 3)) }},
		{"write FINALIZE_PENDING from r1", func() string {
			j := from(1)
			j.Status = syncjobs.StatusFinalizePending
			return put(j)
		}},
		{"apply a chunk from r1", func() string { return applyAt(1) }},
		{"abort from r1", func() string { return finishAt(1, syncjobs.StatusAborted) }},
		{"write FINALIZE_PENDING from r2", func() string {
			j := from(2)
			j.Status = syncjobs.StatusFinalizePending
			return put(j)
		}},
		{"reopen", func() string {
			g, st = reopen()
			return "ok"
		}},
		{"apply a chunk from r3", func() string { return applyAt(3) }},
		{"apply a chunk from r3 again", func() string { return applyAt(3) }},
		{"finish from r3", func() string { return finishAt(3, syncjobs.StatusFinished) }},
		{"finish from r4", func() string { return finishAt(4, syncjobs.StatusFinished) }},
	}
	var log strings.Builder
	for _, s := range steps {
		copyRev = -1
		res := s.do()
		fmt.Fprintf(&log, "%s: %s", s.name, res)
		if copyRev >= 0 {
			fmt.Fprintf(&log, ", copy at r%d", copyRev)
		}
		j, err := st.Job(account, "job-1")
		switch {
		case errors.Is(err, syncjobs.ErrJobNotFound):
			log.WriteString("; no job\n")
			continue
		case err != nil:
			t.Fatal(err)
		}
		at[j.Revision] = j
		fmt.Fprintf(&log, "; job r%d %s %q uploaded %d created %d events %d; thing-key-1 %s; staged %s\n",
			j.Revision, j.Status, j.Progress, j.NumEntitiesUploaded, j.NumEntitiesCreated, j.NumEvents,
			objectState(t, g, graph.ObjectID(account, scope, "thing-key-1")), stagedIDs(t, st, "job-1"))
	}
	want := `create at revision 2: job changed, copy at r2; no job
create at revision 0: ok, copy at r1; job r1 AWAITING_UPLOADS "" uploaded 0 created 0 events 0; thing-key-1 none; staged -
create again at revision 0: job changed, copy at r0; job r1 AWAITING_UPLOADS "" uploaded 0 created 0 events 0; thing-key-1 none; staged -
stage x from r1: ok, copy at r2; job r2 AWAITING_UPLOADS "" uploaded 1 created 0 events 0; thing-key-1 none; staged e:x
stage y from r1: job changed, copy at r1; job r2 AWAITING_UPLOADS "" uploaded 1 created 0 events 0; thing-key-1 none; staged e:x
set events to 3: ok; job r2 AWAITING_UPLOADS "" uploaded 1 created 0 events 3; thing-key-1 none; staged e:x
write FINALIZE_PENDING from r1: job changed, copy at r1; job r2 AWAITING_UPLOADS "" uploaded 1 created 0 events 3; thing-key-1 none; staged e:x
apply a chunk from r1: job changed, copy at r1; job r2 AWAITING_UPLOADS "" uploaded 1 created 0 events 3; thing-key-1 none; staged e:x
abort from r1: job changed, copy at r1; job r2 AWAITING_UPLOADS "" uploaded 1 created 0 events 3; thing-key-1 none; staged e:x
write FINALIZE_PENDING from r2: ok, copy at r3; job r3 FINALIZE_PENDING "" uploaded 1 created 0 events 3; thing-key-1 none; staged e:x
reopen: ok; job r3 FINALIZE_PENDING "" uploaded 1 created 0 events 3; thing-key-1 none; staged e:x
apply a chunk from r3: ok, copy at r4; job r4 FINALIZING_ENTITIES "e:from-r3" uploaded 1 created 1 events 3; thing-key-1 v1; staged e:x
apply a chunk from r3 again: job changed, copy at r3; job r4 FINALIZING_ENTITIES "e:from-r3" uploaded 1 created 1 events 3; thing-key-1 v1; staged e:x
finish from r3: job changed, copy at r3; job r4 FINALIZING_ENTITIES "e:from-r3" uploaded 1 created 1 events 3; thing-key-1 v1; staged e:x
finish from r4: ok, copy at r5; job r5 FINISHED "" uploaded 1 created 1 events 3; thing-key-1 v1; staged -
`
	if got := log.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// testRevisionRace: writers that read a job at one revision and write it
// at once, each its own way (Stage, PutJob, Finish, Apply), through one
// Store: exactly one succeeds, round after round, and the job holds what
// it wrote and nothing of the others.
func testRevisionRace(t *testing.T, open Opener) {
	g, st, _ := open(t)
	writers := []struct {
		name  string
		write func(j *syncjobs.Job, round int) error
	}{
		{"stage", func(j *syncjobs.Job, round int) error {
			return st.Stage(j, []syncjobs.StagedObject{{Kind: graph.KindEntity, ID: "staged", Data: []byte("d")}}, func([]bool, syncjobs.Usage) error { return nil })
		}},
		{"put", func(j *syncjobs.Job, round int) error { return st.PutJob(j) }},
		{"finish", func(j *syncjobs.Job, round int) error {
			j.Status = syncjobs.StatusAborted
			return st.Finish(j)
		}},
		{"apply", func(j *syncjobs.Job, round int) error {
			_, err := st.Apply(j, func(tx graph.Txn) error {
				_, _, err := tx.Upsert(thing(fmt.Sprintf("thing-key-%d", round)))
				return err
			})
			return err
		}},
	}
	for round := range 10 {
		id := fmt.Sprintf("job-%d", round)
		j := newJob(id, syncjobs.StatusAwaitingUploads)
		if err := st.PutJob(j); err != nil {
			t.Fatal(err)
		}
		if got := stage(st, j, "e:base:b"); got != "added e:base" {
			t.Fatal(got)
		}
		read := mustJob(t, st, account, id)
		errs := make([]error, len(writers))
		var wg sync.WaitGroup
		ready := make(chan struct{})
		for i, w := range writers {
			c := read
			c.AbortReason = w.name
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-ready
				errs[i] = w.write(&c, round)
			}()
		}
		close(ready)
		wg.Wait()
		var won []string
		for i, err := range errs {
			if changed(t, err) == "ok" {
				won = append(won, writers[i].name)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %v wrote the job read at r%d, want exactly one", round, won, read.Revision)
		}
		got := mustJob(t, st, account, id)
		staging := "staged " + stagedIDs(t, st, id)
		thing := "thing " + objectState(t, g, graph.ObjectID(account, scope, fmt.Sprintf("thing-key-%d", round)))
		want := map[string]string{
			"stage":  "stage r3 AWAITING_UPLOADS; staged e:base e:staged; thing none",
			"put":    "put r3 AWAITING_UPLOADS; staged e:base; thing none",
			"finish": "finish r3 ABORTED; staged -; thing none",
			"apply":  "apply r3 AWAITING_UPLOADS; staged e:base; thing v1",
		}[won[0]]
		if g := fmt.Sprintf("%s r%d %s; %s; %s", got.AbortReason, got.Revision, got.Status, staging, thing); g != want {
			t.Fatalf("round %d, won by %s: %s\nwant %s", round, won[0], g, want)
		}
	}
}

// interposer wraps a Store: the next call of one of its writes runs
// another request first, once, as a request of another node does when it
// lands between this request's read of a job and its write.
type interposer struct {
	syncjobs.Store

	mu     sync.Mutex
	method string // "PutJob", "Stage" or "Finish"
	before func()
}

func (i *interposer) arm(method string, before func()) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.method, i.before = method, before
}

func (i *interposer) fire(method string) {
	i.mu.Lock()
	var before func()
	if i.method == method {
		before, i.method, i.before = i.before, "", nil
	}
	i.mu.Unlock()
	if before != nil {
		before()
	}
}

func (i *interposer) PutJob(j *syncjobs.Job) error {
	i.fire("PutJob")
	return i.Store.PutJob(j)
}

func (i *interposer) Stage(j *syncjobs.Job, objs []syncjobs.StagedObject, fn func([]bool, syncjobs.Usage) error) error {
	i.fire("Stage")
	return i.Store.Stage(j, objs, fn)
}

func (i *interposer) Finish(j *syncjobs.Job) error {
	i.fire("Finish")
	return i.Store.Finish(j)
}

// testConflicts pins what the Service answers when another request, as
// from another node sharing the Store, changes a job between a request's
// read of it and its write: two Services over one backend, the first's
// Store running the second's request just before the first's write. The
// first request then finds the job changed and decides again on the job
// the other left, as it would have had it come second: an upload, abort
// or finalize of a job no longer awaiting uploads is refused and changes
// nothing; one of a job that still awaits uploads goes through, and
// counts what the other added.
func testConflicts(t *testing.T, open Opener) {
	g, st, _ := open(t)
	ip := &interposer{Store: st}
	s1 := openService(t, g, ip)
	defer s1.Close()
	s2 := openService(t, g, st)
	defer s2.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type request func(s *syncjobs.Service, id string, n int) (syncjobs.Job, error)
	keys := func(n, from, to int) []json.RawMessage {
		var out []json.RawMessage
		for i := from; i < to; i++ {
			out = append(out, json.RawMessage(fmt.Sprintf(`{"_key":"conflict-key-%d-%d","_type":"test_thing","_class":"Thing"}`, n, i)))
		}
		return out
	}
	upload := func(from, to int) request {
		return func(s *syncjobs.Service, id string, n int) (syncjobs.Job, error) {
			return s.Upload(account, id, keys(n, from, to), nil)
		}
	}
	abort := func(s *syncjobs.Service, id string, _ int) (syncjobs.Job, error) {
		return s.Abort(account, id, "conflict")
	}
	finalize := func(s *syncjobs.Service, id string, _ int) (syncjobs.Job, error) {
		return s.Finalize(ctx, account, id, nil)
	}
	answer := func(id string, j syncjobs.Job, err error) string {
		var je *syncjobs.Error
		switch {
		case err == nil:
			return fmt.Sprintf("ok, %s uploaded %d", j.Status, j.NumEntitiesUploaded)
		case errors.As(err, &je):
			return fmt.Sprintf("%d %s: %s", je.Status, je.Code, strings.ReplaceAll(je.Message, id, "J"))
		}
		t.Fatal(err)
		return ""
	}
	cases := []struct {
		name    string
		method  string // the first request's write that the other precedes
		first   request
		other   request
		finally request // run on the first Service once both answered, or nil
		want    string
	}{{
		name: "an upload after a finalize", method: "Stage", first: upload(3, 6), other: finalize,
		want: `other: ok, FINISHED uploaded 3
first: 400 JOB_NOT_AWAITING_UPLOADS: job J is FINISHED, not AWAITING_UPLOADS: start a new job to upload more data
job: FINISHED; entities uploaded 3 created 3 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}, {
		name: "an upload after an abort", method: "Stage", first: upload(3, 6), other: abort,
		want: `other: ok, ABORTED uploaded 3
first: 400 JOB_NOT_AWAITING_UPLOADS: job J is ABORTED, not AWAITING_UPLOADS: start a new job to upload more data
job: ABORTED; entities uploaded 3 created 0 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}, {
		name: "an upload after an upload", method: "Stage", first: upload(3, 6), other: upload(6, 9), finally: finalize,
		want: `other: ok, AWAITING_UPLOADS uploaded 6
first: ok, AWAITING_UPLOADS uploaded 9
finally: ok, FINISHED uploaded 9
job: FINISHED; entities uploaded 9 created 9 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}, {
		name: "an abort after a finalize", method: "Finish", first: abort, other: finalize,
		want: `other: ok, FINISHED uploaded 3
first: 400 JOB_NOT_AWAITING_UPLOADS: job J is FINISHED, not AWAITING_UPLOADS: start a new job to upload more data
job: FINISHED; entities uploaded 3 created 3 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}, {
		name: "an abort after an upload", method: "Finish", first: abort, other: upload(3, 6),
		want: `other: ok, AWAITING_UPLOADS uploaded 6
first: ok, ABORTED uploaded 6
job: ABORTED; entities uploaded 6 created 0 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}, {
		name: "a finalize after an abort", method: "PutJob", first: finalize, other: abort,
		want: `other: ok, ABORTED uploaded 3
first: 400 JOB_NOT_AWAITING_UPLOADS: job J is ABORTED, not AWAITING_UPLOADS: start a new job to upload more data
job: ABORTED; entities uploaded 3 created 0 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}, {
		name: "a finalize after an upload", method: "PutJob", first: finalize, other: upload(3, 6),
		want: `other: ok, AWAITING_UPLOADS uploaded 6
first: ok, FINISHED uploaded 6
job: FINISHED; entities uploaded 6 created 6 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}, {
		name: "a finalize after a finalize", method: "PutJob", first: finalize, other: finalize,
		want: `other: ok, FINISHED uploaded 3
first: ok, FINISHED uploaded 3
job: FINISHED; entities uploaded 3 created 3 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0; staged -`,
	}}
	for n, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j, err := s1.Create(account, syncjobs.CreateRequest{Source: "api", Scope: fmt.Sprintf("conflict-%d", n), SyncMode: syncjobs.ModePatch})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s1.Upload(account, j.ID, keys(n, 0, 3), nil); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			ip.arm(c.method, func() {
				oj, err := c.other(s2, j.ID, n)
				fmt.Fprintf(&log, "other: %s\n", answer(j.ID, oj, err))
			})
			fj, err := c.first(s1, j.ID, n)
			fmt.Fprintf(&log, "first: %s\n", answer(j.ID, fj, err))
			if c.finally != nil {
				lj, err := c.finally(s1, j.ID, n)
				fmt.Fprintf(&log, "finally: %s\n", answer(j.ID, lj, err))
			}
			ip.arm("", nil)
			got := waitJob(t, s1, j.ID)
			waitJob(t, s2, j.ID)
			fmt.Fprintf(&log, "job: %s; staged %s", counts(got), stagedIDs(t, st, j.ID))
			if g := log.String(); g != c.want {
				t.Fatalf("got:\n%s\nwant:\n%s", g, c.want)
			}
		})
	}
}
