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
