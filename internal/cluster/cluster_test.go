package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// node is one member of a test cluster: a store of its own on the shared
// database (as a j1ds serve process has), its manager, and its metrics.
type node struct {
	pg   *pgstore.Store
	m    *cluster.Manager
	reg  *prometheus.Registry
	stop context.CancelFunc // stops renewing, as SIGKILL would
	done chan struct{}
}

// join starts a node on the database at url with lease ttl: it hears the
// others (LISTEN), joins and renews until stopped.
func join(t *testing.T, url, name string, ttl time.Duration) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{pg: pg, reg: prometheus.NewRegistry(), done: make(chan struct{})}
	n.m = cluster.New(pg.Cluster(), cluster.Config{Node: cluster.Node{Name: name, Addr: "127.0.0.1:1"}, LeaseTTL: ttl, Registerer: n.reg})
	if err := pg.Listen(n.m.ID(), pgstore.ClusterEvents{Cluster: n.m.Wake}); err != nil {
		t.Fatal(err)
	}
	if err := n.m.Start(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	n.stop = stop
	go func() {
		defer close(n.done)
		n.m.Run(rctx)
	}()
	t.Cleanup(func() {
		n.kill()
		pg.Close()
	})
	return n
}

// kill stops the node's renewals without leaving, as a SIGKILL would.
func (n *node) kill() {
	n.stop()
	<-n.done
}

func (n *node) groups() int {
	c := 0
	for g := range cluster.Groups {
		if n.owns(g) {
			c++
		}
	}
	return c
}

// owns reports whether the node holds group g, by asking for an account
// of that group.
func (n *node) owns(g int) bool { return n.m.Owns(accountOfGroup[g]) }

// accountOfGroup holds an account id of each group.
var accountOfGroup = func() [cluster.Groups]string {
	var out [cluster.Groups]string
	left := cluster.Groups
	for i := 0; left > 0; i++ {
		id := fmt.Sprintf("acct-%d", i)
		if g := cluster.GroupOf(id); out[g] == "" {
			out[g] = id
			left--
		}
	}
	return out
}()

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting a minute for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exactlyOneOwner fails unless every group is held by exactly one of the
// live nodes.
func exactlyOneOwner(t *testing.T, nodes ...*node) {
	t.Helper()
	for g := range cluster.Groups {
		owners := 0
		for _, n := range nodes {
			if n.owns(g) {
				owners++
			}
		}
		if owners != 1 {
			t.Fatalf("group %d has %d owners among the live nodes, want 1", g, owners)
		}
	}
}

func TestNodesShareGroupsAndAccounts(t *testing.T) {
	_, url := localpg.Shared(t)
	ns := []*node{join(t, url, "a", 2*time.Second), join(t, url, "b", 2*time.Second), join(t, url, "c", 2*time.Second)}
	waitUntil(t, "three nodes to split the groups", func() bool {
		return ns[0].groups()+ns[1].groups()+ns[2].groups() == cluster.Groups &&
			min(ns[0].groups(), ns[1].groups(), ns[2].groups()) >= cluster.Groups/3
	})
	exactlyOneOwner(t, ns...)
	// 1,000 accounts spread within ±20% of a third each.
	counts := make([]int, len(ns))
	for i := range 1000 {
		id := fmt.Sprintf("account-%04d", i)
		for j, n := range ns {
			if n.m.Owns(id) {
				counts[j]++
			}
		}
	}
	for j, c := range counts {
		if c < 267 || c > 400 {
			t.Errorf("node %d exports %d of 1,000 accounts, want 333 ±20%% (all: %v)", j, c, counts)
		}
	}
	t.Logf("accounts per node: %v", counts)
}

func TestDeadNodesGroupsAreTakenOver(t *testing.T) {
	_, url := localpg.Shared(t)
	ttl := time.Second
	a, b, c := join(t, url, "a", ttl), join(t, url, "b", ttl), join(t, url, "c", ttl)
	waitUntil(t, "three nodes to split the groups", func() bool { return min(a.groups(), b.groups(), c.groups()) >= cluster.Groups/3 })
	had := c.groups()
	c.kill()
	waitUntil(t, "the live nodes to take the dead node's groups", func() bool { return a.groups()+b.groups() == cluster.Groups })
	exactlyOneOwner(t, a, b)
	takeovers := metric(t, a.reg, "j1ds_cluster_takeovers_total") + metric(t, b.reg, "j1ds_cluster_takeovers_total")
	if int(takeovers) != had {
		t.Errorf("takeovers counted %v, want the %d groups of the dead node", takeovers, had)
	}
	v, err := a.m.View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Nodes {
		if n.Name == "c" && (n.Live || n.Groups != 0) {
			t.Errorf("the dead node shows as %+v, want not live and owning nothing", n)
		}
	}
}

// A long lease: nothing moves by a renewal, only by the notifications a
// join, a release and a leave send.
const longLease = time.Hour

func TestJoinAndLeaveMoveGroupsAtOnce(t *testing.T) {
	_, url := localpg.Shared(t)
	a := join(t, url, "a", longLease)
	if a.groups() != cluster.Groups {
		t.Fatalf("a node alone holds %d groups, want all %d", a.groups(), cluster.Groups)
	}
	b := join(t, url, "b", longLease)
	waitUntil(t, "the first node to hand half its groups to the one that joined", func() bool {
		return a.groups() == cluster.Groups/2 && b.groups() == cluster.Groups/2
	})
	exactlyOneOwner(t, a, b)
	if err := a.m.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.kill()
	waitUntil(t, "the node left to take every group", func() bool { return b.groups() == cluster.Groups })
	v, err := b.m.View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.FreeGroups != 0 {
		t.Errorf("%d groups free after the handover", v.FreeGroups)
	}
	for _, n := range v.Nodes {
		if n.Name == "a" && (!n.Leaving || n.Live) {
			t.Errorf("the node that left shows as %+v, want leaving and not live", n)
		}
	}
}

// TestFencedCursorMoveRefused: a node whose lease lapsed (paused, cut off)
// still believes it owns its groups; once another node claims them, its
// checkpoint writes are refused and change nothing, and the new owner's
// go through.
func TestFencedCursorMoveRefused(t *testing.T) {
	_, url := localpg.Shared(t)
	const account = "fenced-account"
	a := join(t, url, "a", time.Second)
	ss := a.pg.Settings()
	if _, err := ss.Update(account, func(r *settings.Record) error {
		r.Stream = stream.State{Account: account, Enabled: true, Generation: 1, Target: "bucket"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	staleCP := ss.Fenced(a.m.Fence, a.m.FencedWrite)
	if err := staleCP.SaveAttempt(account, 1, 0, 5, ""); err != nil {
		t.Fatalf("the owner's saved attempt: %v", err)
	}
	a.stop() // paused: no more renewals, and it still holds its groups in memory
	<-a.done
	if !a.m.Owns(account) {
		t.Fatal("the paused node must still believe it owns the account (it cannot know)")
	}
	b := join(t, url, "b", time.Second)
	waitUntil(t, "the second node to claim every group of the paused one", func() bool { return b.groups() == cluster.Groups })

	err := staleCP.Advance(account, 1, 5, 3, "key-of-the-stale-node", time.Now(), 0)
	if !errors.Is(err, stream.ErrFenced) || !errors.Is(err, stream.ErrStale) {
		t.Fatalf("the stale node's cursor move returned %v, want stream.ErrFenced", err)
	}
	if err := staleCP.SetError(account, 1, &stream.Problem{Code: "X"}, 0); !errors.Is(err, stream.ErrFenced) {
		t.Fatalf("the stale node's error write returned %v, want stream.ErrFenced", err)
	}
	if _, _, err := staleCP.SkipGap(account, 1, stream.Gap{FromLSN: 1, ToLSN: 9}); !errors.Is(err, stream.ErrFenced) {
		t.Fatalf("the stale node's gap returned %v, want stream.ErrFenced", err)
	}
	st, err := ss.Load(account)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cursor != 0 || st.ObjectsExported != 0 || st.LastError != nil || len(st.Gaps) != 0 || st.Attempt == nil || st.Attempt.ThroughLSN != 5 {
		t.Fatalf("refused writes changed the state: %+v", st)
	}
	if got := metric(t, a.reg, "j1ds_cluster_fenced_writes_total"); got != 3 {
		t.Errorf("fenced writes counted %v, want 3", got)
	}
	// The new owner retries the saved batch and moves the cursor.
	if err := b.pg.Settings().Fenced(b.m.Fence, b.m.FencedWrite).Advance(account, 1, 5, 3, "key", time.Now(), 0); err != nil {
		t.Fatalf("the new owner's cursor move: %v", err)
	}
	if st, _ := ss.Load(account); st.Cursor != 5 || st.Attempt != nil {
		t.Fatalf("after the new owner's move: %+v", st)
	}
}

// metric returns the value of a counter registered in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestFrozenWriterBlocksNothing: a node frozen inside a checkpoint write
// holds its group's row FOR SHARE. The node that takes over must go on
// renewing and claim every other group at once, and that one as soon as
// the write ends (its transaction ends itself when idle: fence).
func TestFrozenWriterBlocksNothing(t *testing.T) {
	_, url := localpg.Shared(t)
	ttl := time.Second
	a := join(t, url, "a", ttl)
	held := accountOfGroup[7]
	ctx := context.Background()
	tx, err := a.pg.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT token FROM export_groups WHERE grp = $1 FOR SHARE", cluster.GroupOf(held)); err != nil {
		t.Fatal(err)
	}
	a.kill()
	b := join(t, url, "b", ttl)
	waitUntil(t, "the other groups claimed while one is locked", func() bool { return b.groups() == cluster.Groups-1 })
	time.Sleep(3 * ttl) // renewals go on meanwhile
	v, err := b.m.View(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range v.Nodes {
		if n.Name == "b" && (!n.Live || n.Groups != cluster.Groups-1) {
			t.Fatalf("the claiming node stopped renewing or claimed the locked group: %+v", n)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the last group claimed once the write ended", func() bool { return b.groups() == cluster.Groups })
}
