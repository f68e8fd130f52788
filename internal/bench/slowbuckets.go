package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// slowBucketsFraction is the share of the slowbuckets phase's accounts
// whose bucket turns slow, then refuses.
const slowBucketsFraction = 0.05

// Buckets of the slowbuckets phase: the faulty accounts write into one,
// the others into another, so the fault proxy tells them apart by path.
const (
	slowBucketsHealthy = "bench-slow-healthy"
	slowBucketsFaulty  = "bench-slow-faulty"
)

// slowBucketsReport holds the figures of the slowbuckets phase: the
// commit → object latency of the accounts whose buckets answer promptly,
// with every bucket healthy (baseline) and with 5% of the accounts'
// buckets answering each request late (slow) and then resetting every
// connection (refusing), in the same process, through a fault proxy in
// front of versitygw.
type slowBucketsReport struct {
	SlowBucketsAccounts int     `json:"slow_buckets_accounts"`
	SlowBucketsFaulty   int     `json:"slow_buckets_faulty_accounts"`
	SlowBucketsDelayS   float64 `json:"slow_buckets_delay_s"`
	SlowBucketsFlushS   float64 `json:"slow_buckets_flush_interval_s"`
	SlowBucketsForS     float64 `json:"slow_buckets_run_s"`
	SlowBucketsWorkers  int     `json:"slow_buckets_workers"`
	SlowBucketsSlowWork int     `json:"slow_buckets_slow_workers"`
	// Commit → object, seconds: the healthy accounts' commits.
	SlowBucketsBaseP50    float64 `json:"slow_buckets_baseline_p50_s"`
	SlowBucketsBaseP99    float64 `json:"slow_buckets_baseline_p99_s"`
	SlowBucketsBaseMax    float64 `json:"slow_buckets_baseline_max_s"`
	SlowBucketsSlowP50    float64 `json:"slow_buckets_while_slow_p50_s"`
	SlowBucketsSlowP99    float64 `json:"slow_buckets_while_slow_p99_s"`
	SlowBucketsRefuseP50  float64 `json:"slow_buckets_while_refusing_p50_s"`
	SlowBucketsRefuseP99  float64 `json:"slow_buckets_while_refusing_p99_s"`
	SlowBucketsFaultP99   float64 `json:"slow_buckets_healthy_p99_s"` // both halves of the faulty run
	SlowBucketsFaultMax   float64 `json:"slow_buckets_healthy_max_s"`
	SlowBucketsCommits    int     `json:"slow_buckets_healthy_commits"`
	SlowBucketsLaggingMax int     `json:"slow_buckets_lagging_accounts_max"`
	// SlowBucketsHealthyLag counts the samples (every 250 ms) in which a
	// healthy account showed lagging in its status: 0 expected.
	SlowBucketsHealthyLag int            `json:"slow_buckets_healthy_lagging_samples"`
	SlowBucketsAttempts   map[string]int `json:"slow_buckets_slow_attempts"` // j1ds_export_slow_attempts_total by outcome
	SlowBucketsFaultyObjs int            `json:"slow_buckets_faulty_objects"`
	SlowBucketsCatchUpS   float64        `json:"slow_buckets_faulty_catch_up_s"` // from the buckets healing to every faulty account exported
	SlowBucketsSeconds    float64        `json:"slow_buckets_s"`
}

// benchSlowBucketsPhase runs the slowbuckets phase into r.
func benchSlowBucketsPhase(ctx context.Context, c Config, dir string, b *benchS3, r *report, progress func(string, ...any)) error {
	start := time.Now()
	proxy, err := b.srv.NewProxy()
	if err != nil {
		return err
	}
	defer proxy.Close()
	client, err := s3dest.New(ctx, s3dest.Config{
		Endpoint: proxy.URL, Region: b.srv.Region, RootCAs: b.srv.CAPool,
		Credentials: credentials.NewStaticCredentialsProvider(benchWriterAccount, b.secret, ""),
	})
	if err != nil {
		return err
	}
	for _, bucket := range []string{slowBucketsHealthy, slowBucketsFaulty} {
		if err := b.bucket(ctx, bucket); err != nil {
			return err
		}
	}
	faulty := max(1, int(float64(c.SlowBucketAccounts)*slowBucketsFraction+0.5))
	sr := &slowBucketsReport{SlowBucketsAccounts: c.SlowBucketAccounts, SlowBucketsFaulty: faulty,
		SlowBucketsDelayS: c.SlowBucketDelay.Seconds(), SlowBucketsFlushS: c.SlowBucketInterval.Seconds(), SlowBucketsForS: c.SlowBucketFor.Seconds(),
		SlowBucketsWorkers: 4, SlowBucketsSlowWork: exporter.DefaultSlowWorkers}
	run := slowBucketsRun{c: c, dir: dir, client: client, proxy: proxy, faulty: faulty, progress: progress}

	progress("slowbuckets: baseline, %d accounts, every bucket healthy, for %s (flush interval %s)", c.SlowBucketAccounts, c.SlowBucketFor, c.SlowBucketInterval)
	base, err := run.run(ctx, "slowbuckets-base", false)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	sr.SlowBucketsBaseP50, sr.SlowBucketsBaseP99, sr.SlowBucketsBaseMax = base.p(0.5, nil), base.p(0.99, nil), base.p(1, nil)

	progress("slowbuckets: %d of %d accounts' buckets answer %s late for %s, then refuse for %s", faulty, c.SlowBucketAccounts, c.SlowBucketDelay, c.SlowBucketFor/2, c.SlowBucketFor/2)
	f, err := run.run(ctx, "slowbuckets-faults", true)
	if err != nil {
		return fmt.Errorf("faulty buckets: %w", err)
	}
	slowHalf := func(m healthyMark) bool { return m.at.Before(f.refuseFrom) }
	refuseHalf := func(m healthyMark) bool { return !m.at.Before(f.refuseFrom) }
	sr.SlowBucketsSlowP50, sr.SlowBucketsSlowP99 = f.p(0.5, slowHalf), f.p(0.99, slowHalf)
	sr.SlowBucketsRefuseP50, sr.SlowBucketsRefuseP99 = f.p(0.5, refuseHalf), f.p(0.99, refuseHalf)
	sr.SlowBucketsFaultP99, sr.SlowBucketsFaultMax = f.p(0.99, nil), f.p(1, nil)
	sr.SlowBucketsCommits = len(f.marks)
	sr.SlowBucketsLaggingMax, sr.SlowBucketsHealthyLag = f.laggingMax, f.healthyLagging
	sr.SlowBucketsAttempts, sr.SlowBucketsFaultyObjs, sr.SlowBucketsCatchUpS = f.attempts, f.faultyObjects, f.catchUp.Seconds()
	sr.SlowBucketsSeconds = time.Since(start).Seconds()
	r.slowBucketsReport = sr
	return nil
}

// slowBucketsRun is what both runs of the phase share.
type slowBucketsRun struct {
	c        Config
	dir      string
	client   *s3dest.Client // through the proxy
	proxy    *locals3.Proxy
	faulty   int
	progress func(string, ...any)
}

// healthyMark is one commit of a healthy account and its latency to the
// object that holds it.
type healthyMark struct {
	at      time.Time // when the commit returned
	latency float64   // seconds from then to the object's acknowledgement
}

type slowBucketsResult struct {
	marks          []healthyMark
	refuseFrom     time.Time
	laggingMax     int
	healthyLagging int
	attempts       map[string]int
	faultyObjects  int
	catchUp        time.Duration
}

// p returns the q-quantile of the latencies of the marks keep selects
// (nil: all).
func (r slowBucketsResult) p(q float64, keep func(healthyMark) bool) float64 {
	var v []float64
	for _, m := range r.marks {
		if keep == nil || keep(m) {
			v = append(v, m.latency)
		}
	}
	sort.Float64s(v)
	return percentile(v, q)
}

// run commits a steady load into every account for c.SlowBucketFor while
// the exporter (as serve runs it, at the phase's flush interval) exports
// it through the proxy, the faulty accounts' bucket slow for the first
// half and refusing for the second when faults is set; then the buckets
// heal and every account must catch up.
func (sb slowBucketsRun) run(ctx context.Context, name string, faults bool) (slowBucketsResult, error) {
	var res slowBucketsResult
	c := sb.c
	s, err := pebblestore.Open(filepath.Join(sb.dir, name), pebblestore.Options{})
	if err != nil {
		return res, err
	}
	defer s.Close()
	templates, err := entityTemplates(40, 11)
	if err != nil {
		return res, err
	}
	names := make([]string, c.SlowBucketAccounts)
	isFaulty := map[string]bool{}
	var healthy, faultyNames []string
	step := c.SlowBucketAccounts / sb.faulty
	for i := range names {
		names[i] = fmt.Sprintf("slow-%04d", i)
		if i%step == 0 && len(faultyNames) < sb.faulty {
			isFaulty[names[i]] = true
			faultyNames = append(faultyNames, names[i])
		} else {
			healthy = append(healthy, names[i])
		}
	}
	if err := enableStreams(s.Settings(), s, healthy, slowBucketsHealthy, false); err != nil {
		return res, err
	}
	if err := enableStreams(s.Settings(), s, faultyNames, slowBucketsFaulty, false); err != nil {
		return res, err
	}
	st := settings.New(s.Settings(), nil)
	dest := &recordingDest{c: sb.client}
	reg := prometheus.NewRegistry()
	cfg := benchExporterConfig(shippedGzip())
	cfg.FlushInterval, cfg.Registerer = c.SlowBucketInterval, reg
	x, err := exporter.New(s, s.Settings(), dest, cfg)
	if err != nil {
		return res, err
	}
	if err := x.Open(); err != nil {
		return res, err
	}
	closed := false
	defer func() {
		if !closed {
			x.Close(canceledContext())
		}
	}()

	match := func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/"+slowBucketsFaulty+"/") }
	start := time.Now()
	deadline := start.Add(c.SlowBucketFor)
	res.refuseFrom = start.Add(c.SlowBucketFor / 2)
	if faults {
		sb.proxy.SetFault(locals3.Fault{Delay: c.SlowBucketDelay, Count: -1, Match: match})
	}

	// The writers: each account commits 1 to 10 changes every 0.5 to 2 s.
	marks := make([][]commitMark, len(names))
	var wg sync.WaitGroup
	errc := make(chan error, len(names)+1)
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			seq := 0
			for {
				time.Sleep(time.Duration(500+r.IntN(1501)) * time.Millisecond)
				if time.Now().After(deadline) || ctx.Err() != nil {
					return
				}
				batch := make([][]byte, 1+r.IntN(10))
				for k := range batch {
					seq++
					batch[k] = withSeq(templates[r.IntN(len(templates))], seq)
				}
				cm, err := upsertRaw(s, n, batch)
				if err != nil {
					errc <- err
					return
				}
				marks[i] = append(marks[i], commitMark{micros: cm.CommitTime, done: time.Now()})
			}
		}()
	}
	// The sampler: lagging accounts in the metric, and healthy accounts
	// lagging in their status; the switch from slow to refusing.
	samplerDone := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		refusing := false
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-samplerDone:
				return
			case <-t.C:
			}
			if faults && !refusing && !time.Now().Before(res.refuseFrom) {
				refusing = true
				sb.proxy.SetFault(locals3.Fault{Reset: true, Count: -1, Match: match})
				sb.progress("slowbuckets: the faulty buckets now refuse (connection reset)")
			}
			res.laggingMax = max(res.laggingMax, int(gaugeValue(reg, "j1ds_export_lagging_accounts")))
			for _, n := range healthy {
				if x.Status(n).Lagging {
					res.healthyLagging++
				}
			}
		}
	}()
	wg.Wait()
	close(samplerDone)
	sampler.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return res, err
	}

	// The buckets heal; the healthy accounts' last batches come due, and
	// the faulty accounts catch up (their retries back off meanwhile).
	sb.proxy.SetFault(locals3.Fault{})
	healed := time.Now()
	waitUntil := healed.Add(c.SlowBucketInterval + c.SlowBucketDelay + 60*time.Second)
	for ; time.Now().Before(waitUntil); time.Sleep(100 * time.Millisecond) {
		if caughtUpAll(s, st, names) {
			break
		}
	}
	res.catchUp = time.Since(healed)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	err = x.Close(cctx)
	cancel()
	closed = true
	if err != nil {
		return res, err
	}
	if err := checkExported(s, st, names); err != nil {
		return res, err
	}

	objs, _, _ := dest.objects()
	byAccount := map[string][]storedObject{}
	for _, o := range objs {
		a := accountOfKey(o.Key)
		byAccount[a] = append(byAccount[a], o)
		if isFaulty[a] && o.At.Before(healed) {
			res.faultyObjects++
		}
	}
	for i, n := range names {
		if isFaulty[n] {
			continue
		}
		objsOf := byAccount[n]
		sort.Slice(objsOf, func(p, q int) bool { return objsOf[p].Key < objsOf[q].Key })
		for _, m := range marks[i] {
			k := exporter.ObjectKey(n, m.micros, ".jsonl")
			j := sort.Search(len(objsOf), func(p int) bool { return objsOf[p].Key > k }) - 1
			if j < 0 {
				return res, fmt.Errorf("no object holds the commit of %s at %d", n, m.micros)
			}
			res.marks = append(res.marks, healthyMark{at: m.done, latency: objsOf[j].At.Sub(m.done).Seconds()})
		}
	}
	if len(res.marks) == 0 {
		return res, fmt.Errorf("no commit of a healthy account was measured")
	}
	res.attempts = counterVecValues(reg, "j1ds_export_slow_attempts_total", "outcome")
	return res, nil
}

// caughtUpAll reports whether every account's cursor reached its log's
// end.
func caughtUpAll(s *pebblestore.Store, st *settings.Service, accounts []string) bool {
	return checkExported(s, st, accounts) == nil
}

func canceledContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// gaugeValue returns the value of a gauge without labels of reg (0 when
// absent).
func gaugeValue(reg *prometheus.Registry, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// counterVecValues returns a counter vector of reg by the value of its
// label.
func counterVecValues(reg *prometheus.Registry, name, label string) map[string]int {
	out := map[string]int{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] = int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

// slowBucketsTable prints the slowbuckets phase's figures.
func (r *report) slowBucketsTable(w io.Writer) {
	sb := r.slowBucketsReport
	fmt.Fprintf(w, "slow or failing buckets: %d accounts writing for %.0fs each run, flush interval %.0fs, %d main-lane and %d slow-lane workers (serve's defaults);\n"+
		"  %d accounts' bucket (5%%) answers %.0fs late the first half of the faulty run and resets every connection the second (a fault proxy before versitygw)\n\n",
		sb.SlowBucketsAccounts, sb.SlowBucketsForS, sb.SlowBucketsFlushS, sb.SlowBucketsWorkers, sb.SlowBucketsSlowWork, sb.SlowBucketsFaulty, sb.SlowBucketsDelayS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "healthy accounts, commit → object\tp50\tp99\t")
	fmt.Fprintf(tw, "every bucket healthy (baseline)\t%.2fs\t%.2fs\t\n", sb.SlowBucketsBaseP50, sb.SlowBucketsBaseP99)
	fmt.Fprintf(tw, "5%% of buckets slow\t%.2fs\t%.2fs\t\n", sb.SlowBucketsSlowP50, sb.SlowBucketsSlowP99)
	fmt.Fprintf(tw, "5%% of buckets refusing\t%.2fs\t%.2fs\t\n", sb.SlowBucketsRefuseP50, sb.SlowBucketsRefuseP99)
	tw.Flush()
	fmt.Fprintf(w, "%d commits of the healthy accounts measured in the faulty run (max %.2fs); j1ds_export_lagging_accounts reached %d; a healthy account showed lagging in %d samples;\n"+
		"slow attempts %v; %d objects of the faulty accounts stored during the faults, every one caught up %.1fs after they healed; the phase took %.0fs\n\n",
		sb.SlowBucketsCommits, sb.SlowBucketsFaultMax, sb.SlowBucketsLaggingMax, sb.SlowBucketsHealthyLag, sb.SlowBucketsAttempts, sb.SlowBucketsFaultyObjs, sb.SlowBucketsCatchUpS, sb.SlowBucketsSeconds)
}
