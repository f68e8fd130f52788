package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"regexp"
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
	if strings.Contains(string(b), `"pg_`) || strings.Contains(string(b), `"postgres"`) {
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
