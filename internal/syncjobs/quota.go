package syncjobs

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// Quotas of an account's jobs, and the expiry of the jobs left awaiting
// uploads: without them one account could stage uploads it never
// finalizes until the disk is full for every account.
const (
	// DefaultMaxOpenJobs is Options.MaxOpenJobs when zero.
	DefaultMaxOpenJobs = 100
	// DefaultMaxStagedBytes is Options.MaxStagedBytes when zero.
	DefaultMaxStagedBytes = 2 << 30
	// DefaultJobExpiry is Options.JobExpiry when zero.
	DefaultJobExpiry = 24 * time.Hour
	// maxExpiryPoll bounds the time between two looks for idle jobs.
	maxExpiryPoll = time.Minute
	// expireBatch bounds the idle jobs one look reads; the look goes on
	// with the next batch while it finds that many.
	expireBatch = 100
	// maxExpireBatches bounds the batches of one look.
	maxExpireBatches = 100
	// MaxListJobs bounds a page of List.
	MaxListJobs = 1000
)

// Limits are the quotas of every account's jobs and their expiry.
type Limits struct {
	MaxOpenJobs    int           `json:"maxOpenJobs"`
	MaxStagedBytes int64         `json:"maxStagedBytes"`
	JobExpiry      time.Duration `json:"-"`
}

// Limits returns the quotas the Service enforces.
func (s *Service) Limits() Limits { return s.limits }

// Usage returns what the account's open jobs hold.
func (s *Service) Usage(account string) (Usage, error) {
	u, err := s.store.Usage(account)
	if err != nil {
		return Usage{}, fmt.Errorf("read the open jobs of account %s: %w", account, err)
	}
	return u, nil
}

// lockAccount serialises, within this process, the changes that the
// account's quotas bound: creating a job and staging an upload. It is
// taken after the job's lock. The Store's Stage serialises them across
// the nodes of a cluster too, and checks the quotas against what the
// account's jobs hold then; this lock keeps one process's requests from
// queueing there.
func (s *Service) lockAccount(account string) func() {
	h := fnv.New32a()
	h.Write([]byte(account))
	m := &s.accountLocks[h.Sum32()%uint32(len(s.accountLocks))]
	m.Lock()
	return m.Unlock
}

// checkOpenJobs refuses a new job while the account has as many open jobs
// as it may, u being what its open jobs hold.
func (s *Service) checkOpenJobs(account string, u Usage) error {
	if u.OpenJobs >= s.limits.MaxOpenJobs {
		return errorf(http.StatusTooManyRequests, "TOO_MANY_OPEN_JOBS",
			"account %s has %d open synchronization jobs (awaiting uploads or being finalized), as many as one account may have (the operator's --max-open-jobs %d): finalize or abort the jobs you no longer upload to, or wait for finalizations to end, then start this job again; a job left awaiting uploads is aborted %s after its last upload",
			account, u.OpenJobs, s.limits.MaxOpenJobs, s.limits.JobExpiry)
	}
	return nil
}

// stagingQuota returns the error of an upload of n new bytes that the
// account's staging cannot take, usage being what its open jobs hold.
func (s *Service) stagingQuota(account string, u Usage, n int64) error {
	if u.StagedBytes+n <= s.limits.MaxStagedBytes {
		return nil
	}
	return errorf(http.StatusTooManyRequests, "STAGING_QUOTA_EXCEEDED",
		"this upload would stage %d bytes more, and account %s's %d open jobs hold %d of the %d bytes one account may stage (the operator's --max-staged-bytes): finalize the jobs whose uploads are complete, or abort those you no longer need, to free their staging, then upload again; nothing of this upload was staged",
		n, account, u.OpenJobs, u.StagedBytes, s.limits.MaxStagedBytes)
}

// stagedSize is what an object takes in a job's staging quota.
func stagedSize(o StagedObject) int64 { return int64(len(o.ID) + len(o.Data)) }

// List returns a page of up to limit of the account's jobs, of any status,
// in id order, after the job id `after` (from the first when empty), and
// the id to pass as `after` for the next page ("" after the last).
func (s *Service) List(account, after string, limit int) ([]Job, string, error) {
	if after != "" {
		if _, err := uuid.Parse(after); err != nil {
			return nil, "", errorf(http.StatusBadRequest, "INVALID_CURSOR", "cursor %s is not a job id: pass the nextCursor of the previous page, or none for the first", quote(after))
		}
	}
	if limit <= 0 || limit > MaxListJobs {
		return nil, "", errorf(http.StatusBadRequest, "INVALID_LIMIT", "limit %d must be between 1 and %d", limit, MaxListJobs)
	}
	jobs, err := s.store.ListJobs(account, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs of account %s: %w", account, err)
	}
	next := ""
	if len(jobs) > limit {
		jobs = jobs[:limit]
		next = jobs[limit-1].ID
	}
	return jobs, next, nil
}

// ExpireIdle aborts the jobs, of every account, that have awaited uploads
// for longer than Options.JobExpiry since they were created or last took
// an upload, which drops their staging, and returns how many it aborted.
// The Service calls it every minute (or every tenth of the expiry, when
// shorter); in a cluster every node does, and an abort is written once.
func (s *Service) ExpireIdle() (int, error) {
	n := 0
	for range maxExpireBatches {
		cutoff := s.now().Add(-s.limits.JobExpiry).UnixMilli()
		idle, err := s.store.Idle(cutoff, expireBatch)
		if err != nil {
			return n, fmt.Errorf("find idle jobs: %w", err)
		}
		for _, j := range idle {
			reason := fmt.Sprintf("expired: the job awaited uploads for %s without one (the operator's --job-expiry); its staged uploads were dropped: start a new job", s.limits.JobExpiry)
			_, aborted, err := s.abort(j.AccountID, j.ID, reason, func(j Job) bool { return j.LastTouched() < cutoff })
			if _, ok := errors.AsType[*Error](err); ok {
				continue // finalized or gone since it was read
			}
			if err != nil {
				return n, err
			}
			if aborted {
				n++
				s.log.Info("job expired", slog.String("account", j.AccountID), slog.String("job", j.ID),
					slog.Int64("staged_bytes", j.StagedBytes), slog.Duration("expiry", s.limits.JobExpiry))
			}
		}
		if len(idle) < expireBatch {
			return n, nil
		}
	}
	return n, nil // the next look goes on
}

// expireLoop calls ExpireIdle every poll until the Service closes; a
// failed look is tried again, backing off.
func (s *Service) expireLoop() {
	defer s.wg.Done()
	poll := s.expiryPoll
	wait, failures := time.Duration(0), 0
	for {
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		_, err := s.ExpireIdle()
		if err == nil {
			failures, wait = 0, jitter(poll)
			continue
		}
		if s.ctx.Err() != nil {
			return
		}
		failures++
		if failures&(failures-1) == 0 { // 1, 2, 4, 8...: bounded log volume
			s.log.Warn("could not expire idle jobs; retrying", slog.Any("err", err), slog.Int("failures", failures))
		}
		wait = jitter(min(poll<<min(failures, 8), finalizeRetryMax))
	}
}

// Abort ends a job that awaits uploads; nothing it staged is applied.
func (s *Service) Abort(account, id, reason string) (Job, error) {
	j, _, err := s.abort(account, id, truncate(reason, 1000), nil)
	return j, err
}

// abort ends a job that awaits uploads, when cond (if any) holds for it as
// it stands, and reports whether it did. An aborted job it returns as it
// is (a retried abort).
func (s *Service) abort(account, id, reason string, cond func(Job) bool) (Job, bool, error) {
	unlock := s.lock(id)
	defer unlock()
	for changes := 0; ; changes++ {
		j, err := s.load(account, id)
		if err != nil {
			return Job{}, false, err
		}
		if j.Status == StatusAborted {
			return j, false, nil // a retried abort
		}
		if j.Status != StatusAwaitingUploads {
			return Job{}, false, notAwaiting(j)
		}
		if cond != nil && !cond(j) {
			return j, false, nil
		}
		j.Status, j.AbortReason, j.EndTimestamp = StatusAborted, reason, s.now().UnixMilli()
		err = finish(s.store, &j)
		switch {
		case err == nil:
			return j, true, nil
		case !errors.Is(err, ErrJobChanged):
			return Job{}, false, err
		case changes == maxJobChanges:
			return Job{}, false, jobChanging(id)
		}
		// Another request changed the job since it was read: decide again
		// on the job as it stands.
	}
}
