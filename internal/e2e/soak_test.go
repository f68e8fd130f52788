package e2e

// The soak: a bounded run, loopback only, with many accounts under steady
// writes and periodic S3 faults, against a j1ds binary built without the
// race detector. It prints its figures and asserts correctness and memory
// (generous caps, and an RSS that does not trend up), never a timing.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// soakHeapCap and soakRSSCap bound the heap and the RSS of j1ds (a child
// process) at every sample: generous, so only a leak or an unbounded
// buffer trips them.
const (
	soakHeapCap = 1 << 30
	soakRSSCap  = 512 << 20
)

// The RSS trend: the mean RSS of the last third of the samples may exceed
// that of the first third (which includes the warm-up) by at most
// soakRSSGrowth of it or soakRSSGrowthMiB, whichever is larger. Some growth
// is legitimate and bounded: Pebble's block cache (64 MiB, pebblestore.Open's
// default) and its memtables are allocated in C, outside the Go heap, and
// fill as the store grows from empty, which a 5-minute run does not
// outlast; and the Go runtime lets the heap reach twice the live heap
// before a collection and returns freed pages lazily. 64 MiB is the block
// cache filling from empty; 25% scales the margin for a larger process.
// In the full run (40,000 to 55,000 writes between the middles of the
// first and the last third) a leak of 1.5 KiB per write trips it; a
// smaller one shows in the printed heap.
const (
	soakRSSGrowth    = 0.25
	soakRSSGrowthMiB = 64
)

// TestSoak: accounts enabled (short: 100 for about 20 s; full, with
// J1DS_MATRIX=full: 1,000 for 5 minutes), writers creating and updating
// entities in random accounts throughout, and every few seconds a spell
// of S3 faults (503, resets, slow answers, 500) on the export requests.
// Heap, the Go runtime's share of the RSS, the RSS and the largest lag
// over the accounts are sampled every few seconds and printed as a table
// with the memory trend (first third against last third), objects, events
// and faults; the RSS must not trend up. At the end the export
// catches up and j1ds verify --compare is clean, and the bucket equals
// the log, for a sample of accounts (short) or all of them (full).
func TestSoak(t *testing.T) {
	t.Parallel()
	full := matrixFull(t)
	accountsN, duration, sampleEvery, faultEvery, faultFor, writers, verifyN := 100, 18*time.Second, 3*time.Second, 5*time.Second, time.Second, 4, 5
	if full {
		accountsN, duration, sampleEvery, faultEvery, faultFor, writers, verifyN = 1000, 5*time.Minute, 10*time.Second, 20*time.Second, 5*time.Second, 8, 1000
	}
	e := startS3(t, "")
	cfg := streamConfig(t, e)
	cfg.ExportWorkers = 8
	id := func(i int) string { return fmt.Sprintf("soak-%04d", i) }

	// The accounts are enabled in the data directory before j1ds starts,
	// as if saved earlier (Test Connection through the API for each would
	// only slow the start).
	keys := enableOffline(t, cfg, 0, accountsN, id, func(int) (string, string) { return streamBucket, s3Owner })
	// j1ds runs as a child process, so the memory sampled is its own and
	// not the test's (whose logs and request records grow with the run),
	// and as a binary built without the race detector, whose shadow memory
	// would grow with every byte the process touches.
	c := startBinaryChild(t, e, operatorBuild, cfg)
	j := c.j1
	live := &liveURL{}
	live.set(j.url)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)

	// Writers: a create (an account's first changes, then 60%) or an
	// update of one of its entities, in a random account, every 20 ms each.
	var (
		idsMu  sync.Mutex
		ids    = make([][]string, accountsN)
		writes atomic.Int64
	)
	rc := newRobustClient(live)
	for w := range writers {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				i := rand.IntN(accountsN)
				base := "/api/v1/accounts/" + id(i) + "/entities"
				idsMu.Lock()
				own := slices.Clone(ids[i])
				idsMu.Unlock()
				var code int
				var b []byte
				var err error
				if len(own) < 3 || rand.Float64() < 0.6 {
					code, b, _, err = rc.call(ctx, "POST", base, keys[i],
						entity(fmt.Sprintf("%s-user-%d-%06d", id(i), w, n), "test_user", []string{"User"}, "n", n, "note", randomText(100)))
					if err == nil && code == http.StatusCreated {
						var o struct {
							ID string `json:"_id"`
						}
						decode(t, b, &o)
						idsMu.Lock()
						ids[i] = append(ids[i], o.ID)
						idsMu.Unlock()
					}
				} else {
					code, b, _, err = rc.call(ctx, "PATCH", base+"/"+own[rand.IntN(len(own))], keys[i], map[string]any{"n": n, "note": randomText(100)})
				}
				switch {
				case err != nil:
				case code == http.StatusCreated || code == http.StatusOK:
					writes.Add(1)
				default:
					t.Errorf("%s: write: %d %s", id(i), code, b)
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}

	// Faults: every faultEvery, one kind for faultFor.
	kinds := []locals3.Fault{
		{Status: http.StatusServiceUnavailable},
		{Reset: true},
		{Delay: 1500 * time.Millisecond},
		{Status: http.StatusInternalServerError},
	}
	var spells atomic.Int64
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				e.proxy.SetFault(locals3.Fault{})
				return
			case <-time.After(faultEvery - faultFor):
			}
			f := kinds[n%len(kinds)]
			f.Count, f.Match = -1, isExport
			e.proxy.SetFault(f)
			spells.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(faultFor):
			}
			e.proxy.SetFault(locals3.Fault{})
		}
	})

	// Samples.
	type sample struct {
		at              time.Duration
		heap, goMem     uint64
		rss             uint64
		maxLag          float64
		objects, events int64
		faulted         int
	}
	var samples []sample
	statuses := func() (maxLag float64, objects, events int64) {
		var mu sync.Mutex
		parallel(accountsN, func(i int) {
			code, b := j.call(t, "GET", streamingPath(id(i)), keys[i], nil)
			if code != http.StatusOK {
				t.Errorf("status of %s: %d %s", id(i), code, b)
				return
			}
			var s matrixStatus
			decode(t, b, &s)
			mu.Lock()
			defer mu.Unlock()
			maxLag = max(maxLag, s.Status.LagSeconds)
			objects += s.Status.ObjectsExported
			events += s.Status.EventsExported
		})
		return maxLag, objects, events
	}
	faulted := func() int {
		n := 0
		for _, r := range e.proxy.Requests() {
			if r.Fault != "" {
				n++
			}
		}
		return n
	}
	start := time.Now()
	for time.Since(start) < duration {
		time.Sleep(sampleEvery)
		lag, objects, events := statuses()
		s := sample{at: time.Since(start), rss: pidRSS(c.cmd.Process.Pid), maxLag: lag, objects: objects, events: events, faulted: faulted()}
		s.heap, s.goMem = childMemory(t, j)
		samples = append(samples, s)
		if s.heap > soakHeapCap {
			t.Errorf("heap %d MiB at %s, over the cap of %d MiB", s.heap>>20, s.at.Round(time.Second), soakHeapCap>>20)
		}
		if s.rss == 0 || s.rss > soakRSSCap {
			t.Errorf("RSS %d MiB at %s, over the cap of %d MiB (0: unreadable)", s.rss>>20, s.at.Round(time.Second), soakRSSCap>>20)
		}
		if t.Failed() {
			break
		}
	}
	stop()
	keyOf := map[string]string{}
	for i := range accountsN {
		keyOf[id(i)] = keys[i]
	}
	waitCaughtUp(t, j, 5*time.Minute, keyOf)
	lag, objects, events := statuses()

	t.Logf("soak: %d accounts, %s, %d writers, %d writes, %d fault spells of %s every %s (%d export requests faulted)",
		accountsN, duration, writers, writes.Load(), spells.Load(), faultFor, faultEvery, faulted())
	t.Logf("  %7s %9s %9s %9s %9s %8s %9s %8s", "t", "heap MiB", "Go MiB", "RSS MiB", "max lag s", "objects", "events", "faulted")
	for _, s := range samples {
		t.Logf("  %7s %9.1f %9.1f %9.1f %9.1f %8d %9d %8d", s.at.Round(time.Second), mib(s.heap), mib(s.goMem), mib(s.rss), s.maxLag, s.objects, s.events, s.faulted)
	}
	third := max(1, len(samples)/3)
	mean := func(ss []sample, f func(sample) uint64) float64 {
		var sum float64
		for _, s := range ss {
			sum += mib(f(s))
		}
		return sum / float64(len(ss))
	}
	heap := func(s sample) uint64 { return s.heap }
	goMem := func(s sample) uint64 { return s.goMem }
	rss := func(s sample) uint64 { return s.rss }
	var maxLag float64
	for _, s := range samples {
		maxLag = max(maxLag, s.maxLag)
	}
	firstRSS, lastRSS := mean(samples[:third], rss), mean(samples[len(samples)-third:], rss)
	t.Logf("  memory trend, first third -> last third: heap %.1f -> %.1f MiB, Go %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB; max lag %.1f s; after catching up: lag %.1f s, %d objects, %d events",
		mean(samples[:third], heap), mean(samples[len(samples)-third:], heap),
		mean(samples[:third], goMem), mean(samples[len(samples)-third:], goMem),
		firstRSS, lastRSS, maxLag, lag, objects, events)
	if margin := max(firstRSS*soakRSSGrowth, soakRSSGrowthMiB); lastRSS > firstRSS+margin {
		t.Errorf("RSS grew from a mean of %.1f MiB in the first third to %.1f MiB in the last, more than the %.1f MiB allowed (%.0f%% or %d MiB)",
			firstRSS, lastRSS, margin, soakRSSGrowth*100, soakRSSGrowthMiB)
	}
	if events < writes.Load() {
		t.Errorf("%d events exported, fewer than the %d writes acknowledged", events, writes.Load())
	}

	// Correctness: a sample of the accounts (the busiest first), or all.
	order := make([]int, accountsN)
	for i := range order {
		order[i] = i
	}
	idsMu.Lock()
	slices.SortFunc(order, func(a, b int) int { return len(ids[b]) - len(ids[a]) })
	idsMu.Unlock()
	if verifyN < accountsN {
		order = append(order[:verifyN-2], order[len(order)-2:]...) // and the quietest
	}
	for _, i := range order {
		verifyClean(t, e, j, streamBucket, id(i), keys[i])
	}
	j.stop()
	store := openStore(t, cfg)
	for _, i := range order {
		checkAgainstLog(t, e.objects(t, streamBucket, id(i)), logStateOf(t, store, id(i), false), id(i))
	}
	t.Logf("verify --compare clean and bucket = log for %d accounts", len(order))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// childMemory reads from a j1ds's /metrics its live heap and the memory
// its Go runtime holds from the OS less what it returned: the Go share of
// its RSS. The rest is allocated in C, mostly Pebble's block cache and
// memtables (outside the Go heap in a build with cgo and without -race).
func childMemory(t *testing.T, j *j1) (heap, goMem uint64) {
	t.Helper()
	resp, err := http.Get(j.url + "/metrics")
	if err != nil {
		t.Errorf("read the child's metrics: %v", err)
		return 0, 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("read the child's metrics: %v", err)
		return 0, 0
	}
	want := map[string]uint64{"go_memstats_heap_alloc_bytes": 0, "go_memstats_sys_bytes": 0, "go_memstats_heap_released_bytes": 0}
	found := 0
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) == 2 {
			if _, ok := want[f[0]]; ok {
				v, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					t.Errorf("the child's metric %s: %v", f[0], err)
				}
				want[f[0]] = uint64(v)
				found++
			}
		}
	}
	if found != len(want) {
		t.Errorf("the child's metrics lack some of %v", slices.Sorted(maps.Keys(want)))
	}
	sys, released := want["go_memstats_sys_bytes"], want["go_memstats_heap_released_bytes"]
	return want["go_memstats_heap_alloc_bytes"], sys - min(sys, released)
}

// pidRSS returns a process's resident set size from /proc (0 if unknown).
func pidRSS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}
