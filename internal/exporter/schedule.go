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

// scheduleLocked sets when a is due, in the due heap of the lane its
// next attempt goes to.
func (e *Exporter) scheduleLocked(a *account, at time.Time) {
	a.nextAttempt = at
	l := a.laneLocked()
	if a.index >= 0 && a.lane != l {
		heap.Remove(&e.mu.due[a.lane], a.index)
	}
	a.lane = l
	if a.index >= 0 {
		heap.Fix(&e.mu.due[l], a.index)
	} else {
		heap.Push(&e.mu.due[l], a)
	}
}

func (e *Exporter) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// schedule starts the attempts of due accounts, one goroutine for all:
// each lane's due accounts in turn, while the lane has fewer attempts in
// flight than it has workers. A lane that is full waits for one of its
// attempts to end (settle and demote poke the scheduler); the other lane
// goes on meanwhile.
func (e *Exporter) schedule(ctx context.Context) {
	defer e.wg.Done()
	timer := e.cfg.Clock.NewTimer(e.cfg.Clock.Now().Add(time.Hour))
	defer timer.Stop()
	for {
		e.mu.Lock()
		now := e.cfg.Clock.Now()
		until := now.Add(time.Hour)
		for l := range lanes {
			h := &e.mu.due[l]
			for len(*h) > 0 && e.mu.busy[l] < e.laneWorkers(l) {
				top := (*h)[0]
				if top.nextAttempt.After(now) {
					if top.nextAttempt.Before(until) {
						until = top.nextAttempt
					}
					break
				}
				heap.Pop(h)
				e.startLocked(top, l)
			}
		}
		e.mu.Unlock()
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

// settle records the outcome of a flush of a (err, classified as c;
// stalled when the destination accepted nothing for SlowAfter) and
// schedules what comes next for it, in the lane that outcome sends it to. It reports whether the account must be loaded
// again from its saved state (Reload); the flush then still counts as
// running, so Close and tests wait for the reload too.
func (e *Exporter) settle(a *account, res flushResult, err error, c Classification, stalled bool) (reload bool) {
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
	e.mu.busy[a.lane]--
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
				slog.String("error", c.Message), slog.String("detail", c.Detail), slog.String("action_by", c.ActionBy), slog.Any("cause", err), slog.Int("failures", a.failures), slog.Duration("retry_in", wait))
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
	if stalled != a.slow {
		e.cfg.Logger.Info("export lane changed", slog.String("account", a.id), slog.Bool("slow_lane", stalled))
		a.slow = stalled
	}
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
