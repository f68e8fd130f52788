package main

// The soak (issue 6, item 7): a bounded run, loopback only, with many
// accounts under steady writes and periodic S3 faults. It prints its
// figures and asserts only correctness and a generous memory cap, never a
// timing.

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/locals3"
	"github.com/j1ds/j1ds/internal/settings"
)

// soakHeapCap bounds the heap of j1ds (a child process) at every sample:
// generous, so only a leak or an unbounded buffer trips it.
const soakHeapCap = 1 << 30

// TestSoak: accounts enabled (short: 100 for about 20 s; full, with
// J1DS_MATRIX=full: 1,000 for 5 minutes), writers creating and updating
// entities in random accounts throughout, and every few seconds a spell
// of S3 faults (503, resets, slow answers, 500) on the export requests.
// Heap, RSS and the largest lag over the accounts are sampled every few
// seconds and printed as a table with the memory trend (first third
// against last third), objects, events and faults. At the end the export
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
	keys := make([]string, accountsN)
	func() {
		store, err := graph.Open(filepath.Join(cfg.Data, "graph"), graph.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		as, st := accounts.New(store.DB()), settings.New(store.DB(), nil)
		parallel(accountsN, func(i int) {
			a := id(i)
			var err error
			if _, err = as.CreateAccount(a, []string{accounts.EntitlementDataStreaming}); err == nil {
				keys[i], _, err = as.CreateKey(a, accounts.RoleAdmin)
			}
			if err == nil {
				_, err = st.SaveTest(a, settings.ConnectionTest{OK: true, At: time.Now().UTC(), BucketName: streamBucket, AWSAccountID: s3Owner})
			}
			if err == nil {
				_, err = st.Apply(a, settings.Settings{Enabled: true, BucketName: streamBucket, AWSAccountID: s3Owner, RegionConfirmed: true},
					func() (uint64, error) { return store.End(a) })
			}
			if err != nil {
				t.Errorf("enable %s: %v", a, err)
			}
		})
	}()
	if t.Failed() {
		t.FailNow()
	}
	// j1ds runs as a child process, so the memory sampled is its own and
	// not the test's (whose logs and request records grow with the run).
	c := startChild(t, e, cfg)
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
		heap, rss       uint64
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
		s := sample{at: time.Since(start), heap: childHeap(t, j), rss: pidRSS(c.cmd.Process.Pid), maxLag: lag, objects: objects, events: events, faulted: faulted()}
		samples = append(samples, s)
		if s.heap > soakHeapCap {
			t.Errorf("heap %d MiB at %s, over the cap of %d MiB", s.heap>>20, s.at.Round(time.Second), soakHeapCap>>20)
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
	t.Logf("  %7s %9s %9s %9s %8s %9s %8s", "t", "heap MiB", "RSS MiB", "max lag s", "objects", "events", "faulted")
	for _, s := range samples {
		t.Logf("  %7s %9.1f %9.1f %9.1f %8d %9d %8d", s.at.Round(time.Second), mib(s.heap), mib(s.rss), s.maxLag, s.objects, s.events, s.faulted)
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
	rss := func(s sample) uint64 { return s.rss }
	var maxLag float64
	for _, s := range samples {
		maxLag = max(maxLag, s.maxLag)
	}
	t.Logf("  memory trend, first third -> last third: heap %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB; max lag %.1f s; after catching up: lag %.1f s, %d objects, %d events",
		mean(samples[:third], heap), mean(samples[len(samples)-third:], heap),
		mean(samples[:third], rss), mean(samples[len(samples)-third:], rss), maxLag, lag, objects, events)
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
	store, err := graph.Open(filepath.Join(cfg.Data, "graph"), graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, i := range order {
		checkAgainstLog(t, e.objects(t, streamBucket, id(i)), logStateOf(t, store, id(i)), id(i))
	}
	t.Logf("verify --compare clean and bucket = log for %d accounts", len(order))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// childHeap reads a j1ds's live heap from its /metrics.
func childHeap(t *testing.T, j *j1) uint64 {
	t.Helper()
	resp, err := http.Get(j.url + "/metrics")
	if err != nil {
		t.Errorf("read the child's metrics: %v", err)
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("read the child's metrics: %v", err)
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go_memstats_heap_alloc_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return uint64(f)
			}
		}
	}
	t.Errorf("the child's metrics have no go_memstats_heap_alloc_bytes")
	return 0
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

// logStateOf is readLogState on an open store.
func logStateOf(t *testing.T, store *graph.Store, account string) logState {
	t.Helper()
	rec, err := settings.New(store.DB(), nil).Get(account)
	if err != nil {
		t.Fatal(err)
	}
	end, err := store.End(account)
	if err != nil {
		t.Fatal(err)
	}
	st := logState{rec: rec, end: end}
	for after := rec.Stream.EnabledAtLSN; ; {
		es, err := store.ReadLog(account, after, 1000, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			return st
		}
		st.entries = append(st.entries, es...)
		after = es[len(es)-1].LSN
	}
}
