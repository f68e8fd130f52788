package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
)

// The cluster phase (--store): j1ds serve processes sharing one PostgreSQL
// database as the nodes of a cluster, started from the j1ds binary
// (Config.Binary; by default the running one, since j1ds bench is j1ds) on
// loopback ports and exporting to the bench's versitygw, configured as an
// operator would (flags, and the AWS SDK's variables for credentials and
// the trusted CA). Each measurement runs on a database of its own:
//
//   - idle cost per node: the CPU of each process (/proc/PID/stat) and the
//     statements it sends (j1ds_db_statements_total) over a window, at a
//     few enabled accounts and again at many, once every node has loaded
//     them: the cost should follow the nodes, not the accounts;
//   - failover: one change committed through its API to every account one
//     node exports, that node killed (SIGKILL) as soon as the writes are
//     answered, before its flush interval ends, and the time from the kill
//     to the first object of each of those accounts, which the other
//     nodes export once the dead node's lease has ended;
//   - export throughput: the same backlog, committed before streaming
//     starts, exported by one node and by all of them, taking turns.
//
// Accounts are created and enabled in the database directly, as the
// operator and settings APIs save them (pgstore's Accounts, and
// settings.Service over pgstore's Settings, a passing connection test then
// the settings), not by thousands of HTTP requests; the nodes hear of each
// from the database (LISTEN/NOTIFY), as they hear of settings saved on
// another node.

// clusterDatabase creates a database for one measurement and opens the
// bench's own store on it (which creates the schema); closing it drops the
// database.
func clusterDatabase(ctx context.Context, p *pgServer) (*pgstore.Store, string, func() error, error) {
	u, drop, err := p.database(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	s, err := pgstore.Open(ctx, u, pgstore.Options{})
	if err != nil {
		return nil, "", nil, errors.Join(err, drop())
	}
	return s, u, func() error { return errors.Join(s.Close(), drop()) }, nil
}

// createAccounts creates accounts entitled to stream, as the operator API
// does, enableWorkers at once.
func createAccounts(s *pgstore.Store, names []string) error {
	var next atomic.Int64
	return eachWriter(enableWorkers, func(int) error {
		for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
			if _, err := s.Accounts().CreateAccount(names[i], []string{accounts.EntitlementDataStreaming}); err != nil {
				return fmt.Errorf("create account %s: %w", names[i], err)
			}
		}
		return nil
	})
}

// setUpAccounts creates accounts and enables streaming into bucket from
// the log's end.
func setUpAccounts(s *pgstore.Store, names []string, bucket string) error {
	if err := createAccounts(s, names); err != nil {
		return err
	}
	return enableStreams(s.Settings(), s, names, bucket, false)
}

// accountNames returns n account ids from prefix-first.
func accountNames(prefix string, first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, first+i)
	}
	return out
}

// nodeIdle is one node's idle cost over a window.
type nodeIdle struct {
	CPUFraction    float64 `json:"cpu_fraction"` // of one core
	StatementsPerS float64 `json:"statements_per_s"`
}

// clusterIdle is the idle cost of every node at a number of enabled
// accounts.
type clusterIdle struct {
	Accounts int        `json:"accounts"`
	Nodes    []nodeIdle `json:"nodes"`
}

// mean and worst return the mean and the largest figure over the nodes.
func (c clusterIdle) mean(f func(nodeIdle) float64) float64 {
	sum := 0.0
	for _, n := range c.Nodes {
		sum += f(n)
	}
	return sum / float64(len(c.Nodes))
}

func (c clusterIdle) worst(f func(nodeIdle) float64) float64 {
	w := 0.0
	for _, n := range c.Nodes {
		w = max(w, f(n))
	}
	return w
}

func cpuOf(n nodeIdle) float64        { return n.CPUFraction }
func statementsOf(n nodeIdle) float64 { return n.StatementsPerS }

// measureIdle measures each node's CPU and statements over d.
func (r *clusterRig) measureIdle(ctx context.Context, nodes []*clusterNode, d time.Duration) ([]nodeIdle, error) {
	stmts0 := make([]float64, len(nodes))
	cpu0 := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		m, err := r.metric(ctx, n, "j1ds_db_statements_total")
		if err != nil {
			return nil, err
		}
		stmts0[i] = m[0]
	}
	for i, n := range nodes {
		c, err := n.cpu()
		if err != nil {
			return nil, err
		}
		cpu0[i] = c
	}
	start := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]nodeIdle, len(nodes))
	for i, n := range nodes {
		c, err := n.cpu()
		if err != nil {
			return nil, err
		}
		out[i].CPUFraction = float64(c-cpu0[i]) / float64(time.Since(start))
	}
	elapsed := time.Since(start).Seconds()
	for i, n := range nodes {
		m, err := r.metric(ctx, n, "j1ds_db_statements_total")
		if err != nil {
			return nil, err
		}
		out[i].StatementsPerS = (m[0] - stmts0[i]) / elapsed
	}
	return out, nil
}

// idleSettle is how long the nodes are left alone after loading their
// accounts before an idle window opens.
func idleSettle(window time.Duration) time.Duration { return min(5*time.Second, window/2) }

// benchClusterIdle measures the idle cost per node with c.ClusterIdleBase
// and then c.ClusterIdleAccounts enabled accounts.
func benchClusterIdle(ctx context.Context, c Config, rig *clusterRig, p *pgServer, progress func(string, ...any)) ([]clusterIdle, error) {
	s, store, closeDB, err := clusterDatabase(ctx, p)
	if err != nil {
		return nil, err
	}
	defer closeDB()
	const bucket = "bench-cluster-idle"
	if err := rig.b.bucket(ctx, bucket); err != nil {
		return nil, err
	}
	progress("cluster idle: %d accounts created and enabled, then %d nodes started", c.ClusterIdleBase, c.ClusterNodes)
	if err := setUpAccounts(s, accountNames("idle", 0, c.ClusterIdleBase), bucket); err != nil {
		return nil, err
	}
	var nodes []*clusterNode
	defer func() { rig.stop(nodes) }()
	for range c.ClusterNodes {
		n, err := rig.start(ctx, store)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	var out []clusterIdle
	for _, total := range []int{c.ClusterIdleBase, c.ClusterIdleAccounts} {
		if more := total - c.ClusterIdleBase; more > 0 {
			progress("cluster idle: %d more accounts created and enabled while the nodes run", more)
			start := time.Now()
			if err := setUpAccounts(s, accountNames("idle", c.ClusterIdleBase, more), bucket); err != nil {
				return nil, err
			}
			progress("cluster idle: %d accounts set up in %.1fs", more, time.Since(start).Seconds())
		}
		if err := rig.waitBalanced(ctx, nodes, total, balanceTimeout); err != nil {
			return nil, err
		}
		select {
		case <-time.After(idleSettle(c.ClusterIdleFor)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		progress("cluster idle: %d enabled accounts loaded; measuring each node for %s", total, c.ClusterIdleFor)
		m, err := rig.measureIdle(ctx, nodes, c.ClusterIdleFor)
		if err != nil {
			return nil, err
		}
		ci := clusterIdle{Accounts: total, Nodes: m}
		progress("cluster idle: %d accounts: %.2f%% of a core and %.2f statements/s per node on average (worst %.2f%%, %.2f/s)", total,
			100*ci.mean(cpuOf), ci.mean(statementsOf), 100*ci.worst(cpuOf), ci.worst(statementsOf))
		out = append(out, ci)
	}
	return out, nil
}

// clusterExportRun is one export of the backlog by the cluster.
type clusterExportRun struct {
	Nodes    int
	Events   int
	Duration time.Duration // from the first account enabled to the last object
	CPU      time.Duration // of the nodes over the run
	Objects  int
}

func (r clusterExportRun) eps() float64 { return float64(r.Events) / r.Duration.Seconds() }

// epcs returns the events per CPU-second of the nodes.
func (r clusterExportRun) epcs() float64 { return float64(r.Events) / r.CPU.Seconds() }

// clusterThroughput is the backlog exported by one node and by all: the
// best of the runs of each, by wall clock and per CPU-second.
type clusterThroughput struct {
	Accounts, Changes int
	One, All          float64 // events/s
	OneCPU, AllCPU    float64 // events per CPU-second of the nodes
}

// benchClusterThroughput commits a backlog of c.ClusterBacklogChanges
// changes over c.ClusterBacklogAccounts accounts, then exports it from
// the log's start with one node, and again (into another bucket) with
// c.ClusterNodes nodes, c.rounds() times each, alternately.
func benchClusterThroughput(ctx context.Context, c Config, rig *clusterRig, p *pgServer, progress func(string, ...any)) (clusterThroughput, error) {
	res := clusterThroughput{Accounts: c.ClusterBacklogAccounts, Changes: c.ClusterBacklogChanges}
	s, store, closeDB, err := clusterDatabase(ctx, p)
	if err != nil {
		return res, err
	}
	defer closeDB()
	progress("cluster export: a backlog of %d changes over %d accounts committed before streaming starts", c.ClusterBacklogChanges, c.ClusterBacklogAccounts)
	start := time.Now()
	names := accountNames("backlog", 0, c.ClusterBacklogAccounts)
	if err := createAccounts(s, names); err != nil {
		return res, err
	}
	if err := writeBacklog(s, names, c.ClusterBacklogChanges); err != nil {
		return res, fmt.Errorf("backlog: %w", err)
	}
	// Every change is a backlog, due at once, from a flush interval after
	// the last commit.
	due := time.Now().Add(c.ClusterFlushInterval)
	progress("cluster export: backlog committed in %.1fs (%.0f changes/s, %d accounts at a time)",
		time.Since(start).Seconds(), float64(c.ClusterBacklogChanges)/time.Since(start).Seconds(), backlogWriters)
	ends := make(map[string]uint64, len(names))
	for _, a := range names {
		if ends[a], err = s.End(a); err != nil {
			return res, err
		}
	}
	if err := settle(ctx, s, true); err != nil {
		return res, err
	}

	var nodes []*clusterNode
	defer func() { rig.stop(nodes) }()
	rounds := c.rounds()
	for round := range rounds {
		for _, want := range []int{1, c.ClusterNodes} {
			// Nodes leave (SIGTERM) or join until want run.
			for len(nodes) > want {
				last := nodes[len(nodes)-1]
				nodes = nodes[:len(nodes)-1]
				if err := last.terminate(); err != nil {
					return res, err
				}
			}
			for len(nodes) < want {
				n, err := rig.start(ctx, store)
				if err != nil {
					return res, err
				}
				nodes = append(nodes, n)
			}
			if err := rig.waitBalanced(ctx, nodes, 0, balanceTimeout); err != nil {
				return res, err
			}
			if err := settle(ctx, s, false); err != nil {
				return res, err
			}
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				return res, ctx.Err()
			}
			bucket := fmt.Sprintf("bench-cluster-export-%d-%d", want, round+1)
			progress("cluster export: the backlog exported by %s into %s (run %d of %d)", nodesText(want), bucket, round+1, rounds)
			run, err := rig.exportBacklog(ctx, s, nodes, names, ends, bucket, c.ClusterBacklogChanges)
			if err != nil {
				return res, fmt.Errorf("%s: %w", nodesText(want), err)
			}
			progress("cluster export: %s: %d events in %.2fs, %.0f events/s, %.0f per CPU-second of the nodes",
				nodesText(want), run.Events, run.Duration.Seconds(), run.eps(), run.epcs())
			if want == 1 {
				res.One, res.OneCPU = max(res.One, run.eps()), max(res.OneCPU, run.epcs())
			} else {
				res.All, res.AllCPU = max(res.All, run.eps()), max(res.AllCPU, run.epcs())
			}
			// Streaming off again, untimed: each run enables the accounts
			// the same way.
			if err := disableStreams(s, names); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

func nodesText(n int) string {
	if n == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// backlogWriters is how many accounts writeBacklog commits to at once.
const backlogWriters = 8

// writeBacklog commits changes entities of the ingest corpus spread over
// accounts (each account the same entities, under its own ids), in
// transactions of 500, backlogWriters accounts at a time.
func writeBacklog(s *pgstore.Store, names []string, changes int) error {
	per, extra := changes/len(names), changes%len(names)
	corpus := ingestCorpus(per + 1)
	var next atomic.Int64
	return eachWriter(backlogWriters, func(int) error {
		for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
			part := corpus[:per]
			if i < extra {
				part = corpus
			}
			for ; len(part) > 0; part = part[min(500, len(part)):] {
				if err := upsertEntities(s, names[i], part[:min(500, len(part))]); err != nil {
					return fmt.Errorf("commit to %s: %w", names[i], err)
				}
			}
		}
		return nil
	})
}

// disableStreams turns streaming off for accounts, as the settings API
// does.
func disableStreams(s *pgstore.Store, names []string) error {
	st := settings.New(s.Settings(), nil)
	var next atomic.Int64
	return eachWriter(enableWorkers, func(int) error {
		for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
			r, err := st.Get(names[i])
			if err != nil {
				return err
			}
			off := r.Settings
			off.Enabled = false
			if _, err := st.Apply(names[i], off, func() (uint64, error) { return s.End(names[i]) }); err != nil {
				return fmt.Errorf("disable streaming of %s: %w", names[i], err)
			}
		}
		return nil
	})
}

// exported sums the events the nodes exported so far and the CPU they
// used.
func (r *clusterRig) exported(ctx context.Context, nodes []*clusterNode) (events float64, cpu time.Duration, err error) {
	for _, n := range nodes {
		m, err := r.metric(ctx, n, "j1ds_export_events_total")
		if err != nil {
			return 0, 0, err
		}
		c, err := n.cpu()
		if err != nil {
			return 0, 0, err
		}
		events, cpu = events+m[0], cpu+c
	}
	return events, cpu, nil
}

// exportBacklog enables the accounts from the log's start into a new
// bucket and waits until every cursor reaches its log's end.
func (r *clusterRig) exportBacklog(ctx context.Context, s *pgstore.Store, nodes []*clusterNode, names []string, ends map[string]uint64, bucket string, want int) (clusterExportRun, error) {
	run := clusterExportRun{Nodes: len(nodes)}
	if err := r.b.bucket(ctx, bucket); err != nil {
		return run, err
	}
	events0, cpu0, err := r.exported(ctx, nodes)
	if err != nil {
		return run, err
	}
	target := settings.Settings{BucketName: bucket, AWSAccountID: benchOwnerAccount}.Target()
	start := time.Now()
	if err := enableStreams(s.Settings(), s, names, bucket, true); err != nil {
		return run, err
	}
	var states []stream.State
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		var err error
		if states, err = s.Settings().Enabled(); err != nil {
			return run, err
		}
		finished := 0
		for _, st := range states {
			if end, ok := ends[st.Account]; ok && st.Target == target && st.Cursor == end {
				finished++
			}
		}
		done = finished == len(names)
		if !done && time.Since(start) > 10*time.Minute {
			return run, fmt.Errorf("%d of %d accounts exported after 10 minutes", finished, len(names))
		}
	}
	var last time.Time
	for _, st := range states {
		if _, ok := ends[st.Account]; ok && st.LastExportAt.After(last) {
			last = st.LastExportAt
		}
	}
	run.Duration = last.Sub(start)
	events, cpu, err := r.exported(ctx, nodes)
	if err != nil {
		return run, err
	}
	run.Events, run.CPU = int(events-events0), cpu-cpu0
	if run.Events != want {
		return run, fmt.Errorf("the nodes exported %d events, want %d", run.Events, want)
	}
	n, err := r.b.count(ctx, bucket)
	if err != nil {
		return run, err
	}
	if n < len(names) {
		return run, fmt.Errorf("the bucket holds %d objects for %d accounts", n, len(names))
	}
	run.Objects = n
	return run, nil
}

// benchCluster runs the cluster phase and fills its figures in r.
func benchCluster(ctx context.Context, c Config, dir string, b *benchS3, p *pgServer, r *report, progress func(string, ...any)) error {
	rig, err := newClusterRig(c, dir, b)
	if err != nil {
		return err
	}
	defer rig.Close()
	begin := time.Now()
	r.clusterReport = &clusterReport{}
	defer func() { r.ClusterSeconds = time.Since(begin).Seconds() }()
	r.ClusterNodes, r.ClusterLeaseTTLS, r.ClusterFlushIntervalS = c.ClusterNodes, c.ClusterLeaseTTL.Seconds(), c.ClusterFlushInterval.Seconds()

	idle, err := benchClusterIdle(ctx, c, rig, p, progress)
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	r.ClusterIdleForS = c.ClusterIdleFor.Seconds()
	r.ClusterIdleBaseAccounts, r.ClusterIdleAccounts = c.ClusterIdleBase, c.ClusterIdleAccounts
	r.ClusterIdle = idle
	few, many := idle[0], idle[len(idle)-1]
	r.ClusterIdleCPU, r.ClusterIdleCPUMax = many.mean(cpuOf), many.worst(cpuOf)
	r.ClusterIdleStatements, r.ClusterIdleStatementsMax = many.mean(statementsOf), many.worst(statementsOf)
	r.ClusterIdleBaseCPU, r.ClusterIdleBaseStatements = few.mean(cpuOf), few.mean(statementsOf)
	r.ClusterIdleCPUVsBase = ratio(r.ClusterIdleCPU, r.ClusterIdleBaseCPU)
	r.ClusterIdleStatementsVsBase = ratio(r.ClusterIdleStatements, r.ClusterIdleBaseStatements)

	fo, err := benchClusterFailover(ctx, c, rig, p, progress)
	if err != nil {
		return fmt.Errorf("failover: %w", err)
	}
	r.ClusterFailoverAccounts, r.ClusterFailoverWritten, r.ClusterFailoverMeasured = fo.Accounts, fo.Written, fo.Measured
	r.ClusterFailoverFlushedBefore, r.ClusterFailoverMissing = fo.FlushedBefore, fo.Missing
	r.ClusterFailoverP50, r.ClusterFailoverP99, r.ClusterFailoverMax = fo.P50, fo.P99, fo.Max
	r.ClusterFailoverClaimMin, r.ClusterFailoverClaimMax = fo.ClaimMin, fo.ClaimMax
	r.ClusterFailoverWriteS = fo.WriteSeconds

	tp, err := benchClusterThroughput(ctx, c, rig, p, progress)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	r.ClusterBacklogAccounts, r.ClusterBacklogChanges = tp.Accounts, tp.Changes
	r.ClusterExportOneNode, r.ClusterExport = tp.One, tp.All
	r.ClusterExportOneNodePerCPU, r.ClusterExportPerCPU = tp.OneCPU, tp.AllCPU
	r.ClusterExportVsOneNode = r.ClusterExport / r.ClusterExportOneNode
	return nil
}

// ratio returns a/b, 0 when b is 0 (an idle figure too small to measure).
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
