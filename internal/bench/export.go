package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/testbed/synth"
)

// benchFlushInterval is the flush interval of the latency, burst and idle
// measurements (the product's is minutes; latency is reported over it).
const benchFlushInterval = time.Second

// startBenchExporter runs the real exporter of store s into the bench's S3,
// with its own metrics registry and a destination that counts objects and
// requests, fed by the store's commits.
func startBenchExporter(s *pebblestore.Store, st *settings.Service, b *benchS3, g gzipSetting) (*exporter.Exporter, *recordingDest, *prometheus.Registry, error) {
	dest := &recordingDest{c: b.dest}
	reg := prometheus.NewRegistry()
	cfg := benchExporterConfig(g)
	cfg.Registerer = reg
	x, err := exporter.New(s, s.Settings(), dest, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := x.Open(); err != nil {
		return nil, nil, nil, err
	}
	return x, dest, reg, nil
}

// benchExporterConfig is the exporter as serve configures it, at setting
// g and the bench's flush interval.
func benchExporterConfig(g gzipSetting) exporter.Config {
	return exporter.Config{
		FlushInterval: benchFlushInterval,
		GzipLevel:     g.Level,
		NewGzipWriter: g.exporterGzip(),
		Classify: func(err error) exporter.Classification {
			var se *s3dest.Error
			if errors.As(err, &se) {
				return exporter.Classification{Code: se.Code, Message: se.Message, Permanent: se.Permanent}
			}
			return exporter.Classification{Code: "EXPORT_FAILED", Message: err.Error()}
		},
	}
}

// checkExported verifies that every account's cursor reached its log's
// end.
func checkExported(s changelog.Source, st *settings.Service, accounts []string) error {
	for _, a := range accounts {
		r, err := st.Get(a)
		if err != nil {
			return err
		}
		end, err := s.End(a)
		if err != nil {
			return err
		}
		if r.Stream.Cursor != end {
			return fmt.Errorf("account %s: cursor %d, log end %d: the export did not finish (last error %+v)", a, r.Stream.Cursor, end, r.Stream.LastError)
		}
	}
	return nil
}

// exportStore is what the export reads and writes of a backend: its log,
// and the settings and stream states the exporter keeps its checkpoint in.
type exportStore struct {
	log     changelog.Source
	streams interface {
		settings.Store
		stream.Checkpoint
	}
}

// exportRun is one export of the pre-filled log.
type exportRun struct {
	Events   int
	Duration time.Duration
	CPU      time.Duration // of this process: the exporter and the store
	Objects  int
	Requests int
	Bytes    int64
}

func (r exportRun) eps() float64 { return float64(r.Events) / r.Duration.Seconds() }

// epcs returns the events per CPU-second of the process.
func (r exportRun) epcs() float64 { return float64(r.Events) / r.CPU.Seconds() }

// benchExport exports the whole log of accounts, from its first entry,
// into a new bucket: the exporter (real s3dest client, versitygw over TLS
// in its own process) runs on one core from the moment it opens (reading
// the settings and the log) until the last object is acknowledged and its
// cursor saved.
// With profile set, the measured phase is CPU-profiled into that file.
//
// With discard the objects go nowhere (no S3 request): the exporter's own
// cost, log read and compression, without the upload's.
func benchExport(ctx context.Context, s exportStore, b *benchS3, accounts []string, bucket string, g gzipSetting, wantEvents int, profile string, discard bool) (exportRun, error) {
	if err := b.bucket(ctx, bucket); err != nil {
		return exportRun{}, err
	}
	st := settings.New(s.streams, nil)
	if err := enableStreams(s.streams, s.log, accounts, bucket, true); err != nil {
		return exportRun{}, err
	}
	dest := &recordingDest{c: b.dest}
	var sink exporter.Destination = dest
	if discard {
		sink = &discardDest{}
	}
	reg := prometheus.NewRegistry()
	cfg := benchExporterConfig(g)
	cfg.Registerer = reg
	x, err := exporter.New(s.log, s.streams, sink, cfg)
	if err != nil {
		return exportRun{}, err
	}
	stop, err := startCPUProfile(profile)
	if err != nil {
		return exportRun{}, err
	}
	runtime.GC()
	prev := runtime.GOMAXPROCS(1)
	start, cpu0 := time.Now(), cpuTime()
	if err := x.Open(); err != nil {
		runtime.GOMAXPROCS(prev)
		stop()
		return exportRun{}, err
	}
	// Close flushes every pending account at once and returns when the
	// last object is stored and its cursor saved.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	err = x.Close(cctx)
	cancel()
	d0, cpu := time.Since(start), cpuTime()-cpu0
	runtime.GOMAXPROCS(prev)
	if perr := stop(); err == nil {
		err = perr
	}
	if err != nil {
		return exportRun{}, err
	}
	if err := checkExported(s.log, st, accounts); err != nil {
		return exportRun{}, err
	}
	events := int(counterValue(reg, "j1ds_export_events_total"))
	if events != wantEvents {
		return exportRun{}, fmt.Errorf("exported %d events, want %d", events, wantEvents)
	}
	if d, ok := sink.(*discardDest); ok {
		return exportRun{Events: events, Duration: d0, CPU: cpu, Objects: int(d.objects.Load()), Bytes: d.bytes.Load()}, nil
	}
	objs, reqs, failed := dest.objects()
	if _, err := uploadsFailed(reg, failed); err != nil {
		return exportRun{}, err
	}
	r := exportRun{Events: events, Duration: d0, CPU: cpu, Objects: len(objs), Requests: reqs}
	for _, o := range objs {
		r.Bytes += o.Bytes
	}
	if n, err := b.count(ctx, bucket); err != nil || n != len(objs) {
		return r, fmt.Errorf("the bucket holds %d objects, the exporter stored %d (%v)", n, len(objs), err)
	}
	return r, nil
}

// benchBaseline runs the naive pipeline on the same objects: the records
// as maps (decoded beforehand, untimed) → encoding/json → compress/gzip
// at its default level into a buffer → one PutObject per object, on one
// core. It returns the events, the timed duration and the gzip bytes.
func benchBaseline(ctx context.Context, logs [][]changelog.Entry, b *benchS3, bucket string) (events int, d, cpu time.Duration, packed int64, err error) {
	if err := b.bucket(ctx, bucket); err != nil {
		return 0, 0, 0, 0, err
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for a, es := range logs {
		if len(es) == 0 {
			continue
		}
		var objs []map[string]any
		for _, e := range es {
			for _, c := range e.Changes {
				var m map[string]any
				if err := json.Unmarshal(c.Record, &m); err != nil {
					return 0, 0, 0, 0, err
				}
				objs = append(objs, m)
			}
		}
		key := exporter.ObjectKey(corpusAccount(a), es[0].CommitTime, ".jsonl")
		start, cpu0 := time.Now(), cpuTime()
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		for _, m := range objs {
			line, err := json.Marshal(m)
			if err != nil {
				return 0, 0, 0, 0, err
			}
			zw.Write(line)
			zw.Write(newlineBytes)
		}
		if err := zw.Close(); err != nil {
			return 0, 0, 0, 0, err
		}
		_, err := b.plain.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes())})
		if err != nil {
			return 0, 0, 0, 0, fmt.Errorf("baseline put object %s: %w", key, err)
		}
		d += time.Since(start)
		cpu += cpuTime() - cpu0
		events += len(objs)
		packed += int64(buf.Len())
	}
	return events, d, cpu, packed, nil
}

// latencyResult holds the latency and cost figures of a steady load.
type latencyResult struct {
	Accounts, Commits, Changes int
	Duration                   time.Duration
	// Latency from a commit's return to the acknowledgement of the object
	// holding it, minus the flush interval, in seconds.
	P50, P99, Max float64
	Objects       int
	Requests      int
	// MinObjects is the fewest objects that meet the flush interval: per
	// account, a new object at the first change more than one interval
	// after the first change of the current one.
	MinObjects  int
	Bytes       int64
	RecordBytes int64
	// FlushMean is the mean time to build and upload one object.
	FlushMean float64
}

type commitMark struct {
	micros int64
	done   time.Time
}

// benchLatency commits a steady load (each account a transaction of 1 to
// 20 entity updates every 50 to 350 ms) for d with the exporter at the
// bench's flush interval, then waits for the last objects, and returns
// the latency of every commit and the cost of the objects.
func benchLatency(ctx context.Context, dir string, b *benchS3, accounts int, d time.Duration, g gzipSetting) (latencyResult, error) {
	res := latencyResult{Accounts: accounts}
	const bucket = "bench-latency"
	if err := b.bucket(ctx, bucket); err != nil {
		return res, err
	}
	s, err := pebblestore.Open(filepath.Join(dir, "latency"), pebblestore.Options{})
	if err != nil {
		return res, err
	}
	defer s.Close()
	templates, err := entityTemplates(40, 7)
	if err != nil {
		return res, err
	}
	names := make([]string, accounts)
	for i := range names {
		names[i] = fmt.Sprintf("lat-%04d", i)
		if _, err := upsertRaw(s, names[i], templates); err != nil {
			return res, err
		}
	}
	st := settings.New(s.Settings(), nil)
	if err := enableStreams(s.Settings(), s, names, bucket, false); err != nil {
		return res, err
	}
	x, dest, reg, err := startBenchExporter(s, st, b, g)
	if err != nil {
		return res, err
	}

	marks := make([][]commitMark, accounts)
	var wg sync.WaitGroup
	errc := make(chan error, accounts)
	var mu sync.Mutex
	start := time.Now()
	deadline := start.Add(d)
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 99))
			seq := 0
			for {
				time.Sleep(time.Duration(50+r.IntN(301)) * time.Millisecond)
				if time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				batch := make([][]byte, 1+r.IntN(20))
				for k := range batch {
					seq++
					batch[k] = withSeq(templates[r.IntN(len(templates))], seq)
				}
				c, err := upsertRaw(s, name, batch)
				if err != nil {
					errc <- err
					return
				}
				marks[i] = append(marks[i], commitMark{micros: c.CommitTime, done: time.Now()})
				mu.Lock()
				res.Commits++
				res.Changes += c.Changes
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		x.Close(ctx)
		return res, err
	}
	res.Duration = time.Since(start)
	// Let the last batches reach their flush interval, then stop.
	for wait := time.Now().Add(benchFlushInterval + 30*time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		pending := false
		for _, n := range names {
			if !x.Status(n).PendingSince.IsZero() {
				pending = true
				break
			}
		}
		if !pending {
			break
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = x.Close(cctx)
	cancel()
	if err != nil {
		return res, err
	}
	if err := checkExported(s, st, names); err != nil {
		return res, err
	}
	objs, reqs, failed := dest.objects()
	if _, err := uploadsFailed(reg, failed); err != nil {
		return res, err
	}
	res.Objects, res.Requests = len(objs), reqs
	for _, o := range objs {
		res.Bytes += o.Bytes
	}
	res.RecordBytes = int64(counterValue(reg, "j1ds_export_record_bytes_total"))
	if n, sum := histogramValue(reg, "j1ds_export_flush_duration_seconds"); n > 0 {
		res.FlushMean = sum / float64(n)
	}
	// Each commit is in the object of its account with the greatest key
	// not after the key its own commit time would give (keys sort in
	// commit order within an account).
	byAccount := map[string][]storedObject{}
	for _, o := range objs {
		a := accountOfKey(o.Key)
		byAccount[a] = append(byAccount[a], o)
	}
	var lat []float64
	for i, name := range names {
		objsOf := byAccount[name]
		sort.Slice(objsOf, func(p, q int) bool { return objsOf[p].Key < objsOf[q].Key })
		windowEnd := int64(-1)
		for _, m := range marks[i] {
			k := exporter.ObjectKey(name, m.micros, ".jsonl")
			j := sort.Search(len(objsOf), func(p int) bool { return objsOf[p].Key > k }) - 1
			if j < 0 {
				return res, fmt.Errorf("no object holds the commit of %s at %d", name, m.micros)
			}
			lat = append(lat, objsOf[j].At.Sub(m.done).Seconds()-benchFlushInterval.Seconds())
			if m.micros > windowEnd {
				res.MinObjects++
				windowEnd = m.micros + benchFlushInterval.Microseconds()
			}
		}
	}
	sorted := sortedCopy(lat)
	res.P50, res.P99, res.Max = percentile(sorted, 0.5), percentile(sorted, 0.99), sorted[len(sorted)-1]
	return res, nil
}

// startCPUProfile starts profiling the CPU into path ("": no profile) and
// returns the function that stops it.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// counterValue returns the value of a counter of reg (0 when absent).
func counterValue(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// uploadsFailed returns how many failed uploads the exporter cancelled
// itself (an attempt that stalled past what the slow lane takes, or ran
// past its timeout: docs/limits.md), which it sends again under the same
// key, and an error when the destination saw any other failed upload.
func uploadsFailed(reg *prometheus.Registry, failed int) (int, error) {
	var resent float64
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() != "j1ds_export_slow_attempts_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "outcome" && (l.GetValue() == "cancelled" || l.GetValue() == "timed_out") {
						resent += m.GetCounter().GetValue()
					}
				}
			}
		}
	}
	if failed > int(resent) {
		return 0, fmt.Errorf("%d uploads failed (%d of them cancelled by the exporter as stalled or timed out)", failed, int(resent))
	}
	return failed, nil
}

// histogramValue returns the count and sum of a histogram of reg.
func histogramValue(reg *prometheus.Registry, name string) (uint64, float64) {
	mfs, err := reg.Gather()
	if err != nil {
		return 0, 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}

// accountOfKey returns the account id of an object key (see
// exporter.ObjectKey).
func accountOfKey(key string) string {
	const p = exporter.KeyPrefix + "accountId="
	rest := key[len(p):]
	for i := range len(rest) {
		if rest[i] == '/' {
			return rest[:i]
		}
	}
	return rest
}

// entityTemplates returns the entities of a synthetic world of about n
// entities, as upload JSON.
func entityTemplates(n int, seed int64) ([][]byte, error) {
	ents, _ := synth.New(synth.Config{Seed: seed, Scope: corpusScope, Entities: n}).Step()
	out := make([][]byte, len(ents))
	for i, e := range ents {
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out[i] = raw
	}
	return out, nil
}

// withSeq returns an upload JSON object with one more property, benchSeq:
// an update of the object.
func withSeq(raw []byte, seq int) []byte {
	b := make([]byte, 0, len(raw)+24)
	b = append(b, raw[:len(raw)-1]...)
	b = fmt.Appendf(b, `,"benchSeq":%d}`, seq)
	return b
}

// upsertRaw commits entity uploads in one transaction.
func upsertRaw(s *pebblestore.Store, account string, objs [][]byte) (graph.Commit, error) {
	return s.Update(account, func(tx graph.Txn) error {
		for _, raw := range objs {
			in, err := graph.ParseObject(graph.KindEntity, raw)
			if err != nil {
				return err
			}
			in.Scope, in.Source = corpusScope, "integration-managed"
			if _, _, err := tx.Upsert(&in); err != nil {
				return err
			}
		}
		return nil
	})
}

// discardDest counts the objects and bytes it is given and stores nothing.
type discardDest struct{ objects, bytes atomic.Int64 }

func (d *discardDest) Object(context.Context, string, string) exporter.Object {
	return &discardObject{d: d}
}

type discardObject struct{ d *discardDest }

func (o *discardObject) Write(p []byte) (int, error) {
	o.d.bytes.Add(int64(len(p)))
	return len(p), nil
}

func (o *discardObject) Close() error {
	o.d.objects.Add(1)
	return nil
}

func (o *discardObject) Abort() {}
