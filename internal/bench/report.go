package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what the bench prints: the table, or with --json this
// object. Its keys are the figures compared across runs; keep them.
type report struct {
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUs       int    `json:"cpus"`
	GoVersion  string `json:"go_version"`
	Quick      bool   `json:"quick"`
	// Runs is how many times each figure of the throughput and ingest
	// tables was measured, the best run counting: the same for every side
	// of every ratio.
	Runs int `json:"runs"`

	// Corpus.
	CorpusRecords      int            `json:"corpus_records"`
	CorpusAccounts     int            `json:"corpus_accounts"`
	CorpusRecordBytes  float64        `json:"corpus_record_bytes_avg"`
	CorpusRecordP5     int            `json:"corpus_record_bytes_p5"`
	CorpusRecordP50    int            `json:"corpus_record_bytes_p50"`
	CorpusRecordP95    int            `json:"corpus_record_bytes_p95"`
	CorpusEntityTypes  int            `json:"corpus_entity_types"`
	CorpusRelTypes     int            `json:"corpus_relationship_types"`
	CorpusPropsMin     int            `json:"corpus_properties_min"`
	CorpusPropsMedian  int            `json:"corpus_properties_median"`
	CorpusPropsMax     int            `json:"corpus_properties_max"`
	CorpusOps          map[string]int `json:"corpus_operations"`
	CorpusBuildSeconds float64        `json:"corpus_build_s"`
	RecommendedSetting string         `json:"recommended_compression"` // fastest of this run with ratio ≥ 4
	ShippedSetting     string         `json:"shipped_compression"`     // serve's default: what the export is measured at
	Encode             []encodeResult `json:"encode"`
	EncodeLimit        float64        `json:"encode_limit_events_per_s"`
	EncodeLimitMBPerS  float64        `json:"encode_limit_mb_per_s"`
	CompressionRatio   float64        `json:"compression_ratio"`
	EncodeStdlib6      float64        `json:"encode_stdlib6_events_per_s"`
	// The shipped setting compressing the finished record lines only (no
	// record built): a stricter ceiling than the encode limit, and the export
	// against it.
	EncodeGzipOnly       float64 `json:"encode_gzip_only_events_per_s"`
	EncodeGzipOnlyPerCPU float64 `json:"encode_gzip_only_events_per_cpu_s"`
	ExportVsGzipOnly     float64 `json:"export_vs_gzip_only"`
	ExportCPUVsGzipOnly  float64 `json:"export_cpu_vs_gzip_only"`
	// Per CPU-second of this process: the same figures, unaffected by
	// other load on the machine (versitygw's CPU is not counted).
	EncodeLimitPerCPU   float64 `json:"encode_limit_events_per_cpu_s"`
	BaselinePerCPU      float64 `json:"baseline_events_per_cpu_s"`
	ExportPerCPU        float64 `json:"export_events_per_cpu_s"`
	ExportCPUVsLimit    float64 `json:"export_cpu_vs_limit"`
	ExportCPUVsBaseline float64 `json:"export_cpu_vs_baseline"`
	Baseline            float64 `json:"baseline_events_per_s"`
	BaselineRatio       float64 `json:"baseline_compression_ratio"`
	Export              float64 `json:"export_events_per_s"`
	ExportMBPerS        float64 `json:"export_mb_per_s"`
	ExportVsLimit       float64 `json:"export_vs_limit"`
	ExportVsBaseline    float64 `json:"export_vs_baseline"`
	ExportRatio         float64 `json:"export_compression_ratio"`
	ExportObjects       int     `json:"export_objects"`
	// The exporter with objects discarded: log read and gzip, no S3.
	ExportNoUpload           float64 `json:"export_no_upload_events_per_s"`
	ExportNoUploadVsLimit    float64 `json:"export_no_upload_vs_limit"`
	ExportNoUploadPerCPU     float64 `json:"export_no_upload_events_per_cpu_s"`
	ExportNoUploadCPUVsLimit float64 `json:"export_no_upload_cpu_vs_limit"`
	ExportStdlib6            float64 `json:"export_stdlib6_events_per_s"`
	ExportStdlib6VsLim       float64 `json:"export_stdlib6_vs_limit"`
	ExportStdlib6VsBase      float64 `json:"export_stdlib6_vs_baseline"`

	// Latency and cost under a steady load.
	FlushIntervalS       float64 `json:"flush_interval_s"`
	LatencyAccounts      int     `json:"latency_accounts"`
	LatencyCommits       int     `json:"latency_commits"`
	LatencyEventsPerS    float64 `json:"latency_load_events_per_s"`
	LatencyP50           float64 `json:"latency_p50_over_interval_s"`
	LatencyP99           float64 `json:"latency_p99_over_interval_s"`
	LatencyMax           float64 `json:"latency_max_over_interval_s"`
	FlushMeanS           float64 `json:"flush_mean_s"`
	RequestsPerObject    float64 `json:"requests_per_object"`
	ObjectsPerAcctHour   float64 `json:"objects_per_account_hour"`
	MinObjectsPerAcctHr  float64 `json:"min_objects_per_account_hour"`
	ObjectsVsMinimum     float64 `json:"objects_vs_minimum"`
	RequestsPerAcctHour  float64 `json:"requests_per_account_hour"`
	LatencyCompression   float64 `json:"latency_compression_ratio"`
	ObjectsPerAcctHour5m float64 `json:"objects_per_account_hour_at_5m"`

	// Memory.
	BurstChanges     int     `json:"burst_changes"`
	BurstAccounts    int     `json:"burst_accounts"`
	BurstStartRSS    uint64  `json:"burst_start_rss_bytes"`
	BurstPeakRSS     uint64  `json:"burst_peak_rss_bytes"`
	BurstPeakHeap    uint64  `json:"burst_peak_heap_bytes"`
	BurstPeakGo      uint64  `json:"burst_peak_go_runtime_bytes"`
	BurstIngestEPS   float64 `json:"burst_ingest_events_per_s"`
	BurstDrainS      float64 `json:"burst_drain_s"`
	BurstResent      int     `json:"burst_resent"`
	BurstObjects     int     `json:"burst_objects"`
	BurstHWMMeasured bool    `json:"burst_peak_rss_from_vmhwm"`
	IdleAccounts     int     `json:"idle_accounts"`
	IdleCPU          float64 `json:"idle_cpu_fraction"`
	IdleRSS          uint64  `json:"idle_rss_bytes"`
	IdleHeap         uint64  `json:"idle_heap_bytes"`

	// Ingest (the keys of the first bench).
	Entities       int     `json:"entities"`
	Batch          int     `json:"batch"`
	Writers        int     `json:"writers"`
	AvgEntityBytes int     `json:"avg_entity_bytes"`
	RawPebble      float64 `json:"raw_pebble_events_per_s"`
	// Raw Pebble opened with its defaults instead of the store's options,
	// for reference.
	RawPebbleDefaults   float64 `json:"raw_pebble_default_options_events_per_s"`
	IngestVsRawDefaults float64 `json:"ingest_vs_raw_pebble_default_options"`
	IngestVsRawSame     float64 `json:"ingest_vs_raw_pebble_same_options"`
	Ingest              float64 `json:"ingest_events_per_s"`
	IngestVsRaw         float64 `json:"ingest_vs_raw_pebble"`
	RawPebbleConc       float64 `json:"raw_pebble_concurrent_eps"`
	IngestConc          float64 `json:"ingest_concurrent_eps"`
	IngestConcVsRaw     float64 `json:"ingest_concurrent_vs_raw"`
	SyncAPI             float64 `json:"sync_api_events_per_s"`
	SyncAPIVsRaw        float64 `json:"sync_api_vs_raw_pebble"`

	// PostgreSQL, with --store: the server, the export reading the corpus
	// from it against the export reading it from Pebble, and ingest
	// against raw PostgreSQL writing the store's rows again. Absent
	// without --store.
	Postgres                    string  `json:"postgres,omitempty"`
	PGCorpusBuildSeconds        float64 `json:"pg_corpus_build_s,omitempty"`
	PGExport                    float64 `json:"pg_export_events_per_s,omitempty"`
	PGExportPerCPU              float64 `json:"pg_export_events_per_cpu_s,omitempty"`
	PGExportVsPebble            float64 `json:"pg_export_vs_pebble,omitempty"`
	PGExportCPUVsPebble         float64 `json:"pg_export_cpu_vs_pebble,omitempty"`
	PGExportNoUpload            float64 `json:"pg_export_no_upload_events_per_s,omitempty"`
	PGExportNoUploadPerCPU      float64 `json:"pg_export_no_upload_events_per_cpu_s,omitempty"`
	PGExportNoUploadVsPebble    float64 `json:"pg_export_no_upload_vs_pebble,omitempty"`
	PGExportNoUploadCPUVsPebble float64 `json:"pg_export_no_upload_cpu_vs_pebble,omitempty"`
	PGRaw                       float64 `json:"pg_raw_events_per_s,omitempty"`
	PGIngest                    float64 `json:"pg_ingest_events_per_s,omitempty"`
	PGIngestVsRaw               float64 `json:"pg_ingest_vs_raw,omitempty"`
	PGRawConc                   float64 `json:"pg_raw_concurrent_eps,omitempty"`
	PGIngestConc                float64 `json:"pg_ingest_concurrent_eps,omitempty"`
	PGIngestConcVsRaw           float64 `json:"pg_ingest_concurrent_vs_raw,omitempty"`
	PGSyncAPI                   float64 `json:"pg_sync_api_events_per_s,omitempty"`
	PGSyncAPIVsRaw              float64 `json:"pg_sync_api_vs_raw,omitempty"`

	// The cluster phase, with --store (cluster.go); absent without it.
	*clusterReport
	// The slowbuckets phase (slowbuckets.go); absent when it did not run.
	*slowBucketsReport

	TotalSeconds        float64 `json:"total_s"`
	ingestMeasurement   []ingestResult
	pgIngestMeasurement []ingestResult
}

// clusterReport holds the figures of the cluster phase: j1ds serve nodes
// on one database. Idle figures are per node: the mean over the nodes, and
// the worst node (_max), at cluster_idle_accounts enabled accounts, and at
// cluster_idle_base_accounts (_base). Failover times are seconds from the
// kill. Export rates count the nodes' wall clock from the first account
// enabled to the last object, and their CPU (not PostgreSQL's, nor
// versitygw's).
type clusterReport struct {
	ClusterSeconds               float64       `json:"cluster_s"` // the whole phase
	ClusterNodes                 int           `json:"cluster_nodes"`
	ClusterLeaseTTLS             float64       `json:"cluster_lease_ttl_s"`
	ClusterFlushIntervalS        float64       `json:"cluster_flush_interval_s"`
	ClusterIdleForS              float64       `json:"cluster_idle_window_s"`
	ClusterIdleBaseAccounts      int           `json:"cluster_idle_base_accounts"`
	ClusterIdleAccounts          int           `json:"cluster_idle_accounts"`
	ClusterIdle                  []clusterIdle `json:"cluster_idle"` // every node at each number of accounts
	ClusterIdleCPU               float64       `json:"cluster_idle_cpu_fraction"`
	ClusterIdleCPUMax            float64       `json:"cluster_idle_cpu_fraction_max"`
	ClusterIdleStatements        float64       `json:"cluster_idle_statements_per_s"`
	ClusterIdleStatementsMax     float64       `json:"cluster_idle_statements_per_s_max"`
	ClusterIdleBaseCPU           float64       `json:"cluster_idle_base_cpu_fraction"`
	ClusterIdleBaseStatements    float64       `json:"cluster_idle_base_statements_per_s"`
	ClusterIdleCPUVsBase         float64       `json:"cluster_idle_cpu_vs_base"`
	ClusterIdleStatementsVsBase  float64       `json:"cluster_idle_statements_vs_base"`
	ClusterFailoverAccounts      int           `json:"cluster_failover_accounts"`
	ClusterFailoverWritten       int           `json:"cluster_failover_written_accounts"`
	ClusterFailoverMeasured      int           `json:"cluster_failover_measured_accounts"`
	ClusterFailoverFlushedBefore int           `json:"cluster_failover_flushed_before_kill"`
	ClusterFailoverMissing       int           `json:"cluster_failover_missing_accounts"`
	ClusterFailoverP50           float64       `json:"cluster_failover_p50_s"`
	ClusterFailoverP99           float64       `json:"cluster_failover_p99_s"`
	ClusterFailoverMax           float64       `json:"cluster_failover_max_s"`
	ClusterFailoverClaimMin      float64       `json:"cluster_failover_claim_min_s"`
	ClusterFailoverClaimMax      float64       `json:"cluster_failover_claim_max_s"`
	ClusterFailoverWriteS        float64       `json:"cluster_failover_writes_s"`
	ClusterBacklogAccounts       int           `json:"cluster_backlog_accounts"`
	ClusterBacklogChanges        int           `json:"cluster_backlog_changes"`
	ClusterExportOneNode         float64       `json:"cluster_export_one_node_events_per_s"`
	ClusterExport                float64       `json:"cluster_export_events_per_s"`
	ClusterExportVsOneNode       float64       `json:"cluster_export_vs_one_node"`
	ClusterExportOneNodePerCPU   float64       `json:"cluster_export_one_node_events_per_cpu_s"`
	ClusterExportPerCPU          float64       `json:"cluster_export_events_per_cpu_s"`
}

type ingestResult struct {
	name       string
	rate, base float64
}

// check refuses a report with a figure that is not a positive finite
// number: a phase measured nothing.
func (r *report) check(c Config) error {
	cr := r.clusterReport
	if cr == nil {
		cr = &clusterReport{}
	}
	sb := r.slowBucketsReport
	if sb == nil {
		sb = &slowBucketsReport{}
	}
	for name, m := range map[string]struct {
		phase    string
		v        float64
		postgres bool // measured with --store only
	}{
		"encode_limit_events_per_s": {"export", r.EncodeLimit, false}, "baseline_events_per_s": {"export", r.Baseline, false},
		"export_events_per_s": {"export", r.Export, false}, "compression_ratio": {"export", r.CompressionRatio, false},
		"ingest_events_per_s": {"ingest", r.Ingest, false}, "requests_per_object": {"latency", r.RequestsPerObject, false},
		"burst_peak_rss_bytes": {"burst", float64(r.BurstPeakRSS), false}, "idle_rss_bytes": {"idle", float64(r.IdleRSS), false},
		"pg_export_events_per_s": {"export", r.PGExport, true}, "pg_export_no_upload_events_per_s": {"export", r.PGExportNoUpload, true},
		"pg_ingest_events_per_s": {"ingest", r.PGIngest, true}, "pg_raw_events_per_s": {"ingest", r.PGRaw, true},
		"pg_sync_api_events_per_s":      {"ingest", r.PGSyncAPI, true},
		"cluster_idle_statements_per_s": {"cluster", cr.ClusterIdleStatements, true}, "cluster_failover_p99_s": {"cluster", cr.ClusterFailoverP99, true},
		"cluster_export_events_per_s": {"cluster", cr.ClusterExport, true}, "cluster_export_one_node_events_per_s": {"cluster", cr.ClusterExportOneNode, true},
		"slow_buckets_baseline_p99_s": {"slowbuckets", sb.SlowBucketsBaseP99, false}, "slow_buckets_healthy_p99_s": {"slowbuckets", sb.SlowBucketsFaultP99, false},
	} {
		if c.runs(m.phase) && (!m.postgres || c.postgres()) && (m.v <= 0 || math.IsInf(m.v, 0) || math.IsNaN(m.v)) {
			return fmt.Errorf("bench: %s is %v: the %s phase measured nothing", name, m.v, m.phase)
		}
	}
	return nil
}

func (r *report) table(w io.Writer, c Config) error {
	mib := func(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Fprintf(w, "j1ds bench: %s, %d CPUs, GOMAXPROCS=%d%s", r.GoVersion, r.CPUs, r.GOMAXPROCS, map[bool]string{true: ", --quick"}[r.Quick])
	if len(c.Only) > 0 {
		fmt.Fprintf(w, ", only %s", strings.Join(c.Only, ","))
	}
	fmt.Fprint(w, "\n")
	if r.Postgres != "" {
		fmt.Fprintf(w, "%s\n", r.Postgres)
	}
	fmt.Fprint(w, "\n")
	if c.runs("export") {
		r.exportTables(w)
	}
	if c.runs("ingest") {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "ingest\tentities/s\tvs raw Pebble\t")
		for _, m := range r.ingestMeasurement {
			fmt.Fprintf(tw, "%s\t%.0f\t%.2fx\t\n", m.name, m.rate, m.rate/m.base)
		}
		tw.Flush()
		fmt.Fprintf(w, "each row %s on fresh databases\n\n", r.runsText())
		if r.pgIngestMeasurement != nil {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "ingest on PostgreSQL\tentities/s\tvs raw PostgreSQL\t")
			for _, m := range r.pgIngestMeasurement {
				fmt.Fprintf(tw, "%s\t%.0f\t%.2fx\t\n", m.name, m.rate, m.rate/m.base)
			}
			tw.Flush()
			fmt.Fprintf(w, "each row %s on new databases; every commit synced as the server is configured\n\n", r.runsText())
		}
	}
	if r.clusterReport != nil {
		r.clusterTables(w)
	}
	if r.slowBucketsReport != nil {
		r.slowBucketsTable(w)
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "goal\tmeasured\t\t")
	if c.runs("export") {
		fmt.Fprintf(tw, "compression ratio ≥ %.1f\t%.2f (%s)\t%s\t\n", minCompressionRatio, r.CompressionRatio, r.ShippedSetting, goal(r.CompressionRatio >= minCompressionRatio))
		fmt.Fprintf(tw, "export ≥ 0.7x encode limit, per CPU-second\t%.2fx (objects discarded: %.2fx; vs gzip of finished lines only: %.2fx)\t%s\t\n", r.ExportCPUVsLimit, r.ExportNoUploadCPUVsLimit, r.ExportCPUVsGzipOnly, goal(r.ExportCPUVsLimit >= 0.7))
		fmt.Fprintf(tw, "export ≥ 0.7x encode limit, wall clock\t%.2fx (objects discarded: %.2fx; vs gzip only: %.2fx; versitygw shares the cores)\t%s\t\n", r.ExportVsLimit, r.ExportNoUploadVsLimit, r.ExportVsGzipOnly, goal(r.ExportVsLimit >= 0.7))
		fmt.Fprintf(tw, "export ≥ 5x baseline\t%.2fx (per CPU-second %.2fx)\t%s\t\n", r.ExportVsBaseline, r.ExportCPUVsBaseline, goal(r.ExportVsBaseline >= 5))
	}
	if c.runs("export") && r.PGExport > 0 {
		fmt.Fprintf(tw, "export from PostgreSQL ≥ 0.5x from Pebble\t%.2fx (per CPU-second of this process %.2fx; objects discarded %.2fx; PostgreSQL shares the cores)\t%s\t\n",
			r.PGExportVsPebble, r.PGExportCPUVsPebble, r.PGExportNoUploadVsPebble, goal(r.PGExportVsPebble >= 0.5))
	}
	if c.runs("ingest") && r.PGIngest > 0 {
		fmt.Fprintf(tw, "store ingest on PostgreSQL ≥ 0.5x raw PostgreSQL\t%.2fx (%d writers %.2fx; sync API %.2fx)\t%s\t\n",
			r.PGIngestVsRaw, r.Writers, r.PGIngestConcVsRaw, r.PGSyncAPIVsRaw, goal(r.PGIngestVsRaw >= 0.5))
	}
	if c.runs("ingest") {
		fmt.Fprintf(tw, "store ingest ≥ 0.5x raw Pebble\t%.2fx the faster raw Pebble (same options %.2fx, Pebble's defaults %.2fx)\t%s\t\n", r.IngestVsRaw, r.IngestVsRawSame, r.IngestVsRawDefaults, goal(r.IngestVsRaw >= 0.5))
	}
	if c.runs("burst") {
		fmt.Fprintf(tw, "burst peak RSS ≤ 256 MiB\t%s (Go runtime %s, live heap %s; %d changes over %d accounts, %.0f/s, drained %.1fs after; %d uploads stalled, cancelled and sent again)\t%s\t\n",
			mib(r.BurstPeakRSS), mib(r.BurstPeakGo), mib(r.BurstPeakHeap), r.BurstChanges, r.BurstAccounts, r.BurstIngestEPS, r.BurstDrainS, r.BurstResent, goal(r.BurstPeakRSS <= 256<<20))
	}
	if c.runs("idle") {
		fmt.Fprintf(tw, "idle ≤ 1%% of a core\t%.2f%% (%d accounts, RSS %s, heap %s)\t%s\t\n", 100*r.IdleCPU, r.IdleAccounts, mib(r.IdleRSS), mib(r.IdleHeap), goal(r.IdleCPU <= 0.01))
	}
	if cr := r.clusterReport; cr != nil {
		fmt.Fprintf(tw, "cluster idle ≤ %.0f%% of a core per node\t%.2f%% the busiest node at %d accounts (mean %.2f%%; %.2fx the mean at %d accounts)\t%s\t\n",
			100*clusterIdleCPUGoal, 100*cr.ClusterIdleCPUMax, cr.ClusterIdleAccounts, 100*cr.ClusterIdleCPU, cr.ClusterIdleCPUVsBase, cr.ClusterIdleBaseAccounts, goal(cr.ClusterIdleCPUMax <= clusterIdleCPUGoal))
		fmt.Fprintf(tw, "cluster idle ≤ %.0f statements/s per node\t%.2f the busiest node at %d accounts (mean %.2f; %.2fx the mean at %d accounts)\t%s\t\n",
			clusterIdleStatementsGoal, cr.ClusterIdleStatementsMax, cr.ClusterIdleAccounts, cr.ClusterIdleStatements, cr.ClusterIdleStatementsVsBase, cr.ClusterIdleBaseAccounts, goal(cr.ClusterIdleStatementsMax <= clusterIdleStatementsGoal))
		fmt.Fprintf(tw, "failover p99 ≤ %.0fs from SIGKILL to first object\tp50 %.1fs, p99 %.1fs, max %.1fs (%d accounts of the killed node; %d without an object)\t%s\t\n",
			clusterFailoverGoal.Seconds(), cr.ClusterFailoverP50, cr.ClusterFailoverP99, cr.ClusterFailoverMax, cr.ClusterFailoverMeasured, cr.ClusterFailoverMissing,
			goal(cr.ClusterFailoverP99 <= clusterFailoverGoal.Seconds() && cr.ClusterFailoverMissing == 0))
	}
	if c.runs("latency") {
		fmt.Fprintf(tw, "p99 latency ≤ interval + 2s\tp50 %+.2fs, p99 %+.2fs, max %+.2fs (interval %.0fs, %d accounts, %d commits, %.0f events/s, %.0f ms a flush)\t%s\t\n",
			r.LatencyP50, r.LatencyP99, r.LatencyMax, r.FlushIntervalS, r.LatencyAccounts, r.LatencyCommits, r.LatencyEventsPerS, 1000*r.FlushMeanS, goal(r.LatencyP99 <= 2))
		fmt.Fprintf(tw, "requests per object = 1\t%.2f\t%s\t\n", r.RequestsPerObject, goal(r.RequestsPerObject == 1))
		fmt.Fprintf(tw, "objects per account-hour\t%.0f, minimum %.0f (%.2fx; at a 5 min interval: %.1f)\t\t\n",
			r.ObjectsPerAcctHour, r.MinObjectsPerAcctHr, r.ObjectsVsMinimum, r.ObjectsPerAcctHour5m)
	}
	if sb := r.slowBucketsReport; sb != nil {
		fmt.Fprintf(tw, "5%% of buckets slow or refusing: healthy p99 ≤ interval + 2s\tp99 %.2fs (while slow %.2fs, while refusing %.2fs; all buckets healthy %.2fs), interval %.0fs\t%s\t\n",
			sb.SlowBucketsFaultP99, sb.SlowBucketsSlowP99, sb.SlowBucketsRefuseP99, sb.SlowBucketsBaseP99, sb.SlowBucketsFlushS, goal(sb.SlowBucketsFaultP99 <= sb.SlowBucketsFlushS+2))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntotal %.0fs\n", r.TotalSeconds)
	return nil
}

// The goals of the cluster phase.
const (
	clusterIdleCPUGoal        = 0.02 // of a core, per node
	clusterIdleStatementsGoal = 5.0  // per second, per node
	clusterFailoverGoal       = 15 * time.Second
)

// clusterTables prints the cluster phase's figures.
func (r *report) clusterTables(w io.Writer) {
	cr := r.clusterReport
	fmt.Fprintf(w, "cluster: %d j1ds serve processes on one PostgreSQL database, --lease-ttl %.0fs, --flush-interval %.0fs; the phase took %.0fs\n\n",
		cr.ClusterNodes, cr.ClusterLeaseTTLS, cr.ClusterFlushIntervalS, cr.ClusterSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "idle cost per node\tCPU, % of a core\tbusiest node\tstatements/s\tbusiest node\t")
	for _, ci := range cr.ClusterIdle {
		fmt.Fprintf(tw, "%d enabled accounts\t%.2f%%\t%.2f%%\t%.2f\t%.2f\t\n", ci.Accounts, 100*ci.mean(cpuOf), 100*ci.worst(cpuOf), ci.mean(statementsOf), ci.worst(statementsOf))
	}
	fmt.Fprintf(tw, "%d vs %d accounts\t%.2fx\t\t%.2fx\t\t\n", cr.ClusterIdleAccounts, cr.ClusterIdleBaseAccounts, cr.ClusterIdleCPUVsBase, cr.ClusterIdleStatementsVsBase)
	tw.Flush()
	fmt.Fprintf(w, "the mean over the %d nodes and the busiest: each process's CPU (/proc/PID/stat) and the statements it sent (j1ds_db_statements_total)\n"+
		"over %.0fs, once every node had loaded its accounts; the idle cost of a cluster should grow with its nodes, not its accounts\n\n", cr.ClusterNodes, cr.ClusterIdleForS)

	fmt.Fprintf(w, "failover: %d enabled accounts over %d nodes; one change to each of the %d accounts of one node, through its API (%.1fs), and the node killed (SIGKILL)\n",
		cr.ClusterFailoverAccounts, cr.ClusterNodes, cr.ClusterFailoverWritten, cr.ClusterFailoverWriteS)
	fmt.Fprintf(w, "  from the kill to each account's first object, stored by another node: p50 %.2fs, p99 %.2fs, max %.2fs over %d accounts\n",
		cr.ClusterFailoverP50, cr.ClusterFailoverP99, cr.ClusterFailoverMax, cr.ClusterFailoverMeasured)
	fmt.Fprintf(w, "  from the kill to the claim of their groups by the other nodes: %.2fs to %.2fs (the dead node's lease must end first)\n", cr.ClusterFailoverClaimMin, cr.ClusterFailoverClaimMax)
	fmt.Fprintf(w, "  %d accounts exported by the node before it died, %d with no object %s after the kill\n\n", cr.ClusterFailoverFlushedBefore, cr.ClusterFailoverMissing, failoverWait)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "cluster export of a backlog\tevents/s\tevents per CPU-second of the nodes\t")
	fmt.Fprintf(tw, "1 node\t%.0f\t%.0f\t\n", cr.ClusterExportOneNode, cr.ClusterExportOneNodePerCPU)
	fmt.Fprintf(tw, "%d nodes\t%.0f\t%.0f\t\n", cr.ClusterNodes, cr.ClusterExport, cr.ClusterExportPerCPU)
	fmt.Fprintf(tw, "%d nodes vs 1\t%.2fx\t%.2fx\t\n", cr.ClusterNodes, cr.ClusterExportVsOneNode, ratio(cr.ClusterExportPerCPU, cr.ClusterExportOneNodePerCPU))
	tw.Flush()
	fmt.Fprintf(w, "each row %s, one node and all taking turns: %d changes over %d accounts, committed before streaming starts, exported from the log's start\n"+
		"into a new bucket; wall clock from the first account enabled to the last object stored; the nodes, PostgreSQL and versitygw share the %d cores\n\n",
		r.runsText(), cr.ClusterBacklogChanges, cr.ClusterBacklogAccounts, r.CPUs)
}

// exportTables prints the corpus, the encode limit and the throughput.
func (r *report) exportTables(w io.Writer) {
	fmt.Fprintf(w, "corpus: %d changes over %d accounts (%v); %d entity and %d relationship types; %d-%d properties (median %d);\n",
		r.CorpusRecords, r.CorpusAccounts, r.CorpusOps, r.CorpusEntityTypes, r.CorpusRelTypes, r.CorpusPropsMin, r.CorpusPropsMax, r.CorpusPropsMedian)
	fmt.Fprintf(w, "        records %.0f bytes on average (p5 %d, median %d, p95 %d), built in %.1fs\n\n",
		r.CorpusRecordBytes, r.CorpusRecordP5, r.CorpusRecordP50, r.CorpusRecordP95, r.CorpusBuildSeconds)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "encode limit, one core\tevents/s\tMB/s\tratio\t")
	for _, e := range r.Encode {
		name := e.Setting
		if name == r.ShippedSetting {
			name += " (serve's default)"
		}
		if e.Setting == r.RecommendedSetting {
			name += " (fastest ≥ 4.0 here)"
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.2f\t\n", name, e.EventsPerS, e.MBPerS, e.Ratio)
	}
	tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "throughput, one core\tevents/s\tvs limit\tvs baseline\tevents/CPU-s\tvs limit\tvs baseline\tratio\t")
	fmt.Fprintf(tw, "encode limit (%s)\t%.0f\t1.00x\t%.2fx\t%.0f\t1.00x\t%.2fx\t%.2f\t\n", r.ShippedSetting,
		r.EncodeLimit, r.EncodeLimit/r.Baseline, r.EncodeLimitPerCPU, r.EncodeLimitPerCPU/r.BaselinePerCPU, r.CompressionRatio)
	fmt.Fprintf(tw, "  gzip of the finished lines only (no record built)\t%.0f\t%.2fx\t%.2fx\t%.0f\t%.2fx\t%.2fx\t\t\n",
		r.EncodeGzipOnly, r.EncodeGzipOnly/r.EncodeLimit, r.EncodeGzipOnly/r.Baseline, r.EncodeGzipOnlyPerCPU, r.EncodeGzipOnlyPerCPU/r.EncodeLimitPerCPU, r.EncodeGzipOnlyPerCPU/r.BaselinePerCPU)
	fmt.Fprintf(tw, "baseline (encoding/json maps, gzip 6, PutObject)\t%.0f\t%.2fx\t1.00x\t%.0f\t%.2fx\t1.00x\t%.2f\t\n",
		r.Baseline, r.Baseline/r.EncodeLimit, r.BaselinePerCPU, r.BaselinePerCPU/r.EncodeLimitPerCPU, r.BaselineRatio)
	fmt.Fprintf(tw, "export (%s): log → S3 ack\t%.0f\t%.2fx\t%.2fx\t%.0f\t%.2fx\t%.2fx\t%.2f\t\n", r.ShippedSetting,
		r.Export, r.ExportVsLimit, r.ExportVsBaseline, r.ExportPerCPU, r.ExportCPUVsLimit, r.ExportCPUVsBaseline, r.ExportRatio)
	fmt.Fprintf(tw, "  the same, objects discarded (log → gzip)\t%.0f\t%.2fx\t%.2fx\t%.0f\t%.2fx\t%.2fx\t\t\n",
		r.ExportNoUpload, r.ExportNoUploadVsLimit, r.ExportNoUpload/r.Baseline, r.ExportNoUploadPerCPU, r.ExportNoUploadCPUVsLimit, r.ExportNoUploadPerCPU/r.BaselinePerCPU)
	fmt.Fprintf(tw, "export (stdlib-6, compress/gzip default level)\t%.0f\t%.2fx\t%.2fx\t\t\t\t\t\n", r.ExportStdlib6, r.ExportStdlib6VsLim, r.ExportStdlib6VsBase)
	tw.Flush()
	fmt.Fprintf(w, "each row %s over the whole corpus\n\n", r.runsText())
	if r.PGExport > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "export reading PostgreSQL, one core\tevents/s\tvs Pebble\tevents/CPU-s\tvs Pebble\t")
		fmt.Fprintf(tw, "export (%s): log → S3 ack\t%.0f\t%.2fx\t%.0f\t%.2fx\t\n", r.ShippedSetting, r.PGExport, r.PGExportVsPebble, r.PGExportPerCPU, r.PGExportCPUVsPebble)
		fmt.Fprintf(tw, "  the same, objects discarded (log → gzip)\t%.0f\t%.2fx\t%.0f\t%.2fx\t\n", r.PGExportNoUpload, r.PGExportNoUploadVsPebble, r.PGExportNoUploadPerCPU, r.PGExportNoUploadCPUVsPebble)
		tw.Flush()
		fmt.Fprintf(w, "each row %s over the same corpus, committed into PostgreSQL in %.1fs; events/CPU-s counts this process only, not PostgreSQL's\n\n", r.runsText(), r.PGCorpusBuildSeconds)
	}
}

// runsText says how many runs each figure of a table is: every side of
// every ratio alike.
func (r *report) runsText() string {
	if r.Runs == 1 {
		return "is one run (--quick)"
	}
	return fmt.Sprintf("is the best of %d runs", r.Runs)
}
