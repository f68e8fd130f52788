package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/testbed/synth"
)

// procStatus returns a field of /proc/self/status in bytes (VmRSS, VmHWM),
// 0 when it cannot be read.
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok || string(name) != field {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
		return kb << 10
	}
	return 0
}

// resetPeakRSS makes VmHWM the current RSS (Linux: clear_refs 5) and
// reports whether it could.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// heapBytes returns the bytes of live and not yet swept heap objects.
func heapBytes() uint64 {
	return readMetric("/memory/classes/heap/objects:bytes")
}

// goBytes returns the memory the Go runtime holds from the OS (heap,
// stacks, metadata), less what it released: the Go share of the RSS.
func goBytes() uint64 {
	total, released := readMetric("/memory/classes/total:bytes"), readMetric("/memory/classes/heap/released:bytes")
	return total - min(total, released)
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// cpuTime returns the CPU time (user and system) of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memSampler records the peak RSS and Go heap while it runs.
type memSampler struct {
	stop          chan struct{}
	done          chan struct{}
	rss, hep, gos uint64
}

func startMemSampler(every time.Duration) *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			m.rss = max(m.rss, procStatus("VmRSS"))
			m.hep = max(m.hep, heapBytes())
			m.gos = max(m.gos, goBytes())
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Stop ends sampling and returns the peaks of the RSS, the live heap and
// the memory the Go runtime holds.
func (m *memSampler) Stop() (rss, heap, gomem uint64) {
	close(m.stop)
	<-m.done
	return m.rss, m.hep, m.gos
}

// burstResult is the memory of a burst.
type burstResult struct {
	Changes, Accounts int
	StartRSS          uint64 // before the burst
	PeakRSS, PeakHeap uint64
	PeakGo            uint64 // memory held by the Go runtime (the rest of the RSS is Pebble's cache and memtables, C allocations)
	HWMReset          bool   // VmHWM was reset before the burst (else: sampled VmRSS only)
	Ingest            time.Duration
	Drain             time.Duration // from the last commit until the last object is stored
	Objects, Requests int
	// Resent counts the uploads the exporter cancelled as stalled (past
	// what its slow lane takes) and sent again.
	Resent int
}

// benchBurst commits changes over accounts as fast as concurrent writers
// can (each account its entity and relationship creates, then entity
// updates, in transactions of 100), with the exporter streaming every
// account at the bench's flush interval, and measures the peak RSS and Go
// heap until the last change is in S3.
func benchBurst(ctx context.Context, dir string, b *benchS3, changes, accounts int, g gzipSetting, profile string, progress func(string, ...any)) (burstResult, error) {
	res := burstResult{Changes: changes, Accounts: accounts}
	const bucket = "bench-burst"
	if err := b.bucket(ctx, bucket); err != nil {
		return res, err
	}
	share := max(1, changes/accounts)
	ents, rels, err := worldTemplates(max(10, share/8), 11)
	if err != nil {
		return res, err
	}
	names := make([]string, accounts)
	for i := range names {
		names[i] = fmt.Sprintf("burst-%04d", i)
	}
	progress("burst: enabling %d accounts", accounts)
	s, err := pebblestore.Open(filepath.Join(dir, "burst"), pebblestore.Options{})
	if err != nil {
		return res, err
	}
	defer s.Close()
	if err := enableStreams(s.Settings(), s, names, bucket, false); err != nil {
		return res, err
	}
	st := settings.New(s.Settings(), nil)
	x, dest, reg, err := startBenchExporter(s, st, b, g)
	if err != nil {
		return res, err
	}

	runtime.GC()
	debug.FreeOSMemory()
	res.StartRSS = procStatus("VmRSS")
	res.HWMReset = resetPeakRSS()
	sampler := startMemSampler(20 * time.Millisecond)
	stopProfile, err := startCPUProfile(profile)
	if err != nil {
		sampler.Stop()
		return res, err
	}
	defer stopProfile()
	progress("burst: %d changes over %d accounts", share*accounts, accounts)
	start := time.Now()
	const writers, txSize = 8, 100
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*burstAccount
			for i := w; i < accounts; i += writers {
				mine = append(mine, newBurstAccount(names[i], ents, rels, share, uint64(i)))
			}
			for live := len(mine); live > 0; {
				live = 0
				for _, sm := range mine {
					if sm.next >= sm.share {
						continue
					}
					if ctx.Err() != nil {
						errc <- ctx.Err()
						return
					}
					live++
					end := min(sm.next+txSize, sm.share)
					_, err := s.Update(sm.name, func(tx graph.Txn) error {
						for k := sm.next; k < end; k++ {
							raw, rel := sm.op(k)
							kind := graph.KindEntity
							if rel {
								kind = graph.KindRelationship
							}
							in, err := graph.ParseObject(kind, raw)
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
					if err != nil {
						errc <- err
						return
					}
					sm.next = end
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	res.Ingest = time.Since(start)
	if err := <-errc; err != nil {
		x.Close(ctx)
		sampler.Stop()
		return res, err
	}
	progress("burst: ingested in %s; waiting for the exporter", res.Ingest.Round(time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	err = x.Close(cctx)
	cancel()
	res.Drain = time.Since(start) - res.Ingest
	res.PeakRSS, res.PeakHeap, res.PeakGo = sampler.Stop()
	if res.HWMReset {
		res.PeakRSS = max(res.PeakRSS, procStatus("VmHWM"))
	}
	if err != nil {
		return res, err
	}
	if err := checkExported(s, st, names); err != nil {
		return res, err
	}
	if events := int(counterValue(reg, "j1ds_export_events_total")); events != share*accounts {
		return res, fmt.Errorf("burst: exported %d events, want %d", events, share*accounts)
	}
	objs, reqs, failed := dest.objects()
	if res.Resent, err = uploadsFailed(reg, failed); err != nil {
		return res, fmt.Errorf("burst: %w", err)
	}
	res.Objects, res.Requests = len(objs), reqs
	return res, nil
}

// burstAccount is one account's changes in a burst: share uploads,
// entity creates then relationship creates (at most 60% of the share),
// then updates of random entities, made as they are committed so that the
// generator holds next to nothing.
type burstAccount struct {
	name    string
	ents    [][]byte // shared templates
	creates [][]byte // shared templates: entities, then relationships
	rels    int      // creates[rels:] are relationships
	share   int
	next    int
	rng     *rand.Rand
}

func newBurstAccount(name string, ents, rels [][]byte, share int, seed uint64) *burstAccount {
	a := &burstAccount{name: name, ents: ents, share: share, rng: rand.New(rand.NewPCG(seed, 5))}
	limit := share * 6 / 10
	a.creates = append(a.creates, ents[:min(len(ents), limit)]...)
	a.rels = len(a.creates)
	if a.rels == len(ents) { // relationships need both ends
		a.creates = append(a.creates, rels[:min(len(rels), limit-a.rels)]...)
	}
	return a
}

// op returns the k-th upload and whether it is a relationship.
func (a *burstAccount) op(k int) ([]byte, bool) {
	if k < len(a.creates) {
		return a.creates[k], k >= a.rels
	}
	return withSeq(a.ents[a.rng.IntN(a.rels)], k), false
}

// worldTemplates returns the entities and relationships of a synthetic
// world of about n entities, as upload JSON.
func worldTemplates(n int, seed int64) (ents, rels [][]byte, err error) {
	e, r := synth.New(synth.Config{Seed: seed, Scope: corpusScope, Entities: n}).Step()
	for _, o := range e {
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, nil, err
		}
		ents = append(ents, raw)
	}
	for _, o := range r {
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, nil, err
		}
		rels = append(rels, raw)
	}
	return ents, rels, nil
}

// idleResult is the cost of enabled accounts with nothing to export.
type idleResult struct {
	Accounts    int
	Duration    time.Duration
	CPUFraction float64 // of one core
	RSS, Heap   uint64
}

// benchIdle opens a store and an exporter with accounts enabled and no
// changes, and measures the process's CPU (as a fraction of one core) over
// d, and its RSS and Go heap.
func benchIdle(ctx context.Context, dir string, b *benchS3, accounts int, d time.Duration, g gzipSetting) (idleResult, error) {
	res := idleResult{Accounts: accounts, Duration: d}
	const bucket = "bench-idle"
	if err := b.bucket(ctx, bucket); err != nil {
		return res, err
	}
	names := make([]string, accounts)
	for i := range names {
		names[i] = fmt.Sprintf("idle-%05d", i)
	}
	s, err := pebblestore.Open(filepath.Join(dir, "idle"), pebblestore.Options{})
	if err != nil {
		return res, err
	}
	defer s.Close()
	if err := enableStreams(s.Settings(), s, names, bucket, false); err != nil {
		return res, err
	}
	x, err := exporter.New(s, s.Settings(), &recordingDest{c: b.dest}, benchExporterConfig(g))
	if err != nil {
		return res, err
	}
	if err := x.Open(); err != nil {
		return res, err
	}
	defer x.Close(ctx)
	// Settle: the opening's garbage collected, the runtime quiet.
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	debug.FreeOSMemory()
	c0, t0 := cpuTime(), time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.CPUFraction = float64(cpuTime()-c0) / float64(time.Since(t0))
	res.RSS, res.Heap = procStatus("VmRSS"), heapBytes()
	return res, nil
}
