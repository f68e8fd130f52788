package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

type benchConfig struct {
	Entities int
	Batch    int
	Writers  int
	JSON     bool
	Dir      string
}

func runBench(ctx context.Context, args []string) error {
	c := benchConfig{Entities: 50000, Batch: 500, Writers: 4}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&c.Entities, "entities", c.Entities, "entities written by each measurement")
	fs.IntVar(&c.Batch, "batch", c.Batch, "entities per transaction (and per upload request)")
	fs.IntVar(&c.Writers, "writers", c.Writers, "concurrent writers, each on its own account, in the concurrent runs")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object instead of a table")
	fs.StringVar(&c.Dir, "dir", "", "directory for the scratch databases (default: a temporary directory)")
	if err := envFlags(fs, args); err != nil {
		return err
	}
	if c.Entities < 1 || c.Batch < 1 || c.Writers < 1 {
		return fmt.Errorf("%w: --entities, --batch and --writers must be positive", errUsage)
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
	corpus := benchCorpus(c.Entities)
	var bytesTotal int
	for _, e := range corpus {
		bytesTotal += len(e)
	}
	progress := func(name string) {
		if !c.JSON {
			fmt.Fprintf(os.Stderr, "measuring %s...\n", name)
		}
	}
	type result struct {
		name string
		rate float64
	}
	var results []result
	measure := func(name string, f func(dir string) (int, error)) (float64, error) {
		progress(name)
		sub, err := os.MkdirTemp(dir, "run-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(sub)
		start := time.Now()
		n, err := f(sub)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		rate := float64(n) / time.Since(start).Seconds()
		results = append(results, result{name, rate})
		return rate, nil
	}
	raw, err := measure("raw Pebble, same bytes, synced batches", func(d string) (int, error) { return benchRawPebble(d, corpus, c.Batch, 1) })
	if err != nil {
		return err
	}
	store, err := measure("graph store, synced transactions", func(d string) (int, error) { return benchStore(d, corpus, c.Batch, 1) })
	if err != nil {
		return err
	}
	rawConc, err := measure(fmt.Sprintf("raw Pebble, %d writers", c.Writers), func(d string) (int, error) { return benchRawPebble(d, corpus, c.Batch, c.Writers) })
	if err != nil {
		return err
	}
	storeConc, err := measure(fmt.Sprintf("graph store, %d writers", c.Writers), func(d string) (int, error) { return benchStore(d, corpus, c.Batch, c.Writers) })
	if err != nil {
		return err
	}
	syncAPI, err := measure("sync API, upload + finalize", func(d string) (int, error) { return benchSyncAPI(ctx, d, corpus, c.Batch) })
	if err != nil {
		return err
	}
	out := map[string]any{
		"entities":                  c.Entities,
		"batch":                     c.Batch,
		"writers":                   c.Writers,
		"avg_entity_bytes":          bytesTotal / len(corpus),
		"raw_pebble_events_per_s":   raw,
		"ingest_events_per_s":       store,
		"ingest_vs_raw_pebble":      store / raw,
		"raw_pebble_concurrent_eps": rawConc,
		"ingest_concurrent_eps":     storeConc,
		"ingest_concurrent_vs_raw":  storeConc / rawConc,
		"sync_api_events_per_s":     syncAPI,
		"sync_api_vs_raw_pebble":    syncAPI / raw,
		"gomaxprocs":                runtime.GOMAXPROCS(0),
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Printf("j1ds bench: %d entities of %d bytes on average, %d per transaction, GOMAXPROCS=%d\n\n",
		c.Entities, bytesTotal/len(corpus), c.Batch, runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measurement\tentities/s\tvs raw Pebble\t")
	base := map[int]float64{0: raw, 1: raw, 2: rawConc, 3: rawConc, 4: raw}
	for i, r := range results {
		fmt.Fprintf(tw, "%s\t%.0f\t%.2fx\t\n", r.name, r.rate, r.rate/base[i])
	}
	return tw.Flush()
}

// benchCorpus builds n deterministic JupiterOne-like entities of a dozen
// types with 10 to 40 properties.
func benchCorpus(n int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	types := []string{"aws_iam_user", "aws_s3_bucket", "aws_instance", "github_repo", "github_user",
		"okta_user", "okta_group", "slack_user", "jira_issue", "google_user", "azure_vm", "crowdstrike_sensor"}
	classes := []string{"User", "DataStore", "Host", "CodeRepo", "User", "User", "UserGroup", "User", "Issue", "User", "Host", "HostAgent"}
	out := make([][]byte, n)
	for i := range out {
		t := r.IntN(len(types))
		e := map[string]any{
			"_key":        fmt.Sprintf("%s:%08d", types[t], i),
			"_type":       types[t],
			"_class":      []string{classes[t]},
			"name":        fmt.Sprintf("object-%d", i),
			"displayName": fmt.Sprintf("Object %d of %s", i, types[t]),
			"createdOn":   1700000000000 + int64(i)*1000,
			"active":      r.IntN(2) == 0,
		}
		for p := range 6 + r.IntN(31) {
			switch p % 3 {
			case 0:
				e[fmt.Sprintf("attr%d", p)] = fmt.Sprintf("value-%x", r.Uint32())
			case 1:
				e[fmt.Sprintf("count%d", p)] = r.IntN(100000)
			default:
				e[fmt.Sprintf("flag%d", p)] = r.IntN(2) == 0
			}
		}
		out[i], _ = json.Marshal(e)
	}
	return out
}

func shard(corpus [][]byte, writers int) [][][]byte {
	parts := make([][][]byte, writers)
	for i, e := range corpus {
		parts[i%writers] = append(parts[i%writers], e)
	}
	return parts
}

func benchRawPebble(dir string, corpus [][]byte, batch, writers int) (int, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	// The same bytes the store writes per entity: the object (a 16-byte
	// hash and its JSON), two index keys, and per batch one log entry
	// holding every record and its index key.
	err = inBatches(corpus, batch, writers, func(w, i int, items [][]byte) error {
		b := db.NewBatch()
		defer b.Close()
		var entry []byte
		for j, e := range items {
			id := fmt.Appendf(nil, "%08d-0000-5000-8000-%012d", w, i+j)
			obj := append(make([]byte, 16, 16+len(e)), e...)
			_ = b.Set(append([]byte("obench\x00"), id...), obj, nil)
			_ = b.Set(fmt.Appendf(nil, "tbench\x00eaws_iam_user\x00%s", id), nil, nil)
			_ = b.Set(fmt.Appendf(nil, "sbench\x00bench\x00e%s", id), []byte("aws_iam_user"), nil)
			entry = append(entry, `{"operation":"c","eventType":"entity","properties":`...)
			entry = append(entry, e...)
			entry = append(entry, `,"labels":["Entity","User","aws_iam_user"]}`...)
		}
		_ = b.Set(fmt.Appendf(nil, "Lbench%d\x00%08d", w, i), entry, nil)
		_ = b.Set(fmt.Appendf(nil, "G%d%08d", w, i), []byte("0000000000bench"), nil)
		return b.Commit(pebble.Sync)
	})
	return len(corpus), err
}

// inBatches splits the corpus over writers goroutines, each calling fn for
// consecutive batches of its share (w is the writer, i the offset of the
// batch in its share), and returns the first error.
func inBatches(corpus [][]byte, batch, writers int, fn func(w, i int, items [][]byte) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w, part := range shard(corpus, writers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < len(part); i += batch {
				if err := fn(w, i, part[i:min(i+batch, len(part))]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func benchStore(dir string, corpus [][]byte, batch, writers int) (int, error) {
	s, err := graph.Open(dir, graph.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	err = inBatches(corpus, batch, writers, func(w, _ int, items [][]byte) error {
		_, err := s.Update(fmt.Sprintf("bench%d", w), func(tx *graph.Txn) error {
			for _, raw := range items {
				in, err := graph.ParseObject(graph.KindEntity, raw)
				if err != nil {
					return err
				}
				in.Scope, in.Source = "bench", "api"
				if _, _, err := tx.Upsert(&in); err != nil {
					return err
				}
			}
			return nil
		})
		return err
	})
	return len(corpus), err
}

// benchSyncAPI runs one sync job of the corpus through the HTTP API on
// loopback: create, upload in batches, finalize, wait for FINISHED.
func benchSyncAPI(ctx context.Context, dir string, corpus [][]byte, batch int) (int, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := graph.Open(dir, graph.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	jobs, err := syncjobs.Open(s, syncjobs.Options{Logger: log})
	if err != nil {
		return 0, err
	}
	defer jobs.Close()
	accts := accounts.New(s.DB())
	if _, err := accts.CreateAccount("bench", nil); err != nil {
		return 0, err
	}
	key, _, err := accts.CreateKey("bench", accounts.RoleMember)
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: api.New(api.Config{Graph: s, Accounts: accts, Jobs: jobs, Logger: log}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/persister/synchronization/jobs"
	call := func(path string, body []byte) (syncjobs.Job, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("JupiterOne-Account", "bench")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return syncjobs.Job{}, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return syncjobs.Job{}, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		var jr struct{ Job syncjobs.Job }
		return jr.Job, json.Unmarshal(b, &jr)
	}
	j, err := call("", []byte(`{"source":"api","scope":"bench","syncMode":"PATCH"}`))
	if err != nil {
		return 0, err
	}
	for i := 0; i < len(corpus); i += batch {
		var b bytes.Buffer
		b.WriteString(`{"entities":[`)
		for k, e := range corpus[i:min(i+batch, len(corpus))] {
			if k > 0 {
				b.WriteByte(',')
			}
			b.Write(e)
		}
		b.WriteString(`]}`)
		if _, err := call("/"+j.ID+"/entities", b.Bytes()); err != nil {
			return 0, err
		}
	}
	if _, err := call("/"+j.ID+"/finalize", []byte(`{}`)); err != nil {
		return 0, err
	}
	if err := jobs.Wait(ctx, j.ID); err != nil {
		return 0, err
	}
	final, err := jobs.Get("bench", j.ID)
	if err != nil {
		return 0, err
	}
	if final.Status != syncjobs.StatusFinished || final.NumEntitiesCreated != len(corpus) {
		return 0, fmt.Errorf("sync job ended %s with %d entities created, want FINISHED with %d", final.Status, final.NumEntitiesCreated, len(corpus))
	}
	return len(corpus), nil
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
