package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/pgstore"
)

// TestBenchSmoke runs the whole bench end to end at tiny sizes (versitygw
// included) and checks that the JSON report has every key compared across
// runs with a number that makes sense. It checks no timing: figures vary with the
// machine.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts versitygw and runs every phase of the bench")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold build of versitygw
	defer cancel()
	c := Config{
		Quick: true, JSON: true, Dir: t.TempDir(),
		Entities: 500, Batch: 100, Writers: 2,
		Changes: 2000, Accounts: 4,
		BurstChanges: 2000, BurstAccounts: 20,
		IdleAccounts: 50, IdleFor: 200 * time.Millisecond,
		LatencyAccounts: 3, LatencyFor: 2 * time.Second,
		SlowBucketAccounts: 20, SlowBucketFor: 3 * time.Second, SlowBucketDelay: 2 * time.Second, SlowBucketInterval: time.Second,
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := Run(ctx, c, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, stderr.String())
	}
	var r map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the report is not one JSON object: %v\n%s", err, stdout.String())
	}
	number := func(k string) (float64, bool) {
		v, ok := r[k].(float64)
		if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s is %v, want a finite number", k, r[k])
			return 0, false
		}
		return v, true
	}
	for _, k := range []string{
		"encode_limit_events_per_s", "baseline_events_per_s", "export_events_per_s",
		"export_vs_limit", "export_vs_baseline", "ingest_events_per_s", "ingest_vs_raw_pebble",
		"burst_peak_rss_bytes", "requests_per_object", "compression_ratio",
		"slow_buckets_baseline_p99_s", "slow_buckets_healthy_p99_s",
	} {
		if v, ok := number(k); ok && v <= 0 {
			t.Errorf("%s is %v, want a positive figure", k, v)
		}
	}
	// Latency is over the flush interval and may be below it.
	number("latency_p99_over_interval_s")
	// An idle process may use no CPU that getrusage can see.
	if v, ok := number("idle_cpu_fraction"); ok && v < 0 {
		t.Errorf("idle_cpu_fraction is %v", v)
	}
	if r["requests_per_object"] != 1.0 {
		t.Errorf("requests_per_object %v: objects below the multipart threshold take one PutObject", r["requests_per_object"])
	}
	if ratio, _ := r["compression_ratio"].(float64); ratio < minCompressionRatio {
		t.Errorf("serve's default setting compresses %.2fx, below %.1f", ratio, minCompressionRatio)
	}
	// Every side of every ratio is measured the same number of times: with
	// --quick, every measurement that runs more than once in a full run
	// (encode limits, gzip only, baseline, exports, ingest) runs once.
	if r["runs"] != 1.0 {
		t.Errorf("runs %v with --quick, want 1", r["runs"])
	}
	counted := regexp.MustCompile(`\(run \d+ of (\d+)\)`).FindAllStringSubmatch(stderr.String(), -1)
	if len(counted) == 0 {
		t.Errorf("no measurement says its run in the progress:\n%s", stderr.String())
	}
	for _, m := range counted {
		if m[1] != "1" {
			t.Errorf("with --quick a measurement runs %s times, the others once: %s", m[1], m[0])
		}
	}
}

// TestBenchOnly: --only picks phases by name, and a wrong name is refused
// with the list of phases.
func TestBenchOnly(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		c := DefaultConfig()
		fs := NewFlagSet(&c)
		fs.SetOutput(io.Discard)
		return c, fs.Parse(args)
	}
	c, err := parse("--only", "ingest, export")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range phases {
		if want := p == "ingest" || p == "export"; c.runs(p) != want {
			t.Errorf("--only ingest,export: runs(%s) = %v", p, !want)
		}
	}
	if c, _ := parse(); !c.runs("burst") || !c.runs("idle") {
		t.Error("without --only every phase runs")
	}
	if c, _ := parse("--only", "cluster"); c.Validate() == nil {
		t.Error("--only cluster without --store: accepted, want refused (its nodes run on PostgreSQL)")
	}
	_, err = parse("--only", "export,brust")
	if err == nil || !strings.Contains(err.Error(), `unknown phase "brust"`) || !strings.Contains(err.Error(), "idle, burst, export, latency, ingest") {
		t.Errorf("--only export,brust: %v, want the unknown phase named and the phases listed", err)
	}
}

// TestRawBaselineWritesTheStoresBytes: the raw Pebble baseline of the
// ingest bench writes exactly what the graph store wrote, every key and
// value, one batch per transaction, so the ratio compares the store with
// Pebble doing the same writes.
func TestRawBaselineWritesTheStoresBytes(t *testing.T) {
	corpus := ingestCorpus(300)
	const batch = 40
	for _, writers := range []int{1, 2} {
		batches, err := storeBatches(t.TempDir(), corpus, batch, writers)
		if err != nil {
			t.Fatal(err)
		}
		perWriter := (len(corpus) + writers - 1) / writers
		for w, bs := range batches {
			if want := (perWriter + batch - 1) / batch; len(bs) != want {
				t.Errorf("%d writers, writer %d: %d batches, want one per transaction, %d", writers, w, len(bs), want)
			}
		}
		storeDir, rawDir := t.TempDir(), t.TempDir()
		if _, err := benchStore(storeDir, corpus, batch, writers); err != nil {
			t.Fatal(err)
		}
		if n, err := benchRawPebble(rawDir, batches, len(corpus), false); err != nil || n != len(corpus) {
			t.Fatalf("raw baseline: %d entities, %v", n, err)
		}
		want, got := dumpPebble(t, storeDir), dumpPebble(t, rawDir)
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%d writers: the raw baseline wrote %d keys, the store %d", writers, len(got), len(want))
		}
		// Two runs differ in commit times (in log entries and objects),
		// and with concurrent writers in the LSNs the accounts get:
		// compare the keys, and values where neither can differ.
		for k, v := range want {
			gv, ok := got[k]
			switch {
			case k[0] == 'L' || k[0] == 'G':
				if writers == 1 && (!ok || len(gv) != len(v)) {
					t.Errorf("log key %q: raw value of %d bytes (present %v), store %d", k, len(gv), ok, len(v))
				}
			case !ok:
				t.Errorf("%d writers: key %q of the store is missing from the raw baseline", writers, k)
			case k[0] == 'o' && len(gv) != len(v), k[0] != 'o' && gv != v:
				t.Errorf("%d writers: key %q: raw %q, store %q", writers, k, gv, v)
			}
		}
	}
}

func dumpPebble(t *testing.T, dir string) map[string]string {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := make(map[string]string)
	for it.First(); it.Valid(); it.Next() {
		out[string(it.Key())] = string(it.Value())
	}
	return out
}

// TestBenchPostgres runs the phases that measure PostgreSQL (--store
// local: a server of the bench's own) at tiny sizes and checks that every
// PostgreSQL figure is there and makes sense, and that the table judges
// both goals. It checks no timing.
func TestBenchPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts versitygw and PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := Config{
		Quick: true, Dir: t.TempDir(), Store: StoreLocal, Only: []string{"export", "ingest"},
		Entities: 300, Batch: 50, Writers: 2,
		Changes: 1200, Accounts: 3,
		BurstChanges: 1, BurstAccounts: 1, IdleAccounts: 1, IdleFor: time.Second,
		LatencyAccounts: 1, LatencyFor: time.Second,
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := Run(ctx, c, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, stderr.String())
	}
	table := stdout.String()
	for _, want := range []string{"PostgreSQL 1", "export reading PostgreSQL", "ingest on PostgreSQL",
		"export from PostgreSQL ≥ 0.5x from Pebble", "store ingest on PostgreSQL ≥ 0.5x raw PostgreSQL"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}

	c.JSON, c.Only, c.Dir = true, []string{"ingest"}, t.TempDir()
	stdout.Reset()
	if err := Run(ctx, c, &stdout, &stderr); err != nil {
		t.Fatalf("bench --json: %v\nprogress:\n%s", err, stderr.String())
	}
	var r map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the report is not one JSON object: %v\n%s", err, stdout.String())
	}
	for _, k := range []string{"pg_raw_events_per_s", "pg_ingest_events_per_s", "pg_ingest_vs_raw", "pg_raw_concurrent_eps",
		"pg_ingest_concurrent_eps", "pg_ingest_concurrent_vs_raw", "pg_sync_api_events_per_s", "pg_sync_api_vs_raw"} {
		if v, ok := r[k].(float64); !ok || v <= 0 || math.IsInf(v, 0) {
			t.Errorf("%s is %v, want a positive figure", k, r[k])
		}
	}
	if s, _ := r["postgres"].(string); !strings.HasPrefix(s, "PostgreSQL ") {
		t.Errorf("postgres is %q, want the server described", r["postgres"])
	}
}

// TestBenchWithoutStore: without --store the JSON report has no
// PostgreSQL key: a run of the embedded store alone reports what it did.
func TestBenchWithoutStore(t *testing.T) {
	b, err := json.Marshal(&report{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"pg_`) || strings.Contains(string(b), `"postgres"`) || strings.Contains(string(b), `"cluster_`) {
		t.Errorf("a report without --store has PostgreSQL keys: %s", b)
	}
}

// TestBenchStoreFlag: --store takes a postgres:// URL or "local", and a
// wrong value is refused without echoing its password.
func TestBenchStoreFlag(t *testing.T) {
	for _, tc := range []struct {
		store, err string
	}{
		{"", ""},
		{"local", ""},
		{"postgres://bench@db.example:5432/bench?sslmode=require", ""},
		{"postgresql://bench@db.example/bench", ""},
		{"mysql://bench:hunter2@db.example/bench", "--store"},
		{"host=db.example password=hunter2", "--store"},
	} {
		c := DefaultConfig()
		fs := NewFlagSet(&c)
		fs.SetOutput(io.Discard)
		if err := fs.Parse([]string{"--store", tc.store}); err != nil {
			t.Fatal(err)
		}
		err := c.Validate()
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("--store %q: %v", tc.store, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("--store %q: %v, want an error naming %s", tc.store, err, tc.err)
		case err != nil && strings.Contains(err.Error(), "hunter2"):
			t.Errorf("--store %q: the error shows the password: %v", tc.store, err)
		}
	}
}

// TestRawPostgresWritesTheStoresRows: the raw PostgreSQL baseline of the
// ingest bench writes exactly the rows the graph store wrote (objects, log
// entries, log heads), one transaction each, so the ratio compares the
// store with PostgreSQL doing the same writes.
func TestRawPostgresWritesTheStoresRows(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := startPostgres(ctx, StoreLocal)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	corpus := ingestCorpus(300)
	const batch = 40
	for _, writers := range []int{1, 2} {
		s, closeStore, err := p.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer closeStore()
		if _, err := writeCorpus(s, corpus, batch, writers); err != nil {
			t.Fatal(err)
		}
		txns, err := storeRows(ctx, s, writers)
		if err != nil {
			t.Fatal(err)
		}
		perWriter := (len(corpus) + writers - 1) / writers
		for w, ts := range txns {
			if want := (perWriter + batch - 1) / batch; len(ts) != want {
				t.Errorf("%d writers, writer %d: %d transactions, want %d", writers, w, len(ts), want)
			}
		}
		raw, closeRaw, err := p.open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer closeRaw()
		if n, err := writeRawPostgres(ctx, raw, txns, len(corpus)); err != nil || n != len(corpus) {
			t.Fatalf("raw baseline: %d entities, %v", n, err)
		}
		for _, table := range []string{"objects", "log", "log_heads"} {
			want, got := dumpTable(t, s, table), dumpTable(t, raw, table)
			if len(want) == 0 || len(got) != len(want) {
				t.Fatalf("%d writers: %s: the raw baseline wrote %d rows, the store %d", writers, table, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("%d writers: %s row %d differs:\nraw   %.200s\nstore %.200s", writers, table, i, got[i], want[i])
					break
				}
			}
		}
	}
}

// dumpTable returns every row of a table as text, in primary key order.
func dumpTable(t *testing.T, s *pgstore.Store, table string) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), "SELECT t::text FROM "+table+" t ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBenchCluster runs the cluster phase (--store local) at tiny sizes,
// with nodes started from a j1ds built for the test, and checks that every
// cluster figure is there and makes sense: each node measured at both
// numbers of accounts, every account of the killed node exported by
// another (or by itself before it died), and both exports. It checks no
// timing.
func TestBenchCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds j1ds and starts versitygw, PostgreSQL and j1ds nodes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "j1ds")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/j1ds/j1ds/cmd/j1ds").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c := DefaultConfig()
	c.Quick, c.JSON, c.Dir, c.Store, c.Only, c.Binary = true, true, t.TempDir(), StoreLocal, []string{"cluster"}, bin
	c.ClusterNodes, c.ClusterIdleBase, c.ClusterIdleAccounts, c.ClusterIdleFor = 2, 5, 20, time.Second
	c.ClusterFailoverAccounts, c.ClusterBacklogAccounts, c.ClusterBacklogChanges = 20, 4, 400
	c.ClusterFlushInterval, c.ClusterLeaseTTL = time.Second, 2*time.Second
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := Run(ctx, c, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\nprogress:\n%s", err, stderr.String())
	}
	var r struct {
		Nodes    int           `json:"cluster_nodes"`
		Idle     []clusterIdle `json:"cluster_idle"`
		Written  int           `json:"cluster_failover_written_accounts"`
		Measured int           `json:"cluster_failover_measured_accounts"`
		Before   int           `json:"cluster_failover_flushed_before_kill"`
		Missing  int           `json:"cluster_failover_missing_accounts"`
		P50      float64       `json:"cluster_failover_p50_s"`
		P99      float64       `json:"cluster_failover_p99_s"`
		Max      float64       `json:"cluster_failover_max_s"`
		One      float64       `json:"cluster_export_one_node_events_per_s"`
		All      float64       `json:"cluster_export_events_per_s"`
		Ratio    float64       `json:"cluster_export_vs_one_node"`
		Seconds  float64       `json:"cluster_s"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the report is not one JSON object: %v\n%s", err, stdout.String())
	}
	if r.Nodes != 2 || len(r.Idle) != 2 || r.Idle[0].Accounts != 5 || r.Idle[1].Accounts != 20 {
		t.Errorf("idle measured %+v with %d nodes, want 2 nodes at 5 and 20 accounts", r.Idle, r.Nodes)
	}
	for _, ci := range r.Idle {
		if len(ci.Nodes) != 2 {
			t.Errorf("%d accounts: %d nodes measured, want 2", ci.Accounts, len(ci.Nodes))
		}
		for i, n := range ci.Nodes {
			// A node renews its lease while idle: it sends statements.
			if n.StatementsPerS <= 0 || n.CPUFraction < 0 || n.CPUFraction > float64(runtime.NumCPU()) {
				t.Errorf("%d accounts, node %d: %+v", ci.Accounts, i, n)
			}
		}
	}
	if r.Written == 0 || r.Measured+r.Before+r.Missing != r.Written || r.Missing != 0 {
		t.Errorf("failover: %d accounts written, %d measured, %d exported before the kill, %d never: every account of the killed node is exported",
			r.Written, r.Measured, r.Before, r.Missing)
	}
	if !(0 < r.P50 && r.P50 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("failover p50 %v, p99 %v, max %v", r.P50, r.P99, r.Max)
	}
	if r.One <= 0 || r.All <= 0 || math.Abs(r.Ratio-r.All/r.One) > 1e-9 || r.Seconds <= 0 {
		t.Errorf("export: one node %v events/s, all %v, ratio %v; phase %vs", r.One, r.All, r.Ratio, r.Seconds)
	}
}

// TestClusterTable: the table judges the three goals of the cluster phase
// and prints the idle cost at each number of accounts.
func TestClusterTable(t *testing.T) {
	r := &report{CPUs: 2, clusterReport: &clusterReport{
		ClusterNodes: 3, ClusterIdleBaseAccounts: 100, ClusterIdleAccounts: 10000,
		ClusterIdle: []clusterIdle{
			{Accounts: 100, Nodes: []nodeIdle{{0.002, 2.5}, {0.002, 2.5}, {0.002, 2.5}}},
			{Accounts: 10000, Nodes: []nodeIdle{{0.002, 2.5}, {0.03, 2.5}, {0.002, 6}}},
		},
		ClusterIdleCPUMax: 0.03, ClusterIdleStatementsMax: 6,
		ClusterFailoverMeasured: 1000, ClusterFailoverP50: 8, ClusterFailoverP99: 9.5, ClusterFailoverMax: 9.7,
		ClusterExportOneNode: 80000, ClusterExport: 70000, ClusterExportVsOneNode: 0.875,
	}}
	var b bytes.Buffer
	c := DefaultConfig()
	c.Store, c.Only = StoreLocal, []string{"cluster"}
	if err := r.table(&b, c); err != nil {
		t.Fatal(err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`cluster idle ≤ 2% of a core per node +3\.00% .* MISSED`),
		regexp.MustCompile(`cluster idle ≤ 5 statements/s per node +6\.00 .* MISSED`),
		regexp.MustCompile(`failover p99 ≤ 15s from SIGKILL to first object +p50 8\.0s, p99 9\.5s, max 9\.7s .* met`),
		regexp.MustCompile(`10000 enabled accounts +1\.13% +3\.00% +3\.67 +6\.00`),
		regexp.MustCompile(`3 nodes vs 1 +0\.88x`),
	} {
		if !want.MatchString(b.String()) {
			t.Errorf("the table lacks %s:\n%s", want, b.String())
		}
	}
}
