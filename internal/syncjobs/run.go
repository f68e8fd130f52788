package syncjobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

// resumeOrphans takes over, at once and then every poll, the
// finalizations no live node runs: those of nodes that died or left, and
// those a node wrote FINALIZE_PENDING for and stopped before running.
// Each is claimed (Runners.Claim) before it runs, so of several nodes
// that find it one runs it. A failed look is tried again, backing off.
func (s *Service) resumeOrphans() {
	defer s.wg.Done()
	var wait time.Duration
	failures := 0
	for {
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		orphans, err := s.runners.Orphans(maxOrphans)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			failures++
			if failures&(failures-1) == 0 { // 1, 2, 4, 8...: bounded log volume
				s.log.Warn("could not look for job finalizations no live node runs; retrying", slog.Any("err", err), slog.Int("failures", failures))
			}
			wait = jitter(min(s.poll<<min(failures, 8), finalizeRetryMax))
			continue
		}
		failures = 0
		for _, o := range orphans {
			s.startFinalize(o.AccountID, o.ID, &o)
		}
		wait = jitter(s.poll)
	}
}

// jitter returns d give or take a tenth, so that nodes started together
// do not look at the same moments.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// Finalize applies a job's uploads to the graph: entities, then
// relationships, then (DIFF) the deletion of the scope's objects the job
// did not upload, except types in partialDatasets. It answers once the job
// is done or after a few seconds with the job as it stands; finalization
// goes on in the background and resumes after a restart.
func (s *Service) Finalize(ctx context.Context, account, id string, partial *PartialDatasets) (Job, error) {
	j, wrote, err := s.requestFinalize(account, id, partial)
	if err != nil || !wrote {
		return j, err
	}
	done := s.startFinalize(account, id, nil)
	t := time.NewTimer(finalizeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	return s.load(account, id)
}

// requestFinalize writes FINALIZE_PENDING, with partial, for a job that
// awaits uploads, and reports whether it did. A job being finalized or
// finished already it returns as it stands: a retried finalize (the SDK
// retries when it got no answer), or one that another request's finalize
// came before.
func (s *Service) requestFinalize(account, id string, partial *PartialDatasets) (Job, bool, error) {
	unlock := s.lock(id)
	defer unlock()
	for changes := 0; ; changes++ {
		j, err := s.load(account, id)
		if err != nil {
			return Job{}, false, err
		}
		switch j.Status {
		case StatusAwaitingUploads:
		case StatusFinalizePending, StatusFinalizingEntities, StatusFinalizingRelationships, StatusFinished:
			return j, false, nil
		default:
			return Job{}, false, notAwaiting(j)
		}
		if partial != nil {
			for i, t := range partial.Types {
				if t == "" || len(t) > graph.MaxTypeLen {
					return Job{}, false, errorf(http.StatusBadRequest, "INVALID_PARTIAL_DATASETS", "partialDatasets.types[%d] must be a type name of 1 to %d bytes", i, graph.MaxTypeLen)
				}
			}
			j.PartialDatasets = partial
		}
		j.Status, j.FinalizeTimestamp = StatusFinalizePending, s.now().UnixMilli()
		// In a cluster this write also makes this node the job's runner.
		err = s.runs.PutJob(&j)
		switch {
		case err == nil:
			return j, true, nil
		case errors.Is(err, ErrNotRunner):
			// Another node's finalize of the job came first: it runs it.
			j, err := s.load(account, id)
			return j, false, err
		case !errors.Is(err, ErrJobChanged):
			return Job{}, false, fmt.Errorf("finalize job %s: %w", id, err)
		case changes == maxJobChanges:
			return Job{}, false, jobChanging(id)
		}
		// Another request changed the job since it was read: decide again
		// on the job as it stands.
	}
}

// startFinalize queues a job's finalization for the workers (see
// schedule.go), unless this process runs it already, and returns a channel
// closed when it stops. orphan is set when the job is taken over from a
// node that is not live.
func (s *Service) startFinalize(account, id string, orphan *Orphan) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.mu.running[id]; ok {
		return ch
	}
	t := &task{account: account, id: id, orphan: orphan, done: make(chan struct{})}
	q := &s.sched
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		close(t.done)
		return t.done
	}
	s.mu.running[id] = t.done
	q.addLocked(t)
	q.mu.Unlock()
	return t.done
}

// claim makes this node the runner of a job before it runs it, in a
// cluster; on its own a process runs every job it finalizes.
func (s *Service) claim(account, id string, orphan *Orphan) error {
	if s.runners == nil {
		return nil
	}
	ok, err := s.runners.Claim(account, id, s.node)
	if err != nil {
		return fmt.Errorf("claim job %s: %w", id, err)
	}
	if !ok {
		return errNotClaimed
	}
	if orphan != nil {
		s.log.Info("taking over job finalization from a node that is not live", slog.String("account", account), slog.String("job", id),
			slog.String("from_node", orphan.Runner), slog.String("node", s.node))
	}
	return nil
}

// Wait blocks until the job is no longer being finalized in this process.
func (s *Service) Wait(ctx context.Context, id string) error {
	s.mu.Lock()
	ch, ok := s.mu.running[id]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
