package exporter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/j1ds/j1ds/internal/stream"
)

// lane is one of the exporter's two pools of workers. Accounts whose
// buckets answer promptly are served by the main lane (Config.Workers);
// those whose last attempt failed or stalled by the slow lane
// (Config.SlowWorkers). An attempt stalls when the destination accepts no
// byte of it for Config.SlowAfter: a bucket slow to answer, not a large
// batch being uploaded. A bucket that turns slow holds a main-lane worker
// for SlowAfter at most: its attempt then goes on in the slow lane, or is
// cancelled and retried there when that lane is full (demote). So slow or failing
// buckets share the slow lane's workers among themselves, and the others
// keep the main lane.
type lane int

const (
	laneMain lane = iota
	laneSlow
	lanes lane = 2
)

func (l lane) String() string {
	if l == laneSlow {
		return "slow"
	}
	return "main"
}

// laneWorkers is how many attempts lane l runs at once.
func (e *Exporter) laneWorkers(l lane) int {
	if l == laneSlow {
		return e.cfg.SlowWorkers
	}
	return e.cfg.Workers
}

// laneLocked is the lane of a's next attempt: the slow one when its
// last attempt stalled or failed.
func (a *account) laneLocked() lane {
	if a.slow || a.failures > 0 {
		return laneSlow
	}
	return laneMain
}

// slowLaneLocked reports whether a is served by the slow lane: its
// attempt in flight runs there, or its next one will.
func (a *account) slowLaneLocked() bool {
	if a.running {
		return a.lane == laneSlow
	}
	return a.laneLocked() == laneSlow
}

// Causes of an attempt cancelled by the exporter itself.
var (
	// ErrAttemptTimeout: the attempt ran longer than Config.AttemptTimeout.
	ErrAttemptTimeout = errors.New("exporter: attempt timed out")
	// ErrBucketSlow: the attempt stalled for Config.SlowAfter in the main
	// lane while the slow lane was full (demote).
	ErrBucketSlow = errors.New("exporter: bucket too slow for the main lane")
)

// attempt is one flush in flight.
type attempt struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	job    flushJob
	start  time.Time
	// progress is when (µs on the clock) the destination last accepted
	// bytes of the object; the start until then.
	progress atomic.Int64
	// timer fires SlowAfter after the last progress until the attempt
	// stalls, then at start+AttemptTimeout. It is set before the attempt
	// starts, so a test that advances a fake clock once the upload has
	// begun finds it armed.
	timer Timer
	// stalled is set by the watcher, read once it has returned.
	stalled bool
}

// startLocked starts an attempt of a, due, in lane l: a goroutine owned
// by the exporter (its wait group), which the attempt's watch goroutine
// joins.
func (e *Exporter) startLocked(a *account, l lane) {
	ctx, cancel := context.WithCancelCause(e.ctx)
	a.running, a.lane = true, l
	a.cancel = func() { cancel(context.Canceled) }
	e.mu.busy[l]++
	e.mu.running++
	at := &attempt{ctx: ctx, cancel: cancel, start: e.cfg.Clock.Now(),
		job: flushJob{account: a.id, gen: a.gen, target: a.target, cursor: a.cursor, pendingSince: a.pendingSince, suffix: a.suffix}}
	at.job.progress = &at.progress
	at.progress.Store(at.start.UnixMicro())
	if a.retry.through != 0 && a.retry.after == a.cursor {
		// The batch of a failed attempt keeps its key: same changes,
		// same suffix, even when the account chose another since.
		at.job.through, at.job.suffix = a.retry.through, a.retry.suffix
	}
	at.timer = e.cfg.Clock.NewTimer(at.start.Add(e.cfg.SlowAfter))
	e.wg.Add(1)
	go e.run(a, at, l == laneMain)
}

// run flushes one account and schedules what comes next for it.
func (e *Exporter) run(a *account, at *attempt, inMain bool) {
	defer e.wg.Done()
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		e.watch(a, at, inMain, done)
	}()
	res, err := e.flush(at.ctx, at.job)
	close(done)
	<-watched
	at.cancel(context.Canceled)
	if cause := context.Cause(at.ctx); err != nil && (errors.Is(cause, ErrAttemptTimeout) || errors.Is(cause, ErrBucketSlow)) {
		err = fmt.Errorf("%w: %w", cause, err)
	}

	// A failure is saved in the status before the account is released
	// (no other flush of it runs meanwhile) and outside the lock: the save
	// is a synced write, and commits notify through the lock.
	var c Classification
	if err != nil && !errors.Is(err, stream.ErrStale) {
		c = e.classify(err)
		now := e.cfg.Clock.Now()
		var lag time.Duration
		if at.job.pendingSince != 0 {
			lag = now.Sub(time.UnixMicro(at.job.pendingSince))
		}
		p := &stream.Problem{Code: c.Code, Message: c.Message, ActionBy: c.ActionBy, At: now.UTC()}
		if serr := e.checkpoint.SetError(a.id, at.job.gen, p, lag); serr != nil && !errors.Is(serr, stream.ErrStale) {
			e.cfg.Logger.Error("could not save export status", slog.String("account", a.id), slog.Any("err", serr))
		}
	}
	if e.settle(a, res, err, c, at.stalled) {
		// The state changed under the flush (settings saved on another
		// node whose word has not arrived, the account's group claimed by
		// another node, the cursor moved by a copy of the account that
		// outlived a reload), or the account was asked for again while
		// this flush ran: install it again from its saved state.
		e.reload(a.id, 1)
		e.mu.Lock()
		e.mu.running--
		e.mu.idle.Broadcast()
		e.mu.Unlock()
		e.poke()
	}
}

// watch follows an attempt until done is closed (the flush returned).
// Once the destination has accepted no byte for SlowAfter, the attempt
// has stalled: in the main lane it moves to the slow lane, or is
// cancelled when that lane is full; in the slow lane it goes on, and the
// account stays there. An attempt running for AttemptTimeout is
// cancelled.
func (e *Exporter) watch(a *account, at *attempt, inMain bool, done <-chan struct{}) {
	defer at.timer.Stop()
	deadline := at.start.Add(e.cfg.AttemptTimeout)
	for {
		select {
		case <-done:
			return
		case <-at.timer.C():
		}
		now := e.cfg.Clock.Now()
		if !now.Before(deadline) {
			e.metrics.slowAttempts.WithLabelValues("timed_out").Inc()
			at.cancel(ErrAttemptTimeout)
			return
		}
		if at.stalled {
			at.timer.Reset(deadline)
			continue
		}
		if next := time.UnixMicro(at.progress.Load()).Add(e.cfg.SlowAfter); now.Before(next) {
			at.timer.Reset(minTime(next, deadline)) // bytes went out meanwhile
			continue
		}
		at.stalled = true
		switch {
		case !inMain:
		case e.demote(a):
			e.metrics.slowAttempts.WithLabelValues("moved").Inc()
			e.cfg.Logger.Info("export stalled: moved to the slow lane", slog.String("account", a.id), slog.Duration("slow_after", e.cfg.SlowAfter))
		default:
			e.metrics.slowAttempts.WithLabelValues("cancelled").Inc()
			e.cfg.Logger.Info("export stalled and the slow lane is full: cancelled, retried there", slog.String("account", a.id), slog.Duration("slow_after", e.cfg.SlowAfter))
			at.cancel(ErrBucketSlow)
			return
		}
		at.timer.Reset(deadline)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// demote moves a's attempt in flight from the main lane to the slow one
// and reports whether it could. The slow lane takes attempts moved to it
// beyond its own workers, up to as many more as the main lane has (it
// starts none of its own meanwhile): on an exporter whose uploads all
// stall a moment (its cores or its network saturated) an attempt that
// stalls goes on instead of being cancelled and sent again, while at most
// Workers + SlowWorkers + Workers attempts are ever in flight. Only past
// that is a stalled attempt cancelled.
func (e *Exporter) demote(a *account) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.busy[laneSlow] >= e.cfg.SlowWorkers+e.cfg.Workers {
		return false
	}
	e.mu.busy[laneMain]--
	e.mu.busy[laneSlow]++
	a.lane, a.slow = laneSlow, true
	e.poke() // a main-lane worker is free
	return true
}

// classify explains an upload error: the exporter's own causes, then
// Config.Classify.
func (e *Exporter) classify(err error) Classification {
	switch {
	case errors.Is(err, ErrAttemptTimeout):
		return Classification{Code: "EXPORT_TIMEOUT", ActionBy: stream.ActionOperator,
			Message: fmt.Sprintf("storing one object took longer than %s and was given up; the service is retrying", e.cfg.AttemptTimeout),
			Detail:  "check that the bucket answers, or raise --export-attempt-timeout if batches are very large"}
	case errors.Is(err, ErrBucketSlow):
		return Classification{Code: "BUCKET_SLOW", ActionBy: stream.ActionOperator,
			Message: fmt.Sprintf("the bucket accepted nothing for %s while the service's workers for slow buckets were busy; the service is retrying", e.cfg.SlowAfter),
			Detail:  "every worker for slow buckets was busy (--export-slow-workers, --export-slow-after)"}
	}
	return e.cfg.Classify(err)
}

// Reloads of an account that failed (its state could not be read) are
// tried again, at most reloadAttempts times in all, backing off from
// RetryMin.
const reloadAttempts = 10

// reload installs the account again from its saved state (Reload),
// trying again later when the state cannot be read.
func (e *Exporter) reload(id string, attempt int) {
	err := e.Reload(id)
	if err == nil || e.ctx.Err() != nil {
		return
	}
	if attempt >= reloadAttempts {
		e.cfg.Logger.Error("could not reload the stream state after it changed; the account is exported again after the next restart or move of its group",
			slog.String("account", id), slog.Any("err", err), slog.Int("attempts", attempt))
		return
	}
	wait := e.backoff(attempt)
	e.cfg.Logger.Warn("could not reload the stream state after it changed; trying again", slog.String("account", id), slog.Any("err", err), slog.Duration("retry_in", wait))
	time.AfterFunc(wait, func() { e.reload(id, attempt+1) })
}
