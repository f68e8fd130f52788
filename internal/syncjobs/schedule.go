package syncjobs

import (
	"errors"
	"log/slog"
	"sync"
	"time"
)

// The finalizations of a process share Options.Workers workers, fairly
// across accounts: an account runs at most one finalization at a time, the
// accounts with finalizations waiting take turns (round robin), and a turn
// does at most one chunk of work (finalizeChunk objects checked, applied,
// or looked at for deletion) before the worker moves on to the next
// account. An account's jobs are finalized in the order they were asked
// for, each to its end before the next starts, so its own backlog drains
// one job after another rather than all of them at once. Another account's
// job waits behind that backlog for at most one turn of each worker.

// DefaultWorkers is Options.Workers when zero.
const DefaultWorkers = 4

// task is one job's finalization as the scheduler runs it.
type task struct {
	account, id string
	// orphan is set while a job taken over from a node that is not live
	// has not been claimed yet.
	orphan *Orphan
	done   chan struct{}

	// started is set once the current attempt has claimed the job and
	// read its record into job; checked is the id of the last staged
	// relationship checked while the job is FINALIZE_PENDING.
	started bool
	job     Job
	checked string

	attempt int
	wait    time.Duration
	// running is set while a worker runs a turn of it (scheduler.mu).
	running bool
}

// scheduler holds the finalizations of a Service that wait for a worker.
type scheduler struct {
	mu     sync.Mutex
	cond   *sync.Cond
	closed bool
	// queues holds each account's finalizations, in the order they were
	// asked for; the first runs or is next.
	queues map[string][]*task
	// ring holds the accounts whose first finalization waits for a
	// worker, in turn order. An account being served is not in it.
	ring []string
	// timers are the finalizations waiting to be tried again.
	timers map[*task]*time.Timer
}

func (q *scheduler) init() {
	q.cond = sync.NewCond(&q.mu)
	q.queues = make(map[string][]*task)
	q.timers = make(map[*task]*time.Timer)
}

// addLocked queues t behind its account's other finalizations.
func (q *scheduler) addLocked(t *task) {
	if len(q.queues[t.account]) == 0 {
		q.ring = append(q.ring, t.account)
		q.cond.Signal()
	}
	q.queues[t.account] = append(q.queues[t.account], t)
}

// next waits for the first finalization of the account whose turn it is,
// and takes the account out of the ring until release; nil once closed.
func (q *scheduler) next() *task {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ring) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil
	}
	account := q.ring[0]
	q.ring = q.ring[1:]
	t := q.queues[account][0]
	t.running = true
	return t
}

// release ends t's turn. t stays first in its account's queue when more
// is set; when retry is set it leaves the queue and is queued again after
// its backoff; otherwise it leaves for good, and release reports that the
// caller ends it (as it does for every task once the scheduler closed).
// The account goes to the back of the ring if finalizations of it are left.
func (s *Service) release(t *task, more, retry bool) (end bool) {
	q := &s.sched
	q.mu.Lock()
	defer q.mu.Unlock()
	t.running = false
	switch {
	case q.closed:
		q.removeLocked(t)
		return true
	case more:
	case retry:
		q.removeLocked(t)
		t.started = false
		s.wg.Add(1)
		q.timers[t] = time.AfterFunc(t.wait, func() {
			defer s.wg.Done()
			q.mu.Lock()
			defer q.mu.Unlock()
			if _, ok := q.timers[t]; !ok {
				return // closed meanwhile: closeScheduler ended it
			}
			delete(q.timers, t)
			q.addLocked(t)
		})
		t.wait = min(2*t.wait, finalizeRetryMax)
	default:
		q.removeLocked(t)
		end = true
	}
	if len(q.queues[t.account]) > 0 {
		q.ring = append(q.ring, t.account)
		q.cond.Signal()
	}
	return end
}

func (q *scheduler) removeLocked(t *task) {
	tasks := q.queues[t.account]
	for i, o := range tasks {
		if o == t {
			tasks = append(tasks[:i], tasks[i+1:]...)
			break
		}
	}
	if len(tasks) == 0 {
		delete(q.queues, t.account)
	} else {
		q.queues[t.account] = tasks
	}
}

// worker runs turns of finalizations until the Service closes.
func (s *Service) worker() {
	defer s.wg.Done()
	for {
		t := s.sched.next()
		if t == nil {
			return
		}
		more, err := s.turn(t)
		retry := err != nil && s.retryLater(t, err)
		if s.release(t, more, retry) {
			s.end(t)
		}
	}
}

// turn runs one turn of t: on its first, it claims the job (in a cluster)
// and reads it; then it does at most one chunk of work. more reports
// whether the finalization goes on.
func (s *Service) turn(t *task) (more bool, err error) {
	if err := s.ctx.Err(); err != nil {
		return false, err
	}
	if !t.started {
		if err := s.claim(t.account, t.id, t.orphan); err != nil {
			return false, err
		}
		t.orphan = nil // logged once
		j, err := s.load(t.account, t.id)
		if err != nil {
			return false, err
		}
		t.started, t.job, t.checked = true, j, ""
	}
	finished, err := s.advance(t)
	return !finished && err == nil, err
}

// retryLater reports whether a finalization whose turn failed with err
// is tried again, after a backoff, from the job as it then stands. One
// that stopped (the Service closes), that another node runs, or whose
// error does not pass, is not.
func (s *Service) retryLater(t *task, err error) bool {
	switch {
	case s.ctx.Err() != nil, errors.Is(err, errNotClaimed):
		return false // stopped, the next Open resumes it; or another node runs it
	case errors.Is(err, ErrNotRunner):
		s.log.Warn("job finalization taken over by another node: this node's lease had ended; it stops here",
			slog.String("account", t.account), slog.String("job", t.id), slog.String("node", s.node))
		return false
	case !errors.Is(err, ErrJobChanged) && (s.retry == nil || !s.retry(err)):
		// A record changed under the finalization (ErrJobChanged) is read
		// again by the next attempt, which goes on from it.
		s.log.Error("job finalization failed", slog.String("account", t.account), slog.String("job", t.id), slog.Any("err", err))
		return false
	}
	t.attempt++
	if t.wait == 0 {
		t.wait = finalizeRetryMin
	}
	if t.attempt&(t.attempt-1) == 0 { // 1, 2, 4, 8...: bounded log volume
		s.log.Warn("job finalization failed; it is tried again", slog.String("account", t.account), slog.String("job", t.id),
			slog.Any("err", err), slog.Int("attempts", t.attempt), slog.Duration("retry_in", t.wait))
	}
	return true
}

// end forgets a finalization this process no longer runs, and wakes those
// waiting for it.
func (s *Service) end(t *task) {
	s.mu.Lock()
	delete(s.mu.running, t.id)
	s.mu.Unlock()
	close(t.done)
}

// closeScheduler stops the workers after their current turn, and ends the
// finalizations that wait, to resume at the next Open (or on another
// node). The caller waits for s.wg.
func (s *Service) closeScheduler() {
	q := &s.sched
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	var waiting []*task
	for t, timer := range q.timers {
		if timer.Stop() {
			s.wg.Done() // its func will not run
		}
		delete(q.timers, t)
		waiting = append(waiting, t)
	}
	for _, tasks := range q.queues {
		for _, t := range tasks {
			if !t.running { // a worker runs it now, and ends it (release)
				waiting = append(waiting, t)
			}
		}
	}
	q.queues, q.ring = map[string][]*task{}, nil
	q.mu.Unlock()
	for _, t := range waiting {
		s.end(t)
	}
}
