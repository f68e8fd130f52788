package bench

import (
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/exporter"
)

// Config sizes a bench run.
type Config struct {
	Quick bool
	JSON  bool
	Dir   string
	// Ingest.
	Entities, Batch, Writers int
	// The export corpus: Changes changes over Accounts accounts.
	Changes, Accounts int
	// The burst.
	BurstChanges, BurstAccounts int
	// Idle accounts.
	IdleAccounts int
	IdleFor      time.Duration
	// Latency and cost under a steady load.
	LatencyAccounts int
	LatencyFor      time.Duration
	// Slow or failing buckets (slowbuckets.go): SlowBucketAccounts
	// accounts writing a steady load for SlowBucketFor at a flush interval
	// of SlowBucketInterval, 5% of them into a bucket that answers
	// SlowBucketDelay late, then refuses.
	SlowBucketAccounts                                 int
	SlowBucketFor, SlowBucketDelay, SlowBucketInterval time.Duration
	// Profile is a directory for CPU profiles of the export, burst and
	// ingest phases ("": none).
	Profile string
	// Only lists the phases to run (nil: all of phases).
	Only []string
	// Store adds the PostgreSQL backend to the export and ingest phases,
	// and runs the cluster phase: a postgres:// URL of a server to
	// measure, or StoreLocal for one the bench starts (localpg); ""
	// measures the embedded store only.
	Store string
	// The cluster phase (with Store): ClusterNodes j1ds serve processes on
	// one database. Idle cost at ClusterIdleBase and at ClusterIdleAccounts
	// enabled accounts, each node measured over ClusterIdleFor; failover
	// with ClusterFailoverAccounts enabled accounts; export of a backlog of
	// ClusterBacklogChanges changes over ClusterBacklogAccounts accounts.
	// The nodes flush every ClusterFlushInterval (short, so that the
	// failover's changes are due when their node dies); every node's
	// lease is ClusterLeaseTTL.
	ClusterNodes                                  int
	ClusterIdleBase, ClusterIdleAccounts          int
	ClusterIdleFor                                time.Duration
	ClusterFailoverAccounts                       int
	ClusterBacklogAccounts, ClusterBacklogChanges int
	ClusterFlushInterval, ClusterLeaseTTL         time.Duration
	// Binary is the j1ds binary the cluster phase starts nodes from
	// (default: this process's executable, as j1ds bench is j1ds).
	Binary string
}

// StoreLocal is the --store value that has the bench start a PostgreSQL
// server of its own for the run.
const StoreLocal = "local"

// postgres reports whether the run measures the PostgreSQL backend.
func (c Config) postgres() bool { return c.Store != "" }

// phases are the phases of a run, in order; --only picks some.
var phases = []string{"idle", "burst", "export", "latency", "ingest", "cluster", "slowbuckets"}

// runs reports whether phase is part of the run.
func (c Config) runs(phase string) bool {
	return len(c.Only) == 0 || slices.Contains(c.Only, phase)
}

// profile returns the path of a profile, "" when not profiling.
func (c Config) profile(name string) string {
	if c.Profile == "" {
		return ""
	}
	return filepath.Join(c.Profile, name)
}

// bestOf is how many times a full run measures each figure that a ratio
// is built from; the best run counts. A run the machine slowed down then
// counts no more on one side of a ratio than on the other.
const bestOf = 3

// rounds returns how many times each figure behind a ratio is measured:
// bestOf, or once with --quick. Every side of every ratio is measured the
// same number of times.
func (c Config) rounds() int {
	if c.Quick {
		return 1
	}
	return bestOf
}

// quickSizes are the sizes of --quick (CI smoke use, under a minute);
// flags given explicitly win.
var quickSizes = map[string]string{
	"entities": "5000", "changes": "30000", "accounts": "10",
	"burst-changes": "50000", "burst-accounts": "100",
	"idle-accounts": "1000", "idle-for": "2s",
	"latency-accounts": "10", "latency-for": "5s",
	"slow-bucket-accounts": "20", "slow-bucket-for": "6s", "slow-bucket-delay": "3s", "slow-bucket-interval": "1s",
	"cluster-idle-accounts": "1000", "cluster-idle-for": "10s", "cluster-failover-accounts": "300",
	"cluster-backlog-accounts": "24", "cluster-backlog-changes": "24000",
}

// DefaultConfig returns the sizes of a full run.
func DefaultConfig() Config {
	return Config{
		Entities: 50000, Batch: 500, Writers: 4,
		Changes: 300000, Accounts: 100,
		BurstChanges: 1000000, BurstAccounts: 1000,
		IdleAccounts: 10000, IdleFor: 10 * time.Second,
		LatencyAccounts: 50, LatencyFor: 30 * time.Second,
		SlowBucketAccounts: 200, SlowBucketFor: 40 * time.Second, SlowBucketDelay: 20 * time.Second, SlowBucketInterval: 5 * time.Second,
		ClusterNodes: 3, ClusterIdleBase: 100, ClusterIdleAccounts: 10000, ClusterIdleFor: time.Minute,
		ClusterFailoverAccounts: 3000, ClusterBacklogAccounts: 96, ClusterBacklogChanges: 240000,
		ClusterFlushInterval: 2 * time.Second, ClusterLeaseTTL: cluster.DefaultLeaseTTL,
	}
}

// NewFlagSet returns the flags of j1ds bench, each bound to its field of c
// with c's value as the default.
func NewFlagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&c.Quick, "quick", c.Quick, "small sizes and one run of each measurement instead of the best of three: the whole run in under a minute (CI smoke use)")
	fs.BoolVar(&c.JSON, "json", c.JSON, "print one JSON object instead of a table (progress still goes to stderr)")
	fs.StringVar(&c.Dir, "dir", c.Dir, "directory for the scratch databases and S3 data (default: a temporary directory)")
	fs.IntVar(&c.Entities, "entities", c.Entities, "ingest: entities written by each measurement")
	fs.IntVar(&c.Batch, "batch", c.Batch, "ingest: entities per transaction (and per upload request)")
	fs.IntVar(&c.Writers, "writers", c.Writers, "ingest: concurrent writers, each on its own account, in the concurrent runs")
	fs.IntVar(&c.Changes, "changes", c.Changes, "export: changes in the corpus (the pre-filled log)")
	fs.IntVar(&c.Accounts, "accounts", c.Accounts, "export: accounts the corpus is spread over (one object each)")
	fs.IntVar(&c.BurstChanges, "burst-changes", c.BurstChanges, "memory: changes committed in the burst")
	fs.IntVar(&c.BurstAccounts, "burst-accounts", c.BurstAccounts, "memory: accounts of the burst")
	fs.IntVar(&c.IdleAccounts, "idle-accounts", c.IdleAccounts, "idle: enabled accounts with no changes")
	fs.DurationVar(&c.IdleFor, "idle-for", c.IdleFor, "idle: how long CPU is measured")
	fs.IntVar(&c.LatencyAccounts, "latency-accounts", c.LatencyAccounts, "latency: accounts writing a steady load")
	fs.DurationVar(&c.LatencyFor, "latency-for", c.LatencyFor, "latency: how long the steady load runs")
	fs.IntVar(&c.SlowBucketAccounts, "slow-bucket-accounts", c.SlowBucketAccounts, "slowbuckets: accounts writing a steady load, 5% of them into a bucket that turns slow, then refuses")
	fs.DurationVar(&c.SlowBucketFor, "slow-bucket-for", c.SlowBucketFor, "slowbuckets: how long each run (all buckets healthy, then with the faulty ones: slow the first half, refusing the second) writes")
	fs.DurationVar(&c.SlowBucketDelay, "slow-bucket-delay", c.SlowBucketDelay, "slowbuckets: how late a slow bucket answers each request")
	fs.DurationVar(&c.SlowBucketInterval, "slow-bucket-interval", c.SlowBucketInterval, "slowbuckets: the exporter's flush interval")
	fs.StringVar(&c.Profile, "profile", c.Profile, "directory for CPU profiles (pprof) of the export, burst and ingest phases")
	fs.IntVar(&c.ClusterNodes, "cluster-nodes", c.ClusterNodes, "cluster (with --store): j1ds serve processes started on one database")
	fs.IntVar(&c.ClusterIdleBase, "cluster-idle-base", c.ClusterIdleBase, "cluster: enabled accounts of the first idle measurement")
	fs.IntVar(&c.ClusterIdleAccounts, "cluster-idle-accounts", c.ClusterIdleAccounts, "cluster: enabled accounts of the second idle measurement")
	fs.DurationVar(&c.ClusterIdleFor, "cluster-idle-for", c.ClusterIdleFor, "cluster: how long each node's idle CPU and statements are measured (a minute holds every periodic task of a node: the log's retention pass runs once a minute)")
	fs.IntVar(&c.ClusterFailoverAccounts, "cluster-failover-accounts", c.ClusterFailoverAccounts, "cluster: enabled accounts over the nodes when one is killed")
	fs.IntVar(&c.ClusterBacklogAccounts, "cluster-backlog-accounts", c.ClusterBacklogAccounts, "cluster: accounts of the backlog exported by one node, then by all")
	fs.IntVar(&c.ClusterBacklogChanges, "cluster-backlog-changes", c.ClusterBacklogChanges, "cluster: changes in the backlog")
	fs.DurationVar(&c.ClusterFlushInterval, "cluster-flush-interval", c.ClusterFlushInterval, "cluster: the nodes' --flush-interval")
	fs.DurationVar(&c.ClusterLeaseTTL, "cluster-lease-ttl", c.ClusterLeaseTTL, "cluster: the nodes' --lease-ttl")
	fs.StringVar(&c.Store, "store", c.Store, "also measure the PostgreSQL backend in the export and ingest phases, and run the cluster phase: a postgres://USER@HOST:PORT/DB?sslmode=... URL, "+
		"whose user may create databases (the bench creates and drops its own, j1ds_bench_*, and writes nothing to DB), or \""+StoreLocal+"\" to start a PostgreSQL of the bench's own "+
		"from Debian's package (/usr/lib/postgresql/*/bin, or $J1DS_PG_BINDIR; as the postgres user when root) for the run (default: the embedded store only)")
	fs.Func("only", "run only these phases, comma-separated: "+strings.Join(phases, ", ")+" (default: all; cluster with --store only); the goals of the others are not judged", func(v string) error {
		c.Only = nil
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); !slices.Contains(phases, p) {
				return fmt.Errorf("unknown phase %q: the phases are %s", p, strings.Join(phases, ", "))
			}
			c.Only = append(c.Only, p)
		}
		return nil
	})
	return fs
}

// ApplyQuick sets the sizes of --quick on fs, a flag set from NewFlagSet,
// except for the flags keep names: those the user gave.
func ApplyQuick(fs *flag.FlagSet, keep func(name string) bool) error {
	for name, v := range quickSizes {
		if !keep(name) {
			if err := fs.Set(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// Validate checks the sizes; errors name the flag.
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"--entities", c.Entities}, {"--batch", c.Batch}, {"--writers", c.Writers}, {"--changes", c.Changes},
		{"--accounts", c.Accounts}, {"--burst-changes", c.BurstChanges}, {"--burst-accounts", c.BurstAccounts},
		{"--idle-accounts", c.IdleAccounts}, {"--latency-accounts", c.LatencyAccounts}} {
		if f.v < 1 {
			return fmt.Errorf("%s %d must be positive", f.name, f.v)
		}
	}
	switch {
	case c.Changes < c.Accounts:
		return fmt.Errorf("--changes %d must be at least --accounts %d", c.Changes, c.Accounts)
	case c.BurstChanges < c.BurstAccounts:
		return fmt.Errorf("--burst-changes %d must be at least --burst-accounts %d", c.BurstChanges, c.BurstAccounts)
	case c.IdleFor < 100*time.Millisecond:
		return fmt.Errorf("--idle-for %s must be at least 100ms", c.IdleFor)
	case c.LatencyFor < time.Second:
		return fmt.Errorf("--latency-for %s must be at least 1s", c.LatencyFor)
	case c.Store != "" && c.Store != StoreLocal && !strings.HasPrefix(c.Store, "postgres://") && !strings.HasPrefix(c.Store, "postgresql://"):
		return fmt.Errorf("--store %q must be a postgres:// URL or %q", redactURL(c.Store), StoreLocal)
	case c.Store == "" && slices.Contains(c.Only, "cluster"):
		return fmt.Errorf("--only cluster needs --store: the cluster phase runs j1ds serve nodes on PostgreSQL (--store %s starts one for the run)", StoreLocal)
	}
	if c.runs("slowbuckets") {
		switch {
		case c.SlowBucketAccounts < 2:
			return fmt.Errorf("--slow-bucket-accounts %d must be at least 2 (one faulty, one healthy)", c.SlowBucketAccounts)
		case c.SlowBucketFor < 2*time.Second:
			return fmt.Errorf("--slow-bucket-for %s must be at least 2s", c.SlowBucketFor)
		case c.SlowBucketDelay < 0 || c.SlowBucketDelay > 5*time.Minute:
			return fmt.Errorf("--slow-bucket-delay %s must be between 0 and 5m", c.SlowBucketDelay)
		case c.SlowBucketInterval < exporter.MinFlushInterval:
			return fmt.Errorf("--slow-bucket-interval %s must be at least %s", c.SlowBucketInterval, exporter.MinFlushInterval)
		}
	}
	if c.postgres() && c.runs("cluster") {
		return c.validateCluster()
	}
	return nil
}

// validateCluster checks the sizes of the cluster phase, which runs only
// with --store.
func (c Config) validateCluster() error {
	switch {
	case c.ClusterIdleBase < 1:
		return fmt.Errorf("--cluster-idle-base %d must be positive", c.ClusterIdleBase)
	case c.ClusterBacklogAccounts < 1:
		return fmt.Errorf("--cluster-backlog-accounts %d must be positive", c.ClusterBacklogAccounts)
	case c.ClusterNodes < 2 || c.ClusterNodes > 16:
		return fmt.Errorf("--cluster-nodes %d must be between 2 and 16 (the failover kills one; the export compares one node with all)", c.ClusterNodes)
	case c.ClusterIdleAccounts < c.ClusterIdleBase:
		return fmt.Errorf("--cluster-idle-accounts %d must be at least --cluster-idle-base %d", c.ClusterIdleAccounts, c.ClusterIdleBase)
	case c.ClusterIdleFor < time.Second:
		return fmt.Errorf("--cluster-idle-for %s must be at least 1s", c.ClusterIdleFor)
	case c.ClusterFailoverAccounts < c.ClusterNodes:
		return fmt.Errorf("--cluster-failover-accounts %d must be at least --cluster-nodes %d", c.ClusterFailoverAccounts, c.ClusterNodes)
	case c.ClusterBacklogChanges < c.ClusterBacklogAccounts:
		return fmt.Errorf("--cluster-backlog-changes %d must be at least --cluster-backlog-accounts %d", c.ClusterBacklogChanges, c.ClusterBacklogAccounts)
	case c.ClusterFlushInterval < exporter.MinFlushInterval:
		return fmt.Errorf("--cluster-flush-interval %s must be at least %s", c.ClusterFlushInterval, exporter.MinFlushInterval)
	case c.ClusterLeaseTTL < cluster.MinLeaseTTL || c.ClusterLeaseTTL > time.Hour:
		return fmt.Errorf("--cluster-lease-ttl %s must be between %s and 1h", c.ClusterLeaseTTL, cluster.MinLeaseTTL)
	}
	return nil
}
