package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// The ingest measurements: the graph store's synced transactions and the
// sync API against raw Pebble writing the store's own transactions again
// (same keys, values and batches) as synced batches.

// ingestCorpus builds n deterministic JupiterOne-like entities of a dozen
// types with 10 to 40 properties.
func ingestCorpus(n int) [][]byte {
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

// rawBatch is one transaction of the graph store as the raw Pebble
// baseline writes it: its key/value pairs.
type rawBatch [][2][]byte

// storeBatches ingests the corpus into a graph store once (untimed) and
// returns what the store wrote, for the raw baseline to write again: per
// writer, each transaction's key/value pairs in commit order. Each key of
// the resulting database is given to the transaction that wrote it: a log
// entry ('L') and its global index ('G') by LSN, every other key (the
// object, its type and scope index) by the object id it ends with, which
// a change of one entry names. A key left over is an error: the baseline
// writes the store's bytes, in its keys' order, or nothing.
func storeBatches(dir string, corpus [][]byte, batch, writers int) ([][]rawBatch, error) {
	if _, err := benchStore(dir, corpus, batch, writers); err != nil {
		return nil, err
	}
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	type slot struct{ writer, index int }
	byLSN := make(map[uint64]slot)
	byID := make(map[string]uint64)
	out := make([][]rawBatch, writers)
	for w := range writers {
		es, err := s.ReadLog(fmt.Sprintf("bench%d", w), 0, math.MaxInt, math.MaxInt)
		if err != nil {
			return nil, err
		}
		out[w] = make([]rawBatch, len(es))
		for i, e := range es {
			byLSN[e.LSN] = slot{w, i}
			for _, c := range e.Changes {
				byID[c.ID] = e.LSN
			}
		}
	}
	it, err := s.DB().NewIter(nil)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	const idLen = 36 // graph.ObjectID: a UUID
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		var lsn uint64
		switch {
		case k[0] == 'L' && len(k) > 9:
			lsn = binary.BigEndian.Uint64(k[len(k)-8:])
		case k[0] == 'G' && len(k) == 9:
			lsn = binary.BigEndian.Uint64(k[1:])
		case len(k) > idLen:
			lsn = byID[string(k[len(k)-idLen:])]
		}
		if lsn == 0 {
			return nil, fmt.Errorf("key %q of the store belongs to no transaction", k)
		}
		sl, ok := byLSN[lsn]
		if !ok {
			return nil, fmt.Errorf("key %q of the store names LSN %d, which is in no log", k, lsn)
		}
		kv := [2][]byte{append([]byte(nil), k...), append([]byte(nil), it.Value()...)}
		out[sl.writer][sl.index] = append(out[sl.writer][sl.index], kv)
	}
	return out, it.Error()
}

// benchRawPebble writes the store's transactions again (see storeBatches)
// as raw synced Pebble batches, each writer its own account's in order,
// into Pebble opened with the store's options (pebblestore.PebbleOptions: the
// comparison is of the store, not of a tuning), or with Pebble's defaults
// when defaults is set. It returns the entities written.
func benchRawPebble(dir string, batches [][]rawBatch, entities int, defaults bool) (int, error) {
	opts := pebblestore.PebbleOptions()
	if defaults {
		opts = &pebble.Options{}
	}
	opts.Logger = quietPebble{}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	err = eachWriter(len(batches), func(w int) error {
		for _, rb := range batches[w] {
			b := db.NewBatch()
			for _, kv := range rb {
				_ = b.Set(kv[0], kv[1], nil)
			}
			err := b.Commit(pebble.Sync)
			b.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	return entities, err
}

// eachWriter runs fn for writers 0 to n-1 at once and returns the first
// error.
func eachWriter(n int, fn func(w int) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(w); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// inBatches splits the corpus over writers goroutines, each calling fn for
// consecutive batches of its share (w is the writer, i the offset of the
// batch in its share), and returns the first error.
func inBatches(corpus [][]byte, batch, writers int, fn func(w, i int, items [][]byte) error) error {
	parts := shard(corpus, writers)
	return eachWriter(writers, func(w int) error {
		part := parts[w]
		for i := 0; i < len(part); i += batch {
			if err := fn(w, i, part[i:min(i+batch, len(part))]); err != nil {
				return err
			}
		}
		return nil
	})
}

func benchStore(dir string, corpus [][]byte, batch, writers int) (int, error) {
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return writeCorpus(s, corpus, batch, writers)
}

// writeCorpus upserts the corpus into g in transactions of batch entities,
// spread over writers goroutines, each on its own account (benchW for
// writer W). A transaction that reads many objects faster in one batch
// (graph.Prefetcher: PostgreSQL's) is given the ids first, as a writer of
// many objects is asked to.
func writeCorpus(g graph.Graph, corpus [][]byte, batch, writers int) (int, error) {
	err := inBatches(corpus, batch, writers, func(w, _ int, items [][]byte) error {
		return upsertEntities(g, fmt.Sprintf("bench%d", w), items)
	})
	return len(corpus), err
}

// upsertEntities commits entities of the ingest corpus to an account in one
// transaction, handing their ids to a graph.Prefetcher first where the
// store has one.
func upsertEntities(g graph.Graph, account string, items [][]byte) error {
	_, err := g.Update(account, func(tx graph.Txn) error {
		p, ok := tx.(graph.Prefetcher)
		if !ok {
			for _, raw := range items {
				if err := upsertEntity(tx, raw); err != nil {
					return err
				}
			}
			return nil
		}
		ins := make([]graph.Input, len(items))
		ids := make([]string, len(items))
		for i, raw := range items {
			in, err := parseEntity(raw)
			if err != nil {
				return err
			}
			ins[i], ids[i] = in, graph.ObjectID(account, in.Scope, in.Key)
		}
		if err := p.Prefetch(ids); err != nil {
			return err
		}
		for i := range ins {
			if _, _, err := tx.Upsert(&ins[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// parseEntity parses one entity of the ingest corpus as the bench's
// integration uploads it.
func parseEntity(raw []byte) (graph.Input, error) {
	in, err := graph.ParseObject(graph.KindEntity, raw)
	in.Scope, in.Source = "bench", "api"
	return in, err
}

func upsertEntity(tx graph.Txn, raw []byte) error {
	in, err := parseEntity(raw)
	if err != nil {
		return err
	}
	_, _, err = tx.Upsert(&in)
	return err
}

// benchSyncAPI runs one sync job of the corpus through the HTTP API on
// loopback: create, upload in batches, finalize, wait for FINISHED.
func benchSyncAPI(ctx context.Context, dir string, corpus [][]byte, batch int) (int, error) {
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return syncAPI(ctx, s, s.Accounts(), s.Jobs(), corpus, batch)
}

// syncAPI is benchSyncAPI on the stores of a backend.
func syncAPI(ctx context.Context, g graph.Graph, accts accounts.Store, js syncjobs.Store, corpus [][]byte, batch int) (int, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	jobs, err := syncjobs.Open(g, js, syncjobs.Options{Logger: log})
	if err != nil {
		return 0, err
	}
	defer jobs.Close()
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
	srv := &http.Server{Handler: api.New(api.Config{Graph: g, Accounts: accts, Jobs: jobs, Logger: log}), ReadHeaderTimeout: 10 * time.Second}
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

// benchIngest runs the ingest measurements of the first bench.
func benchIngest(ctx context.Context, c Config, dir string, r *report, progress func(string, ...any)) error {
	corpus := ingestCorpus(c.Entities)
	var bytesTotal int
	for _, e := range corpus {
		bytesTotal += len(e)
	}
	// Each measurement is the best of c.rounds() runs on fresh databases
	// (three, or one with --quick, for every row alike): they are short
	// and fsync-bound, and one run is at the mercy of whatever else the
	// machine does for those seconds.
	rounds := c.rounds()
	measure := func(name string, f func(dir string) (int, error)) (float64, error) {
		best := 0.0
		for i := range rounds {
			progress("ingest: %s (run %d of %d)", name, i+1, rounds)
			sub, err := os.MkdirTemp(dir, "ingest-")
			if err != nil {
				return 0, err
			}
			start := time.Now()
			n, err := f(sub)
			rate := float64(n) / time.Since(start).Seconds()
			os.RemoveAll(sub)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			best = max(best, rate)
		}
		return best, nil
	}
	// The raw baseline writes the store's own transactions again: the
	// same keys (object ids are hashes, so the store's writes land all
	// over the key space, as they would in any raw use of these keys) and
	// the same values, in the same batches.
	capture := func(writers int) ([][]rawBatch, error) {
		progress("ingest: the graph store's transactions (%d writers), captured for the raw baseline", writers)
		sub, err := os.MkdirTemp(dir, "capture-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(sub)
		return storeBatches(sub, corpus, c.Batch, writers)
	}
	one, err := capture(1)
	if err != nil {
		return err
	}
	if r.RawPebbleDefaults, err = measure("raw Pebble with its default options, the store's batches, synced", func(d string) (int, error) { return benchRawPebble(d, one, len(corpus), true) }); err != nil {
		return err
	}
	if r.RawPebble, err = measure("raw Pebble, the store's batches, synced", func(d string) (int, error) { return benchRawPebble(d, one, len(corpus), false) }); err != nil {
		return err
	}
	one = nil
	if r.Ingest, err = measure("graph store, synced transactions", func(d string) (int, error) {
		stop, err := startCPUProfile(c.profile("ingest.pprof"))
		if err != nil {
			return 0, err
		}
		defer stop()
		return benchStore(d, corpus, c.Batch, 1)
	}); err != nil {
		return err
	}
	conc, err := capture(c.Writers)
	if err != nil {
		return err
	}
	if r.RawPebbleConc, err = measure(fmt.Sprintf("raw Pebble, %d writers", c.Writers), func(d string) (int, error) { return benchRawPebble(d, conc, len(corpus), false) }); err != nil {
		return err
	}
	conc = nil
	if r.IngestConc, err = measure(fmt.Sprintf("graph store, %d writers", c.Writers), func(d string) (int, error) { return benchStore(d, corpus, c.Batch, c.Writers) }); err != nil {
		return err
	}
	if r.SyncAPI, err = measure("sync API, upload + finalize", func(d string) (int, error) { return benchSyncAPI(ctx, d, corpus, c.Batch) }); err != nil {
		return err
	}
	r.Entities, r.Batch, r.Writers, r.AvgEntityBytes = c.Entities, c.Batch, c.Writers, bytesTotal/len(corpus)
	// The goal is judged against the faster raw Pebble: the store's
	// options (newest table format, MinLZ, bloom filters) made raw writes
	// up to a quarter slower, which would flatter the store.
	rawBest := max(r.RawPebble, r.RawPebbleDefaults)
	r.IngestVsRaw, r.IngestConcVsRaw, r.SyncAPIVsRaw = r.Ingest/rawBest, r.IngestConc/r.RawPebbleConc, r.SyncAPI/rawBest
	r.IngestVsRawDefaults, r.IngestVsRawSame = r.Ingest/r.RawPebbleDefaults, r.Ingest/r.RawPebble
	r.ingestMeasurement = []ingestResult{
		{"raw Pebble, Pebble's default options", r.RawPebbleDefaults, r.RawPebbleDefaults},
		{"raw Pebble, the store's batches, synced", r.RawPebble, r.RawPebble},
		{"graph store, synced transactions", r.Ingest, r.RawPebble},
		{"  against raw Pebble with its default options", r.Ingest, r.RawPebbleDefaults},
		{fmt.Sprintf("raw Pebble, %d writers", c.Writers), r.RawPebbleConc, r.RawPebbleConc},
		{fmt.Sprintf("graph store, %d writers", c.Writers), r.IngestConc, r.RawPebbleConc},
		{"sync API, upload + finalize", r.SyncAPI, r.RawPebble},
	}
	return nil
}
