package e2e

// The cluster harness: several j1ds serve child processes on one
// PostgreSQL database (serve --store), each a node of the cluster, which a
// test kills, restarts, pauses (SIGSTOP) and stops (SIGTERM); clients whose
// requests go to whichever nodes are up; the cluster as GET
// /operator/v1/cluster shows it; a REST load spread over many accounts; and
// the end-of-run wait for every account's cursor to reach its log's end.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/serve"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
	"github.com/j1ds/j1ds/internal/verify"
)

// clusterOptions configures a testCluster.
type clusterOptions struct {
	nodes int
	// leaseTTL is each node's --lease-ttl; zero keeps the default.
	leaseTTL time.Duration
	// flush is --flush-interval; zero is the harness's flushInterval.
	flush time.Duration
	// ownPG starts a PostgreSQL of the test's own, which it may restart;
	// otherwise the cluster gets a fresh database on the shared server.
	ownPG bool
	// before runs on the configuration before any node starts (to enable
	// accounts in the store, say).
	before func(cfg serve.Config)
}

// testCluster is a cluster of j1ds nodes on one database, run from the
// commands' binary (race-enabled when the tests are). Only the test's
// goroutine starts, stops and reroutes nodes.
type testCluster struct {
	t   *testing.T
	e   *s3Env
	cfg serve.Config
	pg  *localpg.Server // with ownPG
	env []string        // each node's extra environment (--lease-ttl)

	nodes  []*clusterNode
	routes []*liveURL
}

// clusterNode is one node: its name and its current process, replaced when
// the node is restarted (a new node id, the same name).
type clusterNode struct {
	name string
	*child
	down   bool // killed or stopped, not started again yet
	paused bool // SIGSTOPped
}

// startCluster starts S3, PostgreSQL and o.nodes nodes named node1, node2,
// ..., one after the other, and waits until they share the groups evenly.
func startCluster(t *testing.T, o clusterOptions) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, e: startS3(t, "")}
	var dbURL string
	if o.ownPG {
		tc.pg, dbURL = localpg.Own(t)
	} else {
		_, dbURL = localpg.Shared(t)
	}
	tc.cfg = streamConfig(t, tc.e)
	usePostgres(t, &tc.cfg, dbURL)
	if o.flush > 0 {
		tc.cfg.FlushInterval = o.flush
	}
	if o.leaseTTL > 0 {
		tc.env = append(tc.env, "J1DS_LEASE_TTL="+o.leaseTTL.String())
	}
	if o.before != nil {
		o.before(tc.cfg)
	}
	for i := range o.nodes {
		tc.add(fmt.Sprintf("node%d", i+1))
	}
	tc.waitBalanced(time.Minute, o.nodes)
	return tc
}

// spawn starts a j1ds process of the commands' build for the node called
// name, with extraEnv. Its log is printed if the test fails, and a data
// race it reports fails the test.
func (tc *testCluster) spawn(name string, extraEnv ...string) *child {
	return tc.spawnBuild(commandBuild, name, extraEnv...)
}

// spawnBuild is spawn from a build of kind.
func (tc *testCluster) spawnBuild(kind binaryKind, name string, extraEnv ...string) *child {
	t := tc.t
	t.Helper()
	env := append(append([]string{"J1DS_NODE_NAME=" + name}, tc.env...), extraEnv...)
	c := startBinaryChild(t, tc.e, kind, tc.cfg, env...)
	t.Cleanup(func() { // before spawnChild's, which kills the process and prints its log's tail
		log := c.stderr.String()
		if strings.Contains(log, "WARNING: DATA RACE") {
			t.Errorf("%s (pid %d) reported a data race:\n%s", name, c.cmd.Process.Pid, tail(log, 200))
		}
		if t.Failed() {
			// The tail is mostly objects exported: the cluster's events
			// (claims, losses, warnings) are shown apart.
			var events []string
			for l := range strings.Lines(log) {
				if !strings.Contains(l, `"msg":"object exported"`) && !strings.Contains(l, `"msg":"job finished"`) {
					events = append(events, strings.TrimSuffix(l, "\n"))
				}
			}
			t.Logf("%s (pid %d), its log without objects exported and jobs finished:\n%s", name, c.cmd.Process.Pid, tail(strings.Join(events, "\n"), 300))
		}
	})
	return c
}

// add starts a new node called name.
func (tc *testCluster) add(name string) *clusterNode {
	tc.t.Helper()
	return tc.addNode(name, tc.spawn(name))
}

// addNode adds a node called name, running as c.
func (tc *testCluster) addNode(name string, c *child) *clusterNode {
	n := &clusterNode{name: name, child: c}
	tc.nodes = append(tc.nodes, n)
	tc.route()
	return n
}

// up returns the nodes that answer: running and not paused.
func (tc *testCluster) up() []*clusterNode {
	var out []*clusterNode
	for _, n := range tc.nodes {
		if !n.down && !n.paused {
			out = append(out, n)
		}
	}
	return out
}

// any returns an up node (the i-th, cyclically).
func (tc *testCluster) any(i int) *clusterNode {
	tc.t.Helper()
	up := tc.up()
	if len(up) == 0 {
		tc.t.Fatal("no node is up")
	}
	return up[i%len(up)]
}

// newRoute returns a URL that always points at an up node; routes are
// spread over the nodes.
func (tc *testCluster) newRoute() *liveURL {
	u := &liveURL{}
	tc.routes = append(tc.routes, u)
	tc.route()
	return u
}

// route points every route at an up node, the k-th route at the k-th up
// node cyclically. Requests in flight to a node that goes down are sent
// again (robustClient) to where their route points then.
func (tc *testCluster) route() {
	up := tc.up()
	if len(up) == 0 {
		return // the routes keep pointing at the last nodes; clients retry
	}
	for k, u := range tc.routes {
		u.set(up[k%len(up)].url)
	}
}

// kill SIGKILLs the node and waits for it to die.
func (tc *testCluster) kill(n *clusterNode) {
	tc.t.Helper()
	n.down = true
	tc.route()
	if err := n.cmd.Process.Kill(); err != nil {
		tc.t.Fatal(err)
	}
	n.killed(tc.t)
}

// died marks the node down once its process died of SIGKILL (a failpoint
// of the crash build killed it).
func (tc *testCluster) died(n *clusterNode) {
	tc.t.Helper()
	n.down = true
	tc.route()
	n.killed(tc.t)
}

// restart starts the node again: a new process and node id, the same name.
func (tc *testCluster) restart(n *clusterNode) {
	tc.t.Helper()
	n.child = tc.spawn(n.name)
	n.down = false
	tc.route()
}

// term stops the node with SIGTERM and waits for it to exit cleanly (after
// its final flush and leaving the cluster).
func (tc *testCluster) term(n *clusterNode) {
	tc.t.Helper()
	n.down = true
	tc.route()
	n.stop()
}

// pause SIGSTOPs the node: its process is frozen, connections to it stay
// open and unanswered.
func (tc *testCluster) pause(n *clusterNode) {
	tc.t.Helper()
	n.paused = true
	tc.route()
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		tc.t.Fatal(err)
	}
}

// resume SIGCONTs a paused node.
func (tc *testCluster) resume(n *clusterNode) {
	tc.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		tc.t.Fatal(err)
	}
	n.paused = false
	tc.route()
}

// clusterView is GET /operator/v1/cluster.
type clusterView struct {
	Node            string            `json:"node"`
	Groups          int               `json:"groups"`
	LeaseTTLSeconds float64           `json:"leaseTtlSeconds"`
	Nodes           []clusterNodeView `json:"nodes"`
	FreeGroups      int               `json:"freeGroups"`
}

type clusterNodeView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Address   string    `json:"address"`
	StartedAt time.Time `json:"startedAt"`
	RenewedAt time.Time `json:"renewedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	Live      bool      `json:"live"`
	Leaving   bool      `json:"leaving"`
	Accounts  int       `json:"accounts"`
	Groups    int       `json:"groups"`
}

// view reads the cluster from node n.
func (n *clusterNode) view(t *testing.T) clusterView {
	t.Helper()
	var v clusterView
	decode(t, n.must(t, http.StatusOK, "GET", "/operator/v1/cluster", n.opKey, nil), &v)
	return v
}

// byID returns the node of the view with id, if listed.
func (v clusterView) byID(id string) (clusterNodeView, bool) {
	for _, n := range v.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return clusterNodeView{}, false
}

// live returns the live nodes that are not leaving.
func (v clusterView) live() []clusterNodeView {
	var out []clusterNodeView
	for _, n := range v.Nodes {
		if n.Live && !n.Leaving {
			out = append(out, n)
		}
	}
	return out
}

// balanced reports whether want live nodes own every group, evenly.
func (v clusterView) balanced(want int) bool {
	live := v.live()
	if len(live) != want || v.FreeGroups != 0 {
		return false
	}
	for _, n := range live {
		if n.Groups < v.Groups/want || n.Groups > v.Groups/want+1 {
			return false
		}
	}
	return true
}

func (v clusterView) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "free %d;", v.FreeGroups)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, " %s(%s live=%v leaving=%v groups=%d accounts=%d)", n.Name, n.ID, n.Live, n.Leaving, n.Groups, n.Accounts)
	}
	return b.String()
}

// nodeID returns the id the node's current process has in the cluster
// (from its own view).
func (n *clusterNode) nodeID(t *testing.T) string {
	t.Helper()
	return n.view(t).Node
}

// waitBalanced waits until want live nodes share every group evenly, as
// an up node sees it, and returns that view.
func (tc *testCluster) waitBalanced(timeout time.Duration, want int) clusterView {
	tc.t.Helper()
	var v clusterView
	waitFor(tc.t, timeout, fmt.Sprintf("%d nodes to share the groups", want), func() bool {
		v = tc.any(0).view(tc.t)
		return v.balanced(want)
	})
	return v
}

// waitReady waits until every up node answers /readyz (after PostgreSQL
// came back).
func (tc *testCluster) waitReady(timeout time.Duration) {
	tc.t.Helper()
	for _, n := range tc.up() {
		waitFor(tc.t, timeout, n.name+" to be ready", func() bool {
			resp, err := n.http.Get(n.url + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
}

// clusterStatus is the data-streaming status as the cluster tests read it.
type clusterStatus struct {
	Enabled bool `json:"enabled"`
	Status  struct {
		Enabled         bool              `json:"enabled"`
		ObjectsExported int64             `json:"objectsExported"`
		EventsExported  int64             `json:"eventsExported"`
		LastExportKey   string            `json:"lastExportKey"`
		PendingSince    *time.Time        `json:"pendingSince"`
		LastError       *problem          `json:"lastError"`
		Gaps            []stream.Gap      `json:"gaps"`
		Periods         []settings.Period `json:"periods"`
		ExportNode      *clusterNodeView  `json:"exportNode"`
	} `json:"status"`
}

func (j *j1) clusterStatus(t *testing.T, key, account string) clusterStatus {
	t.Helper()
	var s clusterStatus
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account), key, nil), &s)
	return s
}

// settledOwners waits until every account's status (on an up node) names
// an up node as its export node, and each up node exports (its
// j1ds_cluster_owned_accounts) as many accounts as name it, and returns
// each account's export node. A status names the node of the answering
// node's last heartbeat, so it may lag a handover by one renewal.
func (tc *testCluster) settledOwners(keys map[string]string) map[string]*clusterNode {
	t := tc.t
	t.Helper()
	var owners map[string]*clusterNode
	var why string
	deadline := time.Now().Add(time.Minute)
	for {
		owners, why = tc.owners(keys)
		if why == "" {
			return owners
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 1m waiting for the statuses to agree with what each node exports: %s", why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// owners returns each account's export node as the statuses name it, or
// why they do not agree with what the nodes export.
func (tc *testCluster) owners(keys map[string]string) (map[string]*clusterNode, string) {
	t := tc.t
	t.Helper()
	byID := map[string]*clusterNode{}
	for _, n := range tc.up() {
		byID[n.nodeID(t)] = n
	}
	owners := map[string]*clusterNode{}
	counts := map[*clusterNode]int{}
	from := tc.any(0)
	for a, k := range keys {
		en := from.clusterStatus(t, k, a).Status.ExportNode
		if en == nil || byID[en.ID] == nil {
			return nil, fmt.Sprintf("%s's status on %s names export node %+v, not an up node", a, from.name, en)
		}
		owners[a] = byID[en.ID]
		counts[byID[en.ID]]++
	}
	for _, n := range tc.up() {
		if got := n.metric(t, "j1ds_cluster_owned_accounts"); got != float64(counts[n]) {
			return nil, fmt.Sprintf("%s exports %.0f accounts, %d statuses name it", n.name, got, counts[n])
		}
	}
	return owners, ""
}

// waitCaughtUp waits until every account's status, on an up node, shows
// nothing pending, and every account's saved cursor is at its log's end in
// the database, with the log unchanged for two seconds (a sync job
// resumed by a restarted node may still be finalizing when the writers
// stop).
func (tc *testCluster) waitCaughtUp(timeout time.Duration, keys map[string]string) {
	t := tc.t
	t.Helper()
	store := openStore(t, tc.cfg)
	defer store.close()
	st := settings.New(store.settings, nil)
	var lastEnds, why string
	stableSince := time.Now()
	deadline := time.Now().Add(timeout)
	for {
		why = tc.behind(store.log.End, st.Get, keys, &lastEnds, &stableSince)
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for every account's export to catch up: %s", timeout, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// behind returns why the export is not caught up yet, or "".
func (tc *testCluster) behind(end func(string) (uint64, error), get func(string) (settings.Record, error), keys map[string]string, lastEnds *string, stableSince *time.Time) string {
	t := tc.t
	t.Helper()
	var ends strings.Builder
	var behind []string
	for _, a := range slices.Sorted(maps.Keys(keys)) {
		e, err := end(a)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := get(a)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&ends, "%s=%d ", a, e)
		if rec.Stream.Cursor != e {
			why := fmt.Sprintf("%s cursor %d, log end %d", a, rec.Stream.Cursor, e)
			if p := rec.Stream.LastError; p != nil {
				why += fmt.Sprintf(" (last error %s: %s)", p.Code, p.Message)
			}
			behind = append(behind, why)
		}
	}
	if ends.String() != *lastEnds {
		*lastEnds, *stableSince = ends.String(), time.Now()
	}
	if len(behind) > 0 {
		return strings.Join(behind, "; ")
	}
	if time.Since(*stableSince) < 2*time.Second {
		return "the log changed within 2s"
	}
	n := tc.any(0)
	for a, k := range keys {
		if s := n.clusterStatus(t, k, a); s.Status.Enabled && s.Status.PendingSince != nil {
			return fmt.Sprintf("%s's status on %s shows changes pending since %s", a, n.name, s.Status.PendingSince)
		}
	}
	return ""
}

// checkExactlyOnce checks each account's bucket against its log (every
// change since streaming was enabled in exactly one object, byte for byte,
// in commit order; the cursor at the log's end; no gap), reading the
// database while the nodes run.
func (tc *testCluster) checkExactlyOnce(accounts []string) {
	tc.t.Helper()
	for _, a := range accounts {
		checkAgainstLog(tc.t, tc.e.objects(tc.t, streamBucket, a), readLogState(tc.t, tc.cfg, a), a)
	}
}

// restLoad changes many accounts through the REST API of the nodes its
// routes point at, until stopped: each turn picks the next account of its
// share and creates (50%), updates (30%), relates (10%) or deletes (10%)
// one of its entities, then pauses. A change whose answer was lost to a
// node's death is sent again to another node, so a create may meet
// ALREADY_EXISTS and a delete NOT_FOUND.
type restLoad struct {
	t        *testing.T
	c        *robustClient
	name     string
	accounts []string
	keys     map[string]string
	pause    time.Duration

	mu     sync.Mutex
	acked  map[string]int // account/id: the last version acknowledged
	writes atomic.Int64
}

func newRESTLoad(t *testing.T, name string, route *liveURL, accounts []string, keys map[string]string, pause time.Duration) *restLoad {
	return &restLoad{t: t, c: newRobustClient(route), name: name, accounts: accounts, keys: keys, pause: pause, acked: map[string]int{}}
}

func (w *restLoad) ack(account string, b []byte) string {
	var o struct {
		ID      string `json:"_id"`
		Version int    `json:"_version"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.ID == "" {
		w.t.Errorf("%s: answer without _id: %s", account, b)
		return ""
	}
	w.mu.Lock()
	k := account + "/" + o.ID
	w.acked[k] = max(w.acked[k], o.Version)
	w.mu.Unlock()
	w.writes.Add(1)
	return o.ID
}

// ackedVersions returns the last acknowledged version of every entity
// written, keyed by account/id.
func (w *restLoad) ackedVersions() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.acked))
	for k, v := range w.acked {
		out[k] = v
	}
	return out
}

func (w *restLoad) run(ctx context.Context) {
	live := map[string][]string{} // account: entity ids not deleted
	bad := 0
	unexpected := func(account, what string, code int, b []byte) {
		if bad++; bad <= 5 {
			w.t.Errorf("%s: %s: %s: %d %s", w.name, account, what, code, b)
		}
	}
	for i := 0; ctx.Err() == nil; i++ {
		a := w.accounts[i%len(w.accounts)]
		ids := live[a]
		base := "/api/v1/accounts/" + a + "/"
		key := w.keys[a]
		r := rand.Float64()
		switch {
		case len(ids) < 3 || r < 0.50:
			k := fmt.Sprintf("%s-%s-user-%06d", a, w.name, i)
			code, b, retried, err := w.c.call(ctx, "POST", base+"entities", key,
				entity(k, "test_user", []string{"User"}, "n", i, "note", randomText(48)))
			switch {
			case err != nil:
			case code == http.StatusCreated:
				if id := w.ack(a, b); id != "" {
					live[a] = append(ids, id)
				}
			case code == http.StatusConflict && retried: // created before the node died
			default:
				unexpected(a, "create", code, b)
			}
		case r < 0.80:
			id := ids[rand.IntN(len(ids))]
			code, b, _, err := w.c.call(ctx, "PATCH", base+"entities/"+id, key, map[string]any{"n": i, "note": randomText(48)})
			switch {
			case err != nil:
			case code == http.StatusOK:
				w.ack(a, b)
			default:
				unexpected(a, "update", code, b)
			}
		case r < 0.90:
			from, to := ids[rand.IntN(len(ids))], ids[rand.IntN(len(ids))]
			code, b, retried, err := w.c.call(ctx, "POST", base+"relationships", key, map[string]any{
				"_key": fmt.Sprintf("%s-%s-knows-%06d", a, w.name, i), "_type": "test_user_knows_user", "_class": "KNOWS",
				"_fromEntityId": from, "_toEntityId": to, "n": i})
			switch {
			case err != nil:
			case code == http.StatusCreated:
				w.writes.Add(1)
			case code == http.StatusConflict && retried:
			default:
				unexpected(a, "relationship", code, b)
			}
		default:
			n := rand.IntN(len(ids))
			code, b, retried, err := w.c.call(ctx, "DELETE", base+"entities/"+ids[n], key, nil)
			switch {
			case err != nil:
			case code == http.StatusOK:
				w.ack(a, b)
				live[a] = append(ids[:n], ids[n+1:]...)
			case code == http.StatusNotFound && retried: // deleted before the node died
				live[a] = append(ids[:n], ids[n+1:]...)
			default:
				unexpected(a, "delete", code, b)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(w.pause):
		}
	}
}

// checkAcked checks that every write the loads acknowledged is in the
// graph, read through node n.
func checkAcked(t *testing.T, n *clusterNode, keys map[string]string, loads ...*restLoad) {
	t.Helper()
	type ack struct {
		account, id string
		version     int
	}
	var acks []ack
	for _, w := range loads {
		for k, v := range w.ackedVersions() {
			a, id, _ := strings.Cut(k, "/")
			acks = append(acks, ack{a, id, v})
		}
	}
	parallel(len(acks), func(i int) {
		a := acks[i]
		code, b := n.call(t, "GET", "/api/v1/accounts/"+a.account+"/entities/"+a.id, keys[a.account], nil)
		var o struct {
			Version int `json:"_version"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &o) != nil || o.Version < a.version {
			t.Errorf("%s: acknowledged version %d of %s, the graph has %d %s", a.account, a.version, a.id, code, b)
		}
	})
}

// verifyAll runs j1ds verify --compare --json for every account, as
// verifyClean does, three at a time (each on a copy of the account's
// objects, against node n), and fails the test unless every report is
// clean and its compare found every object of the store in the bucket
// and nothing else. It returns the records verified.
func verifyAll(t *testing.T, e *s3Env, n *clusterNode, keys map[string]string) int {
	t.Helper()
	bin := j1dsBinary(t, commandBuild)
	accounts := slices.Sorted(maps.Keys(keys))
	dirs := make([]string, len(accounts))
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	var records atomic.Int64
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i, a := range accounts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rep, out, err := verifyCompare(bin, e, n.url, a, keys[a], dirs[i])
			switch {
			case err != nil:
				t.Errorf("j1ds verify --compare %s: %v\n%s", a, err, out)
			case !rep.Clean():
				t.Errorf("j1ds verify --compare %s: not clean\n%s", a, out)
			case rep.Compare == nil || rep.Compare.Missing != 0 || rep.Compare.Extra != 0 || rep.Compare.Differ != 0 || rep.Compare.Live != rep.Compare.Matching:
				t.Errorf("verify %s: compare %+v, want every object of the store in the bucket and nothing else", a, rep.Compare)
			default:
				records.Add(int64(rep.Records.Total))
			}
		})
	}
	wg.Wait()
	return int(records.Load())
}

// verifyCompare copies an account's objects into dir, laid out like the
// bucket, and runs bin verify --compare --json on it against the j1ds at
// url: a clean run exits 0 with a JSON report.
func verifyCompare(bin string, e *s3Env, url, account, key, dir string) (verify.Report, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rep verify.Report
	c := e.srv.RootClient()
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(streamBucket), Prefix: aws.String(accountPrefix(account))})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return rep, "", fmt.Errorf("list %s: %w", account, err)
		}
		for _, o := range page.Contents {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(streamBucket), Key: o.Key})
			if err != nil {
				return rep, "", fmt.Errorf("get %s: %w", aws.ToString(o.Key), err)
			}
			b, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				return rep, "", fmt.Errorf("read %s: %w", aws.ToString(o.Key), err)
			}
			f := filepath.Join(dir, filepath.FromSlash(aws.ToString(o.Key)))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				return rep, "", err
			}
			if err := os.WriteFile(f, b, 0o644); err != nil {
				return rep, "", err
			}
		}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "verify", "--account", account, "--dir", dir, "--url", url, "--key", key, "--compare", "--json")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	out := stdout.String() + stderr.String()
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return rep, out, fmt.Errorf("exit %v, no JSON report: %w", runErr, err)
	}
	if runErr != nil {
		return rep, out, fmt.Errorf("exit %w, want 0", runErr)
	}
	return rep, out, nil
}
