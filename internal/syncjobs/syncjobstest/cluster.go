package syncjobstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Cluster is a backend that several nodes share, for RunCluster.
type Cluster struct {
	// Node opens the backend as one more process does: a graph and a
	// Store over the shared storage, the Store implementing
	// syncjobs.Runners. What it opens is closed when the test ends.
	Node func() (graph.Graph, syncjobs.Store)
	// SetLive makes the node with id live (its lease lasts) or not (its
	// lease ended), as the Store decides which nodes are live.
	SetLive func(node string, live bool)
}

// ClusterOpener opens a new, empty backend that nodes share, for one test.
type ClusterOpener func(t *testing.T) Cluster

// RunCluster runs the suite of a Store that the nodes of a cluster share
// (syncjobs.Runners) against the backend open opens: claims and the
// fencing of a former runner's writes, the revisions of a runner's writes,
// a finalization taken over from a node that died, requests to one job
// racing on two nodes, and an account's quotas on two nodes at once.
func RunCluster(t *testing.T, open ClusterOpener) {
	t.Run("Claims", func(t *testing.T) { testClaims(t, open) })
	t.Run("ClaimRace", func(t *testing.T) { testClaimRace(t, open) })
	t.Run("RunnerRevisions", func(t *testing.T) { testRunnerRevisions(t, open) })
	t.Run("TakeOver", func(t *testing.T) { testTakeOver(t, open) })
	t.Run("Races", func(t *testing.T) { testRaces(t, open) })
	t.Run("QuotasAcrossNodes", func(t *testing.T) { testQuotasAcrossNodes(t, open) })
}

func runnersOf(t *testing.T, st syncjobs.Store) syncjobs.Runners {
	t.Helper()
	r, ok := st.(syncjobs.Runners)
	if !ok {
		t.Fatalf("%T does not implement syncjobs.Runners", st)
	}
	return r
}

// testClaims pins Runners step by step: which claims succeed, which jobs
// are orphans, and that every write through the Runner Store of a node
// that no longer runs the job is refused with ErrNotRunner and writes
// nothing, neither objects nor record nor staging, even once the node is
// live again.
func testClaims(t *testing.T, open ClusterOpener) {
	c := open(t)
	g, st := c.Node()
	r := runnersOf(t, st)
	c.SetLive("node-a", true)
	c.SetLive("node-b", true)

	result := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, syncjobs.ErrNotRunner):
			return "not runner"
		}
		t.Fatal(err)
		return ""
	}
	claim := func(id, node string) string {
		ok, err := r.Claim(account, id, node)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(ok)
	}
	orphans := func() string {
		os, err := r.Orphans(10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range os {
			runner := o.Runner
			if runner == "" {
				runner = "no runner"
			}
			out = append(out, fmt.Sprintf("%s/%s (%s)", o.AccountID, o.ID, runner))
		}
		if len(out) == 0 {
			return "none"
		}
		return strings.Join(out, ", ")
	}
	staged := func() string {
		_, ok, err := st.Staged(account, "job-1", graph.KindEntity, "x")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return "staged x"
		}
		return "no staging"
	}
	j := newJob("job-1", syncjobs.StatusAwaitingUploads)
	if err := st.PutJob(j); err != nil {
		t.Fatal(err)
	}
	if got := stage(st, j, "e:x:1"); got != "added e:x" {
		t.Fatal(got)
	}
	pending := *j
	pending.Status = syncjobs.StatusFinalizePending
	chunk := func(node, progress string) string {
		next := mustJob(t, st, account, "job-1")
		next.Status = syncjobs.StatusFinalizingEntities
		_, err := r.Runner(node).Apply(&next, func(tx graph.Txn) error {
			if _, _, err := tx.Upsert(thing("thing-key-1")); err != nil {
				return err
			}
			next.Add(tx.Counts())
			next.Progress = progress
			return nil
		})
		return result(err)
	}
	write := func(node, progress string) string {
		next := mustJob(t, st, account, "job-1")
		next.Progress = progress
		return result(r.Runner(node).PutJob(&next))
	}
	finish := func(node string) string {
		next := mustJob(t, st, account, "job-1")
		next.Status, next.Progress = syncjobs.StatusFinished, ""
		return result(r.Runner(node).Finish(&next))
	}
	steps := []struct {
		name string
		do   func() string
	}{
		{"claim of a job awaiting uploads by node-a", func() string { return claim("job-1", "node-a") }},
		{"node-a writes FINALIZE_PENDING (no runner yet)", func() string { return result(r.Runner("node-a").PutJob(&pending)) }},
		{"node-b writes FINALIZE_PENDING", func() string { return result(r.Runner("node-b").PutJob(&pending)) }},
		{"claim by node-b, node-a live", func() string { return claim("job-1", "node-b") }},
		{"claim by node-a, its own", func() string { return claim("job-1", "node-a") }},
		{"node-a applies a chunk", func() string { return chunk("node-a", "e:1") }},
		{"orphans", orphans},
		{"node-a dies", func() string { c.SetLive("node-a", false); return "" }},
		{"orphans", orphans},
		{"claim by node-c, not live", func() string { return claim("job-1", "node-c") }},
		{"claim by node-b", func() string { return claim("job-1", "node-b") }},
		{"orphans", orphans},
		{"node-a is live again", func() string { c.SetLive("node-a", true); return "" }},
		{"claim by node-a", func() string { return claim("job-1", "node-a") }},
		{"node-a applies a chunk", func() string { return chunk("node-a", "e:2") }},
		{"node-a writes the record", func() string { return write("node-a", "e:3") }},
		{"node-a finishes the job", func() string { return finish("node-a") }},
		{"node-b writes the record", func() string { return write("node-b", "dr:") }},
		{"node-b finishes the job", func() string { return finish("node-b") }},
		{"claim of the finished job by node-b", func() string { return claim("job-1", "node-b") }},
		{"a process alone writes job-2 FINALIZING_ENTITIES", func() string {
			j2 := newJob("job-2", syncjobs.StatusFinalizingEntities)
			return result(st.PutJob(j2))
		}},
		{"orphans", orphans},
		{"claim of job-2 by node-b", func() string { return claim("job-2", "node-b") }},
		{"orphans", orphans},
		{"node-b dies", func() string { c.SetLive("node-b", false); return "" }},
		{"orphans", orphans},
	}
	var log strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&log, "%s: %s", s.name, s.do())
		j := mustJob(t, st, account, "job-1")
		fmt.Fprintf(&log, "; job-1 %s %q created %d; thing-key-1 %s; %s\n",
			j.Status, j.Progress, j.NumEntitiesCreated, objectState(t, g, graph.ObjectID(account, scope, "thing-key-1")), staged())
	}
	want := `claim of a job awaiting uploads by node-a: false; job-1 AWAITING_UPLOADS "" created 0; thing-key-1 none; staged x
node-a writes FINALIZE_PENDING (no runner yet): ok; job-1 FINALIZE_PENDING "" created 0; thing-key-1 none; staged x
node-b writes FINALIZE_PENDING: not runner; job-1 FINALIZE_PENDING "" created 0; thing-key-1 none; staged x
claim by node-b, node-a live: false; job-1 FINALIZE_PENDING "" created 0; thing-key-1 none; staged x
claim by node-a, its own: true; job-1 FINALIZE_PENDING "" created 0; thing-key-1 none; staged x
node-a applies a chunk: ok; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
orphans: none; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
node-a dies: ; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
orphans: acct/job-1 (node-a); job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
claim by node-c, not live: false; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
claim by node-b: true; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
orphans: none; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
node-a is live again: ; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
claim by node-a: false; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
node-a applies a chunk: not runner; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
node-a writes the record: not runner; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
node-a finishes the job: not runner; job-1 FINALIZING_ENTITIES "e:1" created 1; thing-key-1 v1; staged x
node-b writes the record: ok; job-1 FINALIZING_ENTITIES "dr:" created 1; thing-key-1 v1; staged x
node-b finishes the job: ok; job-1 FINISHED "" created 1; thing-key-1 v1; no staging
claim of the finished job by node-b: false; job-1 FINISHED "" created 1; thing-key-1 v1; no staging
a process alone writes job-2 FINALIZING_ENTITIES: ok; job-1 FINISHED "" created 1; thing-key-1 v1; no staging
orphans: acct/job-2 (no runner); job-1 FINISHED "" created 1; thing-key-1 v1; no staging
claim of job-2 by node-b: true; job-1 FINISHED "" created 1; thing-key-1 v1; no staging
orphans: none; job-1 FINISHED "" created 1; thing-key-1 v1; no staging
node-b dies: ; job-1 FINISHED "" created 1; thing-key-1 v1; no staging
orphans: acct/job-2 (node-b); job-1 FINISHED "" created 1; thing-key-1 v1; no staging
`
	if got := log.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

// testClaimRace: live nodes that claim an orphaned job at once, each on a
// Store of its own, get it exactly once; round after round, the winner of
// the last round having died (a dead node claims nothing: it may claim its
// own job, but then, not live, it can lose it to the next claim).
func testClaimRace(t *testing.T, open ClusterOpener) {
	c := open(t)
	const nodes = 6
	stores := make([]syncjobs.Runners, nodes)
	for i := range stores {
		_, st := c.Node()
		stores[i] = runnersOf(t, st)
		c.SetLive(fmt.Sprintf("node-%d", i), true)
	}
	_, st := c.Node()
	if err := st.PutJob(newJob("job-1", syncjobs.StatusFinalizingEntities)); err != nil {
		t.Fatal(err)
	}
	dead := make([]bool, nodes)
	for round := range 4 {
		won := make([]bool, nodes)
		var wg sync.WaitGroup
		for i, r := range stores {
			if dead[i] {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := r.Claim(account, "job-1", fmt.Sprintf("node-%d", i))
				if err != nil {
					t.Error(err)
				}
				won[i] = ok
			}()
		}
		wg.Wait()
		var winners []int
		for i, ok := range won {
			if ok {
				winners = append(winners, i)
			}
		}
		if len(winners) != 1 {
			t.Fatalf("round %d: nodes %v claimed the job, want exactly one", round, winners)
		}
		c.SetLive(fmt.Sprintf("node-%d", winners[0]), false)
		dead[winners[0]] = true
	}
}

// nodeStore is a node's Store as testTakeOver drives it: it counts the
// node's looks for orphans, and it can pause the node before one finalize
// chunk, as a process stopped (SIGSTOP) between two chunks and resumed
// later.
type nodeStore struct {
	syncjobs.Store
	syncjobs.Runners
	// pauseAt is the chunk (Apply) that pauses, from 1; 0 for none.
	pauseAt int
	// paused is closed when the chunk pauses; release lets it go on;
	// resumed then receives its error.
	paused, release chan struct{}
	resumed         chan error

	mu     sync.Mutex
	chunks int
	looks  int
}

func newNodeStore(t *testing.T, st syncjobs.Store, pauseAt int) *nodeStore {
	return &nodeStore{Store: st, Runners: runnersOf(t, st), pauseAt: pauseAt,
		paused: make(chan struct{}), release: make(chan struct{}), resumed: make(chan error, 1)}
}

func (n *nodeStore) Orphans(limit int) ([]syncjobs.Orphan, error) {
	n.mu.Lock()
	n.looks++
	n.mu.Unlock()
	return n.Runners.Orphans(limit)
}

func (n *nodeStore) lookCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.looks
}

func (n *nodeStore) Runner(node string) syncjobs.Store {
	return &pausingRunner{Store: n.Runners.Runner(node), n: n}
}

type pausingRunner struct {
	syncjobs.Store
	n *nodeStore
}

func (p *pausingRunner) Apply(j *syncjobs.Job, fn func(graph.Txn) error) (graph.Commit, error) {
	p.n.mu.Lock()
	p.n.chunks++
	pause := p.n.chunks == p.n.pauseAt
	p.n.mu.Unlock()
	if !pause {
		return p.Store.Apply(j, fn)
	}
	close(p.n.paused)
	<-p.n.release
	c, err := p.Store.Apply(j, fn)
	p.n.resumed <- err
	return c, err
}

// openNode opens a Service as the node named node, looking for orphans
// every 20ms.
func openNode(t *testing.T, g graph.Graph, st syncjobs.Store, node string) *syncjobs.Service {
	t.Helper()
	s, err := syncjobs.Open(g, st, syncjobs.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Node: node, ResumePoll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// within waits until cond holds, for up to 30 seconds.
func within(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testTakeOver: node A finalizes a DIFF job of three chunks and is paused
// after the first. Node B, started meanwhile, leaves the job to A while A
// is live. A dies: B takes the job over and finishes it. A resumes: its
// next chunk is refused (ErrNotRunner) and it stops, leaving the job as B
// finished it. The job's counters, the graph and the log are those of one
// uninterrupted run: every change applied exactly once.
func testTakeOver(t *testing.T, open ClusterOpener) {
	c := open(t)
	c.SetLive("node-a", true)
	c.SetLive("node-b", true)
	gA, stA := c.Node()
	gB, stB := c.Node()

	// 600 entities exist; the DIFF job keeps 0-299 unchanged, changes
	// 300-499, omits 500-599 and adds 600-1099.
	setup := openService(t, gA, stA)
	if j := runJob(t, setup, scope, syncjobs.ModePatch, nil, entities(0, 600, "a"), nil); j.NumEntitiesCreated != 600 {
		t.Fatalf("setup job: %s", counts(j))
	}
	setup.Close()
	var start uint64
	if r, ok := gA.(changelog.Reader); ok {
		var err error
		if start, err = r.End(account); err != nil {
			t.Fatal(err)
		}
	}

	a := newNodeStore(t, stA, 2)
	sa := openNode(t, gA, a, "node-a")
	defer sa.Close()
	j, err := sa.Create(account, syncjobs.CreateRequest{Source: "api", Scope: scope, SyncMode: syncjobs.ModeDiff})
	if err != nil {
		t.Fatal(err)
	}
	upload := append(append(entities(0, 300, "a"), entities(300, 500, "b")...), entities(600, 1100, "a")...)
	for i := 0; i < len(upload); i += 400 {
		if _, err := sa.Upload(account, j.ID, upload[i:min(i+400, len(upload))], nil); err != nil {
			t.Fatal(err)
		}
	}
	// Finalize answers when its context ends, the job going on.
	fctx, fcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer fcancel()
	if _, err := sa.Finalize(fctx, account, j.ID, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.paused:
	case <-time.After(30 * time.Second):
		t.Fatal("node A did not reach its second chunk within 30s")
	}
	atPause := mustJob(t, stB, account, j.ID)
	if atPause.Status != syncjobs.StatusFinalizingEntities || atPause.Progress == "" {
		t.Fatalf("job at the pause: %s, progress %q", counts(atPause), atPause.Progress)
	}

	// B starts while A is live: it looks, and leaves A's job alone.
	b := newNodeStore(t, stB, 0)
	sb := openNode(t, gB, b, "node-b")
	defer sb.Close()
	within(t, "node B looks for orphans three times", func() bool { return b.lookCount() >= 3 })
	if got := mustJob(t, stB, account, j.ID); counts(got) != counts(atPause) || got.Progress != atPause.Progress {
		t.Fatalf("node B changed the job of live node A: %s, progress %q; at the pause %s, progress %q",
			counts(got), got.Progress, counts(atPause), atPause.Progress)
	}

	// A dies: B takes the job over and finishes it.
	c.SetLive("node-a", false)
	within(t, "node B finishes the job", func() bool {
		got, err := sb.Get(account, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return !got.Status.Finalizing()
	})

	// A resumes: its chunk is refused, and it stops.
	close(a.release)
	if err := <-a.resumed; !errors.Is(err, syncjobs.ErrNotRunner) {
		t.Fatalf("node A's chunk after the takeover: err %v, want ErrNotRunner", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sa.Wait(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	got, err := sa.Get(account, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	const want = "FINISHED; entities uploaded 1000 created 500 updated 200 deleted 100; relationships uploaded 0 created 0 updated 0 deleted 0"
	if counts(got) != want {
		t.Fatalf("job: %s\nwant %s", counts(got), want)
	}

	if r, ok := gB.(changelog.Reader); ok {
		checkChangedOnce(t, r, account, start, 500, 200, 100)
	}
	summaries := map[string]int{}
	for i := range 1100 {
		summaries[objectSummary(t, gB, scope, fmt.Sprintf("entity-key-%05d", i))]++
	}
	var lines []string
	for _, s := range slices.Sorted(maps.Keys(summaries)) {
		lines = append(lines, fmt.Sprintf("%d %s", summaries[s], s))
	}
	const wantGraph = `800 entity v1 live v="a"
100 entity v2 deleted v="a"
200 entity v2 live v="b"`
	if g := strings.Join(lines, "\n"); g != wantGraph {
		t.Fatalf("graph:\n%s\nwant:\n%s", g, wantGraph)
	}
}

// gatedStore holds each Stage it is armed for until as many Stages, over
// every gatedStore sharing the gate, have arrived: requests on several
// nodes then reach the backend at once.
type gatedStore struct {
	syncjobs.Store
	gate *gate
}

func (g *gatedStore) Stage(j *syncjobs.Job, objs []syncjobs.StagedObject, fn func([]bool, syncjobs.Usage) error) error {
	g.gate.wait()
	return g.Store.Stage(j, objs, fn)
}

// gate lets callers through once n of them wait, or after 10 s.
type gate struct {
	mu      sync.Mutex
	n       int
	arrived chan struct{}
	open    chan struct{}
}

func newGate(n int) *gate {
	return &gate{n: n, arrived: make(chan struct{}, n), open: make(chan struct{})}
}

func (g *gate) wait() {
	g.arrived <- struct{}{}
	g.mu.Lock()
	if len(g.arrived) == g.n {
		close(g.open)
	}
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-time.After(10 * time.Second):
	}
}

// testQuotasAcrossNodes: two nodes take requests of one account at the
// same moment, each Stage reaching the shared backend together with the
// other's. The account's quotas hold for the two together: of two jobs
// created when one more fits, one is created and the other refused 429
// TOO_MANY_OPEN_JOBS; of two uploads when one more fits, one is staged
// and the other refused 429 STAGING_QUOTA_EXCEEDED, staging nothing.
func testQuotasAcrossNodes(t *testing.T, open ClusterOpener) {
	c := open(t)
	const quota = 64 << 10
	opts := syncjobs.Options{
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		MaxOpenJobs: 3, MaxStagedBytes: quota,
	}
	var nodes [2]*syncjobs.Service
	var stores [2]*gatedStore
	for i := range nodes {
		g, st := c.Node()
		stores[i] = &gatedStore{Store: st, gate: newGate(1)} // ungated
		s, err := syncjobs.Open(g, stores[i], opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		nodes[i] = s
	}
	// One job each, ungated: two of the three open jobs.
	var jobs [2]syncjobs.Job
	for i, s := range nodes {
		j, err := s.Create(account, syncjobs.CreateRequest{Source: "api", Scope: fmt.Sprintf("quota-node-%d", i), SyncMode: syncjobs.ModePatch})
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = j
	}

	race := func(g *gate, do func(i int) error) []string {
		for _, st := range stores {
			st.gate = g
		}
		codes := make([]string, len(nodes))
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() { codes[i] = apiCode(do(i)) })
		}
		wg.Wait()
		slices.Sort(codes)
		return codes
	}
	got := race(newGate(2), func(i int) error {
		_, err := nodes[i].Create(account, syncjobs.CreateRequest{Source: "api", Scope: fmt.Sprintf("quota-extra-%d", i), SyncMode: syncjobs.ModePatch})
		return err
	})
	if want := []string{"429 TOO_MANY_OPEN_JOBS", "ok"}; !slices.Equal(got, want) {
		t.Errorf("two creates on two nodes when one more job fits: %q, want %q", got, want)
	}
	if u := usage(t, stores[0].Store, account); !strings.HasPrefix(u, "3 jobs") {
		t.Errorf("usage after the creates: %s, want 3 jobs", u)
	}

	// Each upload is about 40 KiB: one fits in the 64 KiB, not two.
	got = race(newGate(2), func(i int) error {
		_, err := nodes[i].Upload(account, jobs[i].ID, thingsOf(fmt.Sprintf("quota-%d", i), 10, 4000), nil)
		return err
	})
	if want := []string{"429 STAGING_QUOTA_EXCEEDED", "ok"}; !slices.Equal(got, want) {
		t.Errorf("two uploads on two nodes when one fits: %q, want %q", got, want)
	}
	u, err := stores[0].Usage(account)
	if err != nil {
		t.Fatal(err)
	}
	if u.StagedBytes > quota || u.StagedBytes < 40_000 {
		t.Errorf("staged %d bytes after the uploads, want one upload's (about 40 KiB) within the quota of %d", u.StagedBytes, quota)
	}
}
