package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
)

// Run runs the phases c selects against a versitygw of its own, printing
// progress to stderr and the report to stdout: a table, or one JSON object
// with c.JSON. It fails when a phase measured nothing.
func Run(ctx context.Context, c Config, stdout, stderr io.Writer) error {
	begin := time.Now()
	var mu sync.Mutex // phases report from several goroutines
	progress := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stderr, "[%6.1fs] "+format+"\n", append([]any{time.Since(begin).Seconds()}, args...)...)
	}
	dir := c.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "j1ds-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	r := report{GOMAXPROCS: runtime.GOMAXPROCS(0), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Quick: c.Quick, Runs: c.rounds()}

	progress("starting versitygw (TLS, its own process)")
	b, err := startBenchS3(ctx, dir, stderr)
	if err != nil {
		return err
	}
	defer b.Close()

	// Memory first, in a process that has held nothing else yet; the
	// exporter as serve runs it (its own pooled gzip at the default level).
	shipped := shippedGzip()
	if c.runs("idle") {
		progress("idle: %d enabled accounts for %s", c.IdleAccounts, c.IdleFor)
		idle, err := benchIdle(ctx, dir, b, c.IdleAccounts, c.IdleFor, shipped)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		r.IdleAccounts, r.IdleCPU, r.IdleRSS, r.IdleHeap = idle.Accounts, idle.CPUFraction, idle.RSS, idle.Heap
	}

	if c.runs("burst") {
		progress("burst: %d changes over %d accounts", c.BurstChanges, c.BurstAccounts)
		burst, err := benchBurst(ctx, dir, b, c.BurstChanges, c.BurstAccounts, shipped, c.profile("burst.pprof"), progress)
		if err != nil {
			return fmt.Errorf("burst: %w", err)
		}
		r.BurstChanges, r.BurstAccounts = burst.Changes/burst.Accounts*burst.Accounts, burst.Accounts
		r.BurstStartRSS, r.BurstPeakRSS, r.BurstPeakHeap, r.BurstPeakGo = burst.StartRSS, burst.PeakRSS, burst.PeakHeap, burst.PeakGo
		r.BurstIngestEPS = float64(r.BurstChanges) / burst.Ingest.Seconds()
		r.BurstDrainS, r.BurstObjects, r.BurstHWMMeasured = burst.Drain.Seconds(), burst.Objects, burst.HWMReset
		r.BurstResent = burst.Resent
	}

	// PostgreSQL, with --store, from here on: the phases above measure
	// this process alone.
	var pg *pgServer
	if c.postgres() && (c.runs("export") || c.runs("ingest") || c.runs("cluster")) {
		if c.Store == StoreLocal {
			progress("postgres: starting a server of the bench's own (localpg)")
		} else {
			progress("postgres: connecting to %s", redactURL(c.Store))
		}
		if pg, err = startPostgres(ctx, c.Store); err != nil {
			return err
		}
		defer pg.Close()
		r.Postgres = pg.About
		progress("postgres: %s", pg.About)
	}

	rec := shipped
	if c.runs("export") {
		if rec, err = benchCorpusPhases(ctx, c, dir, b, pg, &r, progress); err != nil {
			return err
		}
	}
	if c.runs("latency") {
		if err := benchLatencyPhase(ctx, c, dir, b, &r, rec, progress); err != nil {
			return err
		}
	}
	if c.runs("slowbuckets") {
		if err := benchSlowBucketsPhase(ctx, c, dir, b, &r, progress); err != nil {
			return fmt.Errorf("slowbuckets: %w", err)
		}
	}
	if c.runs("ingest") {
		if err := benchIngest(ctx, c, dir, &r, progress); err != nil {
			return err
		}
		if pg != nil {
			if err := benchPostgresIngest(ctx, c, pg, &r, progress); err != nil {
				return fmt.Errorf("ingest on PostgreSQL: %w", err)
			}
		}
	}
	// The cluster phase last: its nodes are processes of their own, and
	// every node it starts is stopped before it returns.
	if c.runs("cluster") && pg != nil {
		if err := benchCluster(ctx, c, dir, b, pg, &r, progress); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	r.TotalSeconds = time.Since(begin).Seconds()
	progress("done")
	if err := r.check(c); err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.table(stdout, c)
}

// shippedGzip is the gzip setting serve runs by default.
func shippedGzip() gzipSetting {
	return gzipSetting{fmt.Sprintf("klauspost-%d", exporter.DefaultGzipLevel), "klauspost", exporter.DefaultGzipLevel}
}

// benchLatencyPhase measures latency and cost under a steady load.
func benchLatencyPhase(ctx context.Context, c Config, dir string, b *benchS3, r *report, rec gzipSetting, progress func(string, ...any)) error {
	progress("latency: %d accounts writing for %s, flush interval %s", c.LatencyAccounts, c.LatencyFor, benchFlushInterval)
	lat, err := benchLatency(ctx, dir, b, c.LatencyAccounts, c.LatencyFor, rec)
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	hours := lat.Duration.Hours() * float64(lat.Accounts)
	r.FlushIntervalS = benchFlushInterval.Seconds()
	r.LatencyAccounts, r.LatencyCommits = lat.Accounts, lat.Commits
	r.LatencyEventsPerS = float64(lat.Changes) / lat.Duration.Seconds()
	r.LatencyP50, r.LatencyP99, r.LatencyMax = lat.P50, lat.P99, lat.Max
	r.RequestsPerObject = float64(lat.Requests) / float64(lat.Objects)
	r.ObjectsPerAcctHour = float64(lat.Objects) / hours
	r.MinObjectsPerAcctHr = float64(lat.MinObjects) / hours
	r.ObjectsVsMinimum = float64(lat.Objects) / float64(lat.MinObjects)
	r.RequestsPerAcctHour = float64(lat.Requests) / hours
	r.ObjectsPerAcctHour5m = r.ObjectsVsMinimum * time.Hour.Seconds() / exporterDefaultInterval.Seconds()
	r.LatencyCompression = float64(lat.RecordBytes) / float64(lat.Bytes)
	r.FlushMeanS = lat.FlushMean
	return nil
}

// exporterDefaultInterval is serve's default flush interval, for the cost
// per account-hour at it.
const exporterDefaultInterval = 5 * time.Minute

// benchCorpusPhases builds the corpus and measures the encode limit, the
// baseline and the export on it; it returns the recommended setting. With
// pg, it also commits the corpus into a graph store on PostgreSQL and
// measures the export reading from there.
func benchCorpusPhases(ctx context.Context, c Config, dir string, b *benchS3, pg *pgServer, r *report, progress func(string, ...any)) (gzipSetting, error) {
	progress("corpus: %d changes over %d accounts, committed into a graph store", c.Changes, c.Accounts)
	start := time.Now()
	s, err := pebblestore.Open(filepath.Join(dir, "corpus"), pebblestore.Options{})
	if err != nil {
		return gzipSetting{}, err
	}
	defer s.Close()
	spec := corpusSpec{Accounts: c.Accounts, Changes: c.Changes, Seed: 1}
	if _, err := fillCorpus(s, spec, 500, func(accounts, changes int) {
		progress("corpus: %d of %d accounts, %d changes", accounts, c.Accounts, changes)
	}); err != nil {
		return gzipSetting{}, fmt.Errorf("corpus: %w", err)
	}
	// Settle the store as a log written long ago is: compactions triggered
	// by the build would otherwise run during the export measurement.
	if err := s.DB().Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		return gzipSetting{}, fmt.Errorf("corpus: compact: %w", err)
	}
	logs, err := readCorpus(s, c.Accounts)
	if err != nil {
		return gzipSetting{}, fmt.Errorf("corpus: %w", err)
	}
	st, err := describe(logs)
	if err != nil {
		return gzipSetting{}, err
	}
	r.CorpusBuildSeconds = time.Since(start).Seconds()
	r.CorpusRecords, r.CorpusAccounts = st.Records, c.Accounts
	r.CorpusRecordBytes = float64(st.Bytes) / float64(st.Records)
	r.CorpusRecordP5, r.CorpusRecordP50, r.CorpusRecordP95 = st.P5Bytes, st.MedianBytes, st.P95Bytes
	r.CorpusEntityTypes, r.CorpusRelTypes = st.EntityTypes, st.RelTypes
	r.CorpusPropsMin, r.CorpusPropsMedian, r.CorpusPropsMax = st.MinProps, st.MedianProps, st.MaxProps
	r.CorpusOps = st.Ops

	var pgs *pgstore.Store
	var fromPG exportStore
	if pg != nil {
		var closeStore func() error
		var built time.Duration
		if pgs, closeStore, built, err = pgCorpus(ctx, pg, spec, logs, progress); err != nil {
			return gzipSetting{}, fmt.Errorf("corpus on PostgreSQL: %w", err)
		}
		defer closeStore()
		r.PGCorpusBuildSeconds = built.Seconds()
		fromPG = exportStore{log: pgs, streams: pgs.Settings()}
	}

	in, err := limitInput(logs)
	if err != nil {
		return gzipSetting{}, fmt.Errorf("corpus: %w", err)
	}
	rounds := c.rounds()
	enc, rec, err := benchEncode(logs, in, rounds, progress)
	if err != nil {
		return rec, err
	}
	// The export, its limit and the latency are measured at the setting
	// serve ships (the fastest with ratio ≥ 4 when it was chosen); the
	// fastest of this run is reported beside it.
	r.Encode, r.RecommendedSetting = enc, rec.Name
	rec = shippedGzip()
	r.ShippedSetting = rec.Name
	limit := func(name string) encodeResult {
		for _, e := range enc {
			if e.Setting == name {
				return e
			}
		}
		return encodeResult{}
	}
	r.EncodeLimit, r.EncodeLimitMBPerS = limit(rec.Name).EventsPerS, limit(rec.Name).MBPerS
	r.EncodeLimitPerCPU = limit(rec.Name).EventsPerCPU
	r.CompressionRatio = limit(rec.Name).Ratio
	r.EncodeStdlib6 = limit("stdlib-6").EventsPerS

	// Every figure a ratio is built from, the limits above included, is
	// the best of the same number of runs (c.rounds: three, or one with
	// --quick): measured the same way, a run the machine slowed down
	// counts no more on one side of a ratio than on the other.
	for round := range rounds {
		progress("encode limit: %s, finished record lines only, whole corpus (run %d of %d)", rec.Name, round+1, rounds)
		g, err := encodeLimit(in, rec, false)
		if err != nil {
			return rec, err
		}
		r.EncodeGzipOnly, r.EncodeGzipOnlyPerCPU = max(r.EncodeGzipOnly, g.EventsPerS), max(r.EncodeGzipOnlyPerCPU, g.EventsPerCPU)
	}
	for round := range rounds {
		progress("baseline: encoding/json of maps, compress/gzip default level, one PutObject per object, one core (run %d of %d)", round+1, rounds)
		events, d, cpu, packed, err := benchBaseline(ctx, logs, b, fmt.Sprintf("bench-baseline-%d", round+1))
		if err != nil {
			return rec, fmt.Errorf("baseline: %w", err)
		}
		r.Baseline = max(r.Baseline, float64(events)/d.Seconds())
		r.BaselinePerCPU = max(r.BaselinePerCPU, float64(events)/cpu.Seconds())
		r.BaselineRatio = float64(st.Bytes+st.Records) / float64(packed)
	}

	accounts := make([]string, c.Accounts)
	for i := range accounts {
		accounts[i] = corpusAccount(i)
	}
	// exportFrom runs the exporter over the corpus in a backend rounds
	// times, each into a bucket of its own, the first with a CPU profile,
	// and returns the best rate by wall clock and per CPU-second, and the
	// last run; export does so from Pebble.
	exportFrom := func(from exportStore, what, bucket string, g gzipSetting, profile string, discard bool) (eps, epcs float64, last exportRun, err error) {
		for round := range rounds {
			progress("export: %s (run %d of %d)", what, round+1, rounds)
			if round > 0 {
				profile = ""
			}
			x, err := benchExport(ctx, from, b, accounts, fmt.Sprintf("%s-%d", bucket, round+1), g, st.Records, profile, discard)
			if err != nil {
				return 0, 0, x, fmt.Errorf("export: %w", err)
			}
			progress("export: run %d: %.0f events/s, %.0f per CPU-second", round+1, x.eps(), x.epcs())
			eps, epcs, last = max(eps, x.eps()), max(epcs, x.epcs()), x
		}
		return eps, epcs, last, nil
	}
	export := func(what, bucket string, g gzipSetting, profile string, discard bool) (eps, epcs float64, last exportRun, err error) {
		return exportFrom(exportStore{log: s, streams: s.Settings()}, what, bucket, g, profile, discard)
	}
	var x exportRun
	r.Export, r.ExportPerCPU, x, err = export(fmt.Sprintf("the exporter at %s, one core, %d objects to versitygw", rec.Name, c.Accounts),
		"bench-export", rec, c.profile("export.pprof"), false)
	if err != nil {
		return rec, err
	}
	r.ExportMBPerS = float64(st.Bytes+st.Records) / 1e6 * r.Export / float64(st.Records)
	r.ExportRatio, r.ExportObjects = float64(st.Bytes+st.Records)/float64(x.Bytes), x.Objects
	r.ExportVsLimit, r.ExportVsBaseline = r.Export/r.EncodeLimit, r.Export/r.Baseline
	r.ExportCPUVsLimit, r.ExportCPUVsBaseline = r.ExportPerCPU/r.EncodeLimitPerCPU, r.ExportPerCPU/r.BaselinePerCPU
	r.ExportVsGzipOnly, r.ExportCPUVsGzipOnly = r.Export/r.EncodeGzipOnly, r.ExportPerCPU/r.EncodeGzipOnlyPerCPU
	if pgs != nil {
		r.PGExport, r.PGExportPerCPU, _, err = exportFrom(fromPG, fmt.Sprintf("the exporter at %s reading PostgreSQL, one core, %d objects to versitygw", rec.Name, c.Accounts),
			"bench-export-pg", rec, c.profile("export-postgres.pprof"), false)
		if err != nil {
			return rec, fmt.Errorf("from PostgreSQL: %w", err)
		}
		r.PGExportVsPebble, r.PGExportCPUVsPebble = r.PGExport/r.Export, r.PGExportPerCPU/r.ExportPerCPU
	}

	r.ExportNoUpload, r.ExportNoUploadPerCPU, _, err = export(fmt.Sprintf("the exporter at %s, one core, %d objects discarded instead of uploaded", rec.Name, c.Accounts),
		"bench-export-discard", rec, c.profile("export-discard.pprof"), true)
	if err != nil {
		return rec, err
	}
	r.ExportNoUploadVsLimit, r.ExportNoUploadCPUVsLimit = r.ExportNoUpload/r.EncodeLimit, r.ExportNoUploadPerCPU/r.EncodeLimitPerCPU
	if pgs != nil {
		r.PGExportNoUpload, r.PGExportNoUploadPerCPU, _, err = exportFrom(fromPG, fmt.Sprintf("the exporter at %s reading PostgreSQL, one core, %d objects discarded instead of uploaded", rec.Name, c.Accounts),
			"bench-export-pg-discard", rec, c.profile("export-postgres-discard.pprof"), true)
		if err != nil {
			return rec, fmt.Errorf("from PostgreSQL: %w", err)
		}
		r.PGExportNoUploadVsPebble, r.PGExportNoUploadCPUVsPebble = r.PGExportNoUpload/r.ExportNoUpload, r.PGExportNoUploadPerCPU/r.ExportNoUploadPerCPU
	}

	std := gzipSetting{"stdlib-6", "stdlib", 6}
	r.ExportStdlib6, _, _, err = export(fmt.Sprintf("the exporter with compress/gzip at its default level (%s), one core", std.Name),
		"bench-export-stdlib6", std, c.profile("export-stdlib6.pprof"), false)
	if err != nil {
		return rec, err
	}
	r.ExportStdlib6VsLim, r.ExportStdlib6VsBase = r.ExportStdlib6/r.EncodeStdlib6, r.ExportStdlib6/r.Baseline
	return rec, nil
}
