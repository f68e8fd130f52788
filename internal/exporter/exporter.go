package exporter

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/stream"
)

// Destination writes objects into customers' buckets.
type Destination interface {
	// Object returns a writer for one object at key in target (an
	// account's stream.State.Target, which only the destination reads).
	// Close stores it; Abort gives it up.
	Object(ctx context.Context, target, key string) Object
}

// Object is one object being written.
type Object interface {
	io.Writer
	Close() error
	Abort()
}

// Classification of an upload error, for the status and the retry
// schedule.
type Classification struct {
	// Code names the cause; Message is what the customer reads: what to
	// fix, or that the service is retrying. It names no flag of j1ds.
	Code, Message string
	// Detail is for the operator's log: flags to check, network faults.
	Detail string
	// ActionBy is who must act: stream.ActionCustomer or
	// stream.ActionOperator.
	ActionBy string
	// Permanent errors (access denied, no such bucket) are retried on the
	// slow schedule; others with exponential backoff.
	Permanent bool
}

// serviceRetrying is the customer's message of a failure on the
// service's side that names no more precise cause.
const serviceRetrying = "the export failed for a reason on the service's side: nothing to change in your settings; your JupiterOne operator must fix it, and the service keeps retrying"

// Config configures an Exporter.
type Config struct {
	// FlushInterval is the age at which an open batch is written; at
	// least one second. Default 5 minutes.
	FlushInterval time.Duration
	// MaxBatchBytes caps the records (uncompressed) of one object; a
	// batch this large is written at once. Default 256 MiB.
	MaxBatchBytes int64
	// Workers is how many objects are built and uploaded at once for the
	// accounts whose buckets answer promptly: the main lane.
	Workers int
	// SlowWorkers is how many objects are built and uploaded at once for
	// the accounts whose last attempt failed or stalled: the slow lane,
	// apart from the main one so that slow or failing buckets never hold
	// the workers of the others. Default 2.
	SlowWorkers int
	// SlowAfter is how long an attempt may wait on the destination (no
	// byte of the object accepted) before it has stalled: in the main
	// lane it then goes on in the slow lane or, when that is full, is
	// cancelled and retried there. Default 1 second.
	SlowAfter time.Duration
	// AttemptTimeout bounds one attempt (building and storing one object);
	// the attempt is then cancelled and retried. Default 5 minutes.
	AttemptTimeout time.Duration
	// Suffix of object keys of the accounts that chose none
	// (stream.State.Suffix): ".jsonl" (default) or ".jsonl.gz".
	Suffix string
	// RetryMin and RetryMax bound the backoff of transient failures;
	// PermanentRetry is the wait after a permanent one.
	RetryMin, RetryMax, PermanentRetry time.Duration
	// GzipLevel is the gzip compression level, 1 (fastest) to 9. Default
	// 1: on the bench corpus it compresses 5.8 to 1 at 3.8 times the speed
	// of compress/gzip's default level (j1ds bench; docs/data-streaming.md).
	GzipLevel int
	// NewGzipWriter, when set, makes the compressor of each object (at
	// GzipLevel); nil uses github.com/klauspost/compress/gzip, pooled.
	NewGzipWriter func(w io.Writer, level int) (io.WriteCloser, error)
	// Classify explains upload errors; without it every error is transient.
	Classify   func(error) Classification
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Clock is the time the exporter reads and waits on; nil is the
	// system clock.
	Clock Clock

	// AfterUpload, when set, runs after an object is stored and before the
	// cursor moves: the failpoint of crash tests.
	AfterUpload func(account, key string)

	// Owns, when set, tells which accounts this exporter exports: in a
	// cluster, those of the groups its node owns (cluster.Manager.Owns).
	// Nil exports every enabled account.
	Owns func(account string) bool
}

// Defaults.
const (
	DefaultFlushInterval = 5 * time.Minute
	MinFlushInterval     = time.Second
	DefaultMaxBatchBytes = 256 << 20
	DefaultGzipLevel     = 1
	DefaultSlowWorkers   = 2
	DefaultSlowAfter     = time.Second
	// DefaultAttemptTimeout leaves a batch of the default size cap 5
	// minutes, about 1 MB/s.
	DefaultAttemptTimeout = 5 * time.Minute
)

func (c *Config) setDefaults() {
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.SlowWorkers == 0 {
		c.SlowWorkers = DefaultSlowWorkers
	}
	if c.SlowAfter == 0 {
		c.SlowAfter = DefaultSlowAfter
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.Suffix == "" {
		c.Suffix = ".jsonl"
	}
	if c.RetryMin == 0 {
		c.RetryMin = time.Second
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.PermanentRetry == 0 {
		c.PermanentRetry = 10 * time.Minute
	}
	if c.GzipLevel == 0 {
		c.GzipLevel = DefaultGzipLevel
	}
	if c.Classify == nil {
		c.Classify = func(err error) Classification {
			return Classification{Code: "EXPORT_FAILED", Message: serviceRetrying, Detail: err.Error(), ActionBy: stream.ActionOperator}
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
}

// Validate checks the configuration; errors name the flag.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.FlushInterval < MinFlushInterval:
		return fmt.Errorf("--flush-interval %s is below the minimum of %s", c.FlushInterval, MinFlushInterval)
	case c.MaxBatchBytes < 1<<10:
		return fmt.Errorf("--max-batch-bytes %d is below the minimum of 1024", c.MaxBatchBytes)
	case c.Workers < 1 || c.Workers > 256:
		return fmt.Errorf("--export-workers %d must be between 1 and 256", c.Workers)
	case c.SlowWorkers < 1 || c.SlowWorkers > 256:
		return fmt.Errorf("--export-slow-workers %d must be between 1 and 256", c.SlowWorkers)
	case c.AttemptTimeout < time.Second:
		return fmt.Errorf("--export-attempt-timeout %s is below the minimum of 1s", c.AttemptTimeout)
	case c.SlowAfter < 10*time.Millisecond || c.SlowAfter >= c.AttemptTimeout:
		return fmt.Errorf("--export-slow-after %s must be at least 10ms and below --export-attempt-timeout %s", c.SlowAfter, c.AttemptTimeout)
	case c.Suffix != ".jsonl" && c.Suffix != ".jsonl.gz":
		return fmt.Errorf("--object-suffix %q must be .jsonl or .jsonl.gz", c.Suffix)
	case c.GzipLevel < 1 || c.GzipLevel > 9:
		return fmt.Errorf("--gzip-level %d must be between 1 and 9", c.GzipLevel)
	}
	return nil
}

// Exporter streams each enabled account's log to its bucket. It keeps
// state only for enabled accounts (a few words each) and runs no goroutine
// per account: commits mark an account pending, a single scheduler
// dispatches due accounts to a fixed pool of workers, and an idle account
// costs nothing.
type Exporter struct {
	cfg         Config
	src         changelog.Source
	checkpoint  stream.Checkpoint
	dest        Destination
	metrics     *metrics
	unsubscribe func()

	mu struct {
		sync.Mutex
		accounts map[string]*account
		// draining holds accounts removed while a flush of theirs ran
		// (disabled, retargeted, given up to another node, reloaded): no
		// new copy of the account is installed before that flush ends, so
		// one process never runs two flushes of an account.
		draining map[string]*account
		// due holds each lane's scheduled accounts; busy counts each
		// lane's attempts in flight (Workers and SlowWorkers at most).
		due     [lanes]dueHeap
		busy    [lanes]int
		running int // flushes in flight, with those awaiting a reload
		closing bool
		idle    *sync.Cond // signalled when a flush ends
	}
	wake chan struct{}

	gzipPool sync.Pool // *gzip.Writer at cfg.GzipLevel

	ctx    context.Context // cancels flushes
	cancel context.CancelFunc
	sched  context.CancelFunc // stops the scheduler
	wg     sync.WaitGroup
}

// account is the exporter's state of one enabled account.
type account struct {
	id           string
	gen          uint64
	target       string
	suffix       string // of the next object's key (stream.State.Suffix, else Config.Suffix)
	cursor       uint64 // last LSN stored (or skipped)
	end          uint64 // highest LSN known committed
	pendingSince int64  // commit time (µs) of the oldest unexported change; 0 when none
	pendingBytes int64
	failures     int
	// retry pins the batch of a failed flush: retried from the same
	// cursor, it holds exactly the same changes (see flush).
	retry       batchPin
	nextAttempt time.Time // when the account is due; zero when not scheduled
	running     bool
	// slow sends the account's next attempt to the slow lane: its last
	// one took longer than SlowAfter (a failure does as well).
	slow bool
	// lane is the lane of the due heap the account is in, or of its
	// attempt in flight.
	lane lane
	// reinstall is set on a draining account when a new copy was asked
	// for meanwhile: the end of its flush reloads the account.
	reinstall bool
	cancel    context.CancelFunc
	index     int // in its lane's due heap, -1 when not there
}

// New returns an exporter of the log src to dest, keeping its progress in
// cp; Open starts it.
func New(src changelog.Source, cp stream.Checkpoint, dest Destination, cfg Config) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	e := &Exporter{cfg: cfg, src: src, checkpoint: cp, dest: dest, wake: make(chan struct{}, 1)}
	e.mu.accounts = make(map[string]*account)
	e.mu.draining = make(map[string]*account)
	e.mu.idle = sync.NewCond(&e.mu)
	e.metrics = newMetrics(cfg.Registerer, e)
	return e, nil
}

// Open subscribes to the source's commits, then loads every enabled
// account, scheduling those with changes not yet exported, and starts the
// scheduler and workers. Subscribing first means a commit that lands while
// the accounts load is either seen by install (the log's end) or notified.
func (e *Exporter) Open() error {
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.unsubscribe = e.src.Subscribe(e.Notify)
	recs, err := e.checkpoint.Enabled()
	if err != nil {
		e.unsubscribe()
		return err
	}
	for _, r := range recs {
		if e.cfg.Owns != nil && !e.cfg.Owns(r.Account) {
			continue
		}
		if err := e.install(r); err != nil {
			e.unsubscribe()
			return err
		}
	}
	sctx, scancel := context.WithCancel(e.ctx)
	e.sched = scancel
	e.wg.Add(1)
	go e.schedule(sctx)
	e.cfg.Logger.Info("exporter started", slog.Int("enabled_accounts", e.Accounts()),
		slog.Duration("flush_interval", e.cfg.FlushInterval), slog.Int("workers", e.cfg.Workers), slog.Int("slow_workers", e.cfg.SlowWorkers))
	return nil
}

// Close flushes every account with pending changes (until ctx ends), then
// stops. Uploads still running when ctx ends are aborted; their changes
// stay in the log and are exported after the next start.
func (e *Exporter) Close(ctx context.Context) error {
	e.mu.Lock()
	e.mu.closing = true
	now := e.cfg.Clock.Now()
	for _, a := range e.mu.accounts {
		if a.pendingSince != 0 && !a.running {
			e.scheduleLocked(a, now)
		}
	}
	e.mu.Unlock()
	e.poke()
	done := make(chan struct{})
	go func() {
		e.mu.Lock()
		for e.mu.running > 0 || e.pendingLocked() {
			e.mu.idle.Wait()
		}
		e.mu.Unlock()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("exporter: final flush incomplete: %w", ctx.Err())
	}
	e.unsubscribe()
	e.sched()
	e.cancel()
	e.mu.Lock()
	e.mu.idle.Broadcast()
	e.mu.Unlock()
	e.wg.Wait()
	return err
}

// pendingLocked reports whether an account still has changes to flush
// that are worth waiting for at shutdown (those failing are not).
func (e *Exporter) pendingLocked() bool {
	if e.ctx.Err() != nil {
		return false
	}
	for _, a := range e.mu.accounts {
		if a.pendingSince != 0 && a.failures == 0 {
			return true
		}
	}
	return false
}

// Reload applies an account's current settings: start streaming it,
// retarget it, or stop it (discarding what was not uploaded).
func (e *Exporter) Reload(accountID string) error {
	st, err := e.checkpoint.Load(accountID)
	if err != nil {
		return err
	}
	e.mu.Lock()
	old := e.mu.accounts[accountID]
	if old != nil && e.cfg.Owns != nil && !e.cfg.Owns(accountID) {
		e.removeLocked(old) // exported by another node now
		e.mu.Unlock()
		return nil
	}
	if old != nil && (!st.Enabled || old.gen != st.Generation) {
		e.removeLocked(old)
	} else if old != nil {
		old.suffix = e.suffix(st.Suffix) // from the next object; a batch in flight or pinned keeps its key
	}
	e.mu.Unlock()
	if !st.Enabled || (old != nil && old.gen == st.Generation) {
		return nil
	}
	return e.install(st)
}

func (e *Exporter) removeLocked(a *account) {
	if a.cancel != nil {
		a.cancel()
	}
	if a.running {
		e.mu.draining[a.id] = a
	}
	if a.index >= 0 {
		heap.Remove(&e.mu.due[a.lane], a.index)
	}
	delete(e.mu.accounts, a.id)
	e.metrics.enabled.Dec()
}

// Forget stops exporting every account for which keep is false: their
// flushes in flight are cancelled, and what was not uploaded stays in the
// log for the node that exports them next (cluster.Exporter).
func (e *Exporter) Forget(keep func(account string) bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for id, a := range e.mu.accounts {
		if !keep(id) {
			e.removeLocked(a)
			n++
		}
	}
	if n > 0 {
		e.cfg.Logger.Info("stopped exporting accounts now exported elsewhere", slog.Int("accounts", n))
	}
}

// Rescan starts exporting every enabled account Config.Owns gives this
// exporter that it does not export yet, from its saved state
// (cluster.Exporter).
func (e *Exporter) Rescan() error {
	recs, err := e.checkpoint.Enabled()
	if err != nil {
		return err
	}
	n := 0
	for _, r := range recs {
		if e.cfg.Owns != nil && !e.cfg.Owns(r.Account) {
			continue
		}
		e.mu.Lock()
		cur := e.mu.accounts[r.Account]
		if cur != nil && cur.gen == r.Generation {
			cur.suffix = e.suffix(r.Suffix)
			e.mu.Unlock()
			continue
		}
		e.mu.Unlock()
		if err := e.install(r); err != nil {
			return err
		}
		n++
	}
	if n > 0 {
		e.cfg.Logger.Info("exporting accounts taken over", slog.Int("accounts", n))
	}
	return nil
}

// suffix is the key suffix of an account that chose s: s, or
// Config.Suffix when it chose none.
func (e *Exporter) suffix(s string) string {
	if s == "" {
		return e.cfg.Suffix
	}
	return s
}

// Accounts returns the number of accounts exported.
func (e *Exporter) Accounts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.mu.accounts)
}

// install starts tracking an enabled account from its stream state.
func (e *Exporter) install(r stream.State) error {
	if e.cfg.Owns != nil && !e.cfg.Owns(r.Account) {
		return nil // exported by another node
	}
	a := &account{id: r.Account, gen: r.Generation, target: r.Target, suffix: e.suffix(r.Suffix), cursor: r.Cursor, index: -1}
	if at := r.Attempt; at != nil && at.Generation == a.gen && at.AfterLSN == a.cursor {
		a.retry = batchPin{after: at.AfterLSN, through: at.ThroughLSN, suffix: e.suffix(at.Suffix)} // an upload before a restart
	}
	// In the map before the log's end is read: a commit from here on is
	// noted on it (Notify), one before is within the end read below.
	e.mu.Lock()
	if cur := e.mu.accounts[r.Account]; cur != nil {
		if cur.gen >= a.gen {
			e.mu.Unlock()
			return nil // installed meanwhile
		}
		e.removeLocked(cur)
	}
	if d := e.mu.draining[r.Account]; d != nil {
		// A flush of a removed copy still runs: the account is installed
		// again from its state as that flush leaves it (settle).
		d.reinstall = true
		e.mu.Unlock()
		return nil
	}
	e.mu.accounts[r.Account] = a
	e.metrics.enabled.Inc()
	e.mu.Unlock()

	end, first, err := e.waiting(r.Account, r.Cursor)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.accounts[r.Account] != a {
		return nil // removed or replaced meanwhile
	}
	if err != nil {
		e.removeLocked(a)
		return err
	}
	a.end = max(a.end, end)
	if end > a.cursor && first != 0 {
		if a.pendingSince == 0 || first < a.pendingSince {
			a.pendingSince = first
		}
		a.pendingBytes = max(a.pendingBytes, 1) // unknown; the flush reads what is there
	}
	if a.pendingSince != 0 && !a.running && a.failures == 0 {
		e.scheduleLocked(a, e.dueFor(a))
	}
	e.poke()
	return nil
}

// waiting returns the end of an account's log and, when changes follow
// cursor, the commit time of the first (now, when retention removed it:
// the flush records the gap).
func (e *Exporter) waiting(account string, cursor uint64) (end uint64, first int64, err error) {
	if end, err = e.src.End(account); err != nil || end <= cursor {
		return end, 0, err
	}
	ct, ok, err := e.src.NextCommit(account, cursor)
	var te *changelog.TruncatedError
	switch {
	case errors.As(err, &te):
		return end, e.cfg.Clock.Now().UnixMicro(), nil
	case err != nil:
		return 0, 0, err
	case ok:
		return end, ct, nil
	}
	return end, 0, nil
}

// Notify tells the exporter that an account committed; Open subscribes it
// to the source. It never blocks.
func (e *Exporter) Notify(ev changelog.CommitEvent) {
	e.mu.Lock()
	a := e.mu.accounts[ev.Account]
	if a == nil || ev.LSN <= a.cursor {
		e.mu.Unlock()
		return
	}
	a.end = max(a.end, ev.LSN)
	if a.pendingSince == 0 {
		a.pendingSince = ev.CommitTime
	}
	a.pendingBytes += int64(ev.Bytes)
	if !a.running && a.failures == 0 {
		e.scheduleLocked(a, e.dueFor(a))
	}
	e.mu.Unlock()
	e.poke()
}
