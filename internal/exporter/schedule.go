package exporter

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/j1ds/j1ds/internal/stream"
)

// dueFor is when a's pending changes must be written: when the oldest is
// FlushInterval old, or at once past the size cap or when closing.
func (e *Exporter) dueFor(a *account) time.Time {
	if e.mu.closing || a.pendingBytes >= e.cfg.MaxBatchBytes {
		return e.cfg.Clock.Now()
	}
	return time.UnixMicro(a.pendingSince).Add(e.cfg.FlushInterval)
}

func (e *Exporter) scheduleLocked(a *account, at time.Time) {
	a.nextAttempt = at
	if a.index >= 0 {
		heap.Fix(&e.mu.due, a.index)
	} else {
		heap.Push(&e.mu.due, a)
	}
}

func (e *Exporter) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// schedule hands due accounts to the workers, one goroutine for all.
func (e *Exporter) schedule(ctx context.Context) {
	defer e.wg.Done()
	timer := e.cfg.Clock.NewTimer(e.cfg.Clock.Now().Add(time.Hour))
	defer timer.Stop()
	for {
		e.mu.Lock()
		var next *account
		now := e.cfg.Clock.Now()
		until := now.Add(time.Hour)
		if len(e.mu.due) > 0 {
			top := e.mu.due[0]
			if !top.nextAttempt.After(now) {
				next = heap.Pop(&e.mu.due).(*account)
				next.queued = true
			} else {
				until = top.nextAttempt
			}
		}
		e.mu.Unlock()
		if next != nil {
			select {
			case e.work <- next:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer.Reset(until)
		select {
		case <-timer.C():
		case <-e.wake:
			timer.Stop()
		case <-ctx.Done():
			return
		}
	}
}

func (e *Exporter) worker() {
	defer e.wg.Done()
	for {
		select {
		case a := <-e.work:
			e.run(a)
		case <-e.ctx.Done():
			return
		}
	}
}

// run flushes one account and schedules what comes next for it.
func (e *Exporter) run(a *account) {
	e.mu.Lock()
	a.queued = false
	if e.mu.accounts[a.id] != a || a.running {
		e.mu.Unlock()
		return // disabled or retargeted while queued, or already running
	}
	ctx, cancel := context.WithCancel(e.ctx)
	a.running, a.cancel = true, cancel
	e.mu.running++
	job := flushJob{account: a.id, gen: a.gen, target: a.target, cursor: a.cursor}
	if a.retry.after == a.cursor {
		job.through = a.retry.through
	}
	e.mu.Unlock()

	res, err := e.flush(ctx, job)
	cancel()

	// A failure is saved in the status before the account is released
	// (no other flush of it runs meanwhile) and outside the lock: the save
	// is a synced write, and commits notify through the lock.
	var c Classification
	if err != nil && !errors.Is(err, stream.ErrStale) {
		c = e.cfg.Classify(err)
		p := &stream.Problem{Code: c.Code, Message: c.Message, At: e.cfg.Clock.Now().UTC()}
		if serr := e.checkpoint.SetError(a.id, job.gen, p); serr != nil && !errors.Is(serr, stream.ErrStale) {
			e.cfg.Logger.Error("could not save export status", slog.String("account", a.id), slog.Any("err", serr))
		}
	}
	if e.settle(a, res, err, c) {
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

// settle records the outcome of a flush of a (err, classified as c) and
// schedules what comes next for it. It reports whether the account must be
// loaded again from its saved state (Reload); the flush then still counts
// as running, so Close and tests wait for the reload too.
func (e *Exporter) settle(a *account, res flushResult, err error, c Classification) (reload bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.mu.idle.Broadcast()
	defer e.poke() // the account may be due again
	defer func() {
		if !reload {
			e.mu.running--
		} // else the flush counts as running until the reload is done (run)
	}()
	a.running, a.cancel = false, nil
	if e.mu.draining[a.id] == a {
		delete(e.mu.draining, a.id)
		return a.reinstall // removed meanwhile: the result is discarded
	}
	if e.mu.accounts[a.id] != a {
		return false
	}
	if errors.Is(err, stream.ErrStale) {
		e.removeLocked(a)
		return true
	}
	if res.cursor > a.cursor {
		a.cursor = res.cursor
		a.pendingBytes = max(0, a.pendingBytes-res.bytes)
	}
	now := e.cfg.Clock.Now()
	if res.attempted != (batchPin{}) {
		a.retry = res.attempted // inert once the cursor moves past its start
	}
	if err != nil {
		a.failures++
		wait := e.backoff(a.failures)
		if c.Permanent {
			wait = e.cfg.PermanentRetry
		}
		e.metrics.failures.WithLabelValues(map[bool]string{true: "permanent", false: "transient"}[c.Permanent]).Inc()
		if a.failures == 1 || a.failures&(a.failures-1) == 0 { // 1, 2, 4, 8...: bounded log volume
			e.cfg.Logger.Warn("export failed", slog.String("account", a.id), slog.String("code", c.Code),
				slog.String("error", c.Message), slog.Any("cause", err), slog.Int("failures", a.failures), slog.Duration("retry_in", wait))
		}
		if !e.mu.closing || !c.Permanent {
			e.scheduleLocked(a, now.Add(wait))
		}
		return false
	}
	if a.failures > 0 {
		e.cfg.Logger.Info("export recovered", slog.String("account", a.id), slog.Int("after_failures", a.failures))
	}
	a.failures = 0
	if a.end > a.cursor || res.more {
		a.pendingSince = res.nextCommit
		if a.pendingSince == 0 {
			a.pendingSince = now.UnixMicro()
		}
		if res.more {
			a.pendingBytes = max(a.pendingBytes, e.cfg.MaxBatchBytes)
		}
		e.scheduleLocked(a, e.dueFor(a))
	} else {
		a.pendingSince, a.pendingBytes = 0, 0
	}
	return false
}

// backoff is the wait before retry n of a transient failure: exponential
// from RetryMin to RetryMax, with jitter (between half and all of it).
func (e *Exporter) backoff(n int) time.Duration {
	d := e.cfg.RetryMin
	for i := 1; i < n && d < e.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, e.cfg.RetryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// dueHeap orders accounts by nextAttempt.
type dueHeap []*account

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].nextAttempt.Before(h[j].nextAttempt) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	a := x.(*account)
	a.index = len(*h)
	*h = append(*h, a)
}
func (h *dueHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	a.index = -1
	*h = old[:len(old)-1]
	return a
}
