package syncjobstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// raceRounds is how many times testRaces races each pair of requests.
const raceRounds = 50

// notAwaitingRE is the message of the answer JOB_NOT_AWAITING_UPLOADS
// (with the job's id in place of %s) to a request that lost to a finalize:
// the job it finds is being finalized or finished.
const notAwaitingRE = `^job %s is (FINALIZE_PENDING|FINALIZING_ENTITIES|FINALIZING_RELATIONSHIPS|FINISHED), not AWAITING_UPLOADS: start a new job to upload more data$`

// testRaces: two live nodes, each a Service on a Store of its own, race
// two requests that change one job, round after round, started together:
//
//   - an upload on node A against a finalize on node B. Either the upload
//     comes first, and the finished job holds and counts its objects, or
//     the finalize does, and the upload is answered 400
//     JOB_NOT_AWAITING_UPLOADS and stages nothing. The finalize succeeds
//     either way.
//   - an abort on node A against a finalize on node B. Exactly one
//     succeeds; the other is answered 400 JOB_NOT_AWAITING_UPLOADS naming
//     the state the winner left. An aborted job applied nothing.
//
// Each round the job ends FINISHED or ABORTED (never back in
// AWAITING_UPLOADS), its counts are those of what was staged before the
// finalize, the graph holds exactly the objects counted, and its staging
// is dropped.
func testRaces(t *testing.T, open ClusterOpener) {
	c := open(t)
	c.SetLive("node-a", true)
	c.SetLive("node-b", true)
	gA, stA := c.Node()
	gB, stB := c.Node()
	sa := openNode(t, gA, stA, "node-a")
	defer sa.Close()
	sb := openNode(t, gB, stB, "node-b")
	defer sb.Close()

	keys := func(round, from, to int) []json.RawMessage {
		var out []json.RawMessage
		for i := from; i < to; i++ {
			out = append(out, json.RawMessage(fmt.Sprintf(`{"_key":"race-key-%03d-%d","_type":"test_thing","_class":"Thing"}`, round, i)))
		}
		return out
	}
	// start creates a PATCH job on node A, of its own scope, holding
	// three entities.
	start := func(t *testing.T, race string, round int) syncjobs.Job {
		t.Helper()
		j, err := sa.Create(account, syncjobs.CreateRequest{Source: "api", Scope: race, SyncMode: syncjobs.ModePatch})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sa.Upload(account, j.ID, keys(round, 0, 3), nil); err != nil {
			t.Fatal(err)
		}
		return j
	}
	// together runs a on node A and b on node B at once.
	together := func(a, b func() error) (errA, errB error) {
		var wg sync.WaitGroup
		ready := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-ready; errA = a() }()
		go func() { defer wg.Done(); <-ready; errB = b() }()
		close(ready)
		wg.Wait()
		return errA, errB
	}
	// settle waits until the job is no longer being finalized and checks
	// the graph and the staging against it: entities 0 to n of the round
	// are live in the scope, the others do not exist, nothing is staged.
	settle := func(t *testing.T, race string, round int, id string, n int) syncjobs.Job {
		t.Helper()
		var j syncjobs.Job
		within(t, "the job leaves finalization", func() bool {
			var err error
			if j, err = sb.Get(account, id); err != nil {
				t.Fatal(err)
			}
			return !j.Status.Finalizing()
		})
		for i := range 6 {
			want := "none"
			if i < n {
				want = "entity v1 live"
			}
			if got := objectSummary(t, gB, race, fmt.Sprintf("race-key-%03d-%d", round, i)); got != want {
				t.Errorf("round %d: entity %d is %s, want %s (job %s)", round, i, got, want, counts(j))
			}
		}
		for _, kind := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
			err := stB.ScanStaged(account, id, kind, "", func(oid string, _ []byte) error {
				return fmt.Errorf("%s %s staged for a job that is %s", kind, oid, j.Status)
			})
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
		return j
	}
	// lost checks a loser's answer: 400 JOB_NOT_AWAITING_UPLOADS, its
	// message matching re.
	lost := func(t *testing.T, round int, what string, err error, re string) {
		t.Helper()
		var je *syncjobs.Error
		if !errors.As(err, &je) || je.Status != 400 || je.Code != "JOB_NOT_AWAITING_UPLOADS" || !regexp.MustCompile(re).MatchString(je.Message) {
			t.Errorf("round %d: the losing %s answered %v, want 400 JOB_NOT_AWAITING_UPLOADS matching %s", round, what, err, re)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t.Run("UploadFinalize", func(t *testing.T) {
		wins := map[string]int{}
		for round := range raceRounds {
			j := start(t, "race-upload", round)
			var up syncjobs.Job
			upErr, finErr := together(
				func() (err error) { up, err = sa.Upload(account, j.ID, keys(round, 3, 6), nil); return err },
				func() error { _, err := sb.Finalize(ctx, account, j.ID, nil); return err })
			if finErr != nil {
				t.Fatalf("round %d: the finalize failed: %v", round, finErr)
			}
			want := 3
			if upErr == nil {
				wins["upload first"]++
				want = 6
				if up.Status != syncjobs.StatusAwaitingUploads || up.NumEntitiesUploaded != 6 {
					t.Errorf("round %d: the upload answered %s", round, counts(up))
				}
			} else {
				wins["finalize first"]++
				lost(t, round, "upload", upErr, fmt.Sprintf(notAwaitingRE, regexp.QuoteMeta(j.ID)))
			}
			got := settle(t, "race-upload", round, j.ID, want)
			if w := fmt.Sprintf("FINISHED; entities uploaded %d created %d updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0", want, want); counts(got) != w {
				t.Errorf("round %d: job %s\nwant %s", round, counts(got), w)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
		t.Logf("%d rounds: %v", raceRounds, wins)
	})

	t.Run("AbortFinalize", func(t *testing.T) {
		wins := map[string]int{}
		for round := range raceRounds {
			j := start(t, "race-abort", round)
			abortErr, finErr := together(
				func() error { _, err := sa.Abort(account, j.ID, "race"); return err },
				func() error { _, err := sb.Finalize(ctx, account, j.ID, nil); return err })
			var got syncjobs.Job
			var want string
			switch {
			case abortErr == nil && finErr == nil, abortErr != nil && finErr != nil:
				t.Fatalf("round %d: the abort answered %v and the finalize %v: want exactly one to succeed", round, abortErr, finErr)
			case abortErr == nil:
				wins["abort"]++
				lost(t, round, "finalize", finErr, fmt.Sprintf(`^job %s is ABORTED, not AWAITING_UPLOADS: start a new job to upload more data$`, regexp.QuoteMeta(j.ID)))
				got = settle(t, "race-abort", round, j.ID, 0)
				want = "ABORTED; entities uploaded 3 created 0 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0"
			default:
				wins["finalize"]++
				lost(t, round, "abort", abortErr, fmt.Sprintf(notAwaitingRE, regexp.QuoteMeta(j.ID)))
				got = settle(t, "race-abort", round, j.ID, 3)
				want = "FINISHED; entities uploaded 3 created 3 updated 0 deleted 0; relationships uploaded 0 created 0 updated 0 deleted 0"
			}
			if counts(got) != want {
				t.Errorf("round %d: job %s\nwant %s", round, counts(got), want)
			}
			if t.Failed() {
				t.FailNow()
			}
		}
		t.Logf("%d rounds: %v", raceRounds, wins)
	})
}

// testRunnerRevisions pins the two conditions of a write through a node's
// Runner Store: the node runs the job or none does, else ErrNotRunner,
// checked first; and the job is at the revision the write was read at,
// else ErrJobChanged. Either way nothing is written.
func testRunnerRevisions(t *testing.T, open ClusterOpener) {
	c := open(t)
	g, st := c.Node()
	r := runnersOf(t, st)
	c.SetLive("node-a", true)
	c.SetLive("node-b", true)
	j := newJob("job-1", syncjobs.StatusAwaitingUploads)
	if err := st.PutJob(j); err != nil {
		t.Fatal(err)
	}
	// at[r] is the job as read at revision r.
	at := map[int64]syncjobs.Job{1: mustJob(t, st, account, "job-1")}
	if got := stage(st, j, "e:x:1"); got != "added e:x" {
		t.Fatal(got)
	}
	from := func(rev int64) *syncjobs.Job {
		j, ok := at[rev]
		if !ok {
			t.Fatalf("the job was never read at revision %d", rev)
		}
		return &j
	}
	result := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, syncjobs.ErrNotRunner):
			return "not runner"
		case errors.Is(err, syncjobs.ErrJobChanged):
			return "job changed"
		}
		t.Fatal(err)
		return ""
	}
	write := func(node string, rev int64) string {
		j := from(rev)
		j.Status = syncjobs.StatusFinalizePending
		return result(r.Runner(node).PutJob(j))
	}
	chunk := func(node string, rev int64) string {
		j := from(rev)
		j.Status, j.Progress = syncjobs.StatusFinalizingEntities, fmt.Sprintf("e:from-r%d", rev)
		_, err := r.Runner(node).Apply(j, func(tx graph.Txn) error {
			if _, _, err := tx.Upsert(thing("thing-key-1")); err != nil {
				return err
			}
			j.Add(tx.Counts())
			return nil
		})
		return result(err)
	}
	finish := func(node string, rev int64) string {
		j := from(rev)
		j.Status, j.Progress = syncjobs.StatusFinished, ""
		return result(r.Runner(node).Finish(j))
	}
	steps := []struct {
		name string
		do   func() string
	}{
		{"read", func() string { return "ok" }},
		{"node-a writes FINALIZE_PENDING from r1", func() string { return write("node-a", 1) }},
		{"node-a writes FINALIZE_PENDING from r2", func() string { return write("node-a", 2) }},
		{"node-b writes from r3", func() string { return write("node-b", 3) }},
		{"node-b writes from r2", func() string { return write("node-b", 2) }},
		{"node-a writes from r2", func() string { return write("node-a", 2) }},
		{"node-a applies a chunk from r2", func() string { return chunk("node-a", 2) }},
		{"node-a applies a chunk from r3", func() string { return chunk("node-a", 3) }},
		{"node-b finishes from r4", func() string { return finish("node-b", 4) }},
		{"node-a finishes from r3", func() string { return finish("node-a", 3) }},
		{"node-a finishes from r4", func() string { return finish("node-a", 4) }},
	}
	var log strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&log, "%s: %s", s.name, s.do())
		j := mustJob(t, st, account, "job-1")
		at[j.Revision] = j
		fmt.Fprintf(&log, "; job-1 r%d %s %q created %d; thing-key-1 %s; staged %s\n", j.Revision, j.Status, j.Progress, j.NumEntitiesCreated,
			objectState(t, g, graph.ObjectID(account, scope, "thing-key-1")), stagedIDs(t, st, "job-1"))
	}
	want := `read: ok; job-1 r2 AWAITING_UPLOADS "" created 0; thing-key-1 none; staged e:x
node-a writes FINALIZE_PENDING from r1: job changed; job-1 r2 AWAITING_UPLOADS "" created 0; thing-key-1 none; staged e:x
node-a writes FINALIZE_PENDING from r2: ok; job-1 r3 FINALIZE_PENDING "" created 0; thing-key-1 none; staged e:x
node-b writes from r3: not runner; job-1 r3 FINALIZE_PENDING "" created 0; thing-key-1 none; staged e:x
node-b writes from r2: not runner; job-1 r3 FINALIZE_PENDING "" created 0; thing-key-1 none; staged e:x
node-a writes from r2: job changed; job-1 r3 FINALIZE_PENDING "" created 0; thing-key-1 none; staged e:x
node-a applies a chunk from r2: job changed; job-1 r3 FINALIZE_PENDING "" created 0; thing-key-1 none; staged e:x
node-a applies a chunk from r3: ok; job-1 r4 FINALIZING_ENTITIES "e:from-r3" created 1; thing-key-1 v1; staged e:x
node-b finishes from r4: not runner; job-1 r4 FINALIZING_ENTITIES "e:from-r3" created 1; thing-key-1 v1; staged e:x
node-a finishes from r3: job changed; job-1 r4 FINALIZING_ENTITIES "e:from-r3" created 1; thing-key-1 v1; staged e:x
node-a finishes from r4: ok; job-1 r5 FINISHED "" created 1; thing-key-1 v1; staged -
`
	if got := log.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
