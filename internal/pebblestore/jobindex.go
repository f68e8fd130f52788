package pebblestore

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/syncjobs"
)

// openJobs indexes, in memory, the open jobs of every account (those whose
// status is not final) for Usage and Idle, so that neither reads the
// records of the jobs that ended. It is derived from the records: built by
// one scan of them when first needed, then kept by every write of a record,
// after it commits and under the job's lock, which sets the job's entry to
// what the record now holds. Setting is idempotent, so a write that
// commits before the scan and updates after it leaves the entry right.
// Its size is the number of open jobs, which the quotas bound.
type openJobs struct {
	mu    sync.Mutex
	built bool
	// accounts maps an account to its open jobs by id.
	accounts map[string]map[string]openJob
}

// openJob is what the index keeps of an open job.
type openJob struct {
	status      syncjobs.Status
	stagedBytes int64
	touched     int64
}

// set records j's record as just written.
func (o *openJobs) set(j *syncjobs.Job) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.built {
		o.setLocked(j)
	}
}

func (o *openJobs) setLocked(j *syncjobs.Job) {
	jobs := o.accounts[j.AccountID]
	if j.Status.Final() {
		delete(jobs, j.ID)
		if len(jobs) == 0 {
			delete(o.accounts, j.AccountID)
		}
		return
	}
	if jobs == nil {
		jobs = make(map[string]openJob)
		o.accounts[j.AccountID] = jobs
	}
	jobs[j.ID] = openJob{status: j.Status, stagedBytes: j.StagedBytes, touched: j.LastTouched()}
}

// index returns the index, locked, built if it was not; the caller
// unlocks o.mu.
func (js *Jobs) index() (*openJobs, error) {
	o := &js.open
	o.mu.Lock()
	if o.built {
		return o, nil
	}
	o.accounts = make(map[string]map[string]openJob)
	it, err := js.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famJob}, UpperBound: []byte{famJob + 1}})
	if err != nil {
		o.mu.Unlock()
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		j, err := syncjobs.DecodeRecord(it.Value())
		if err != nil {
			o.mu.Unlock()
			return nil, fmt.Errorf("decode job %q: %w", it.Key(), err)
		}
		o.setLocked(&j)
	}
	if err := it.Error(); err != nil {
		o.mu.Unlock()
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	o.built = true
	return o, nil
}

// Usage sums the account's open jobs from the index.
func (js *Jobs) Usage(account string) (syncjobs.Usage, error) {
	o, err := js.index()
	if err != nil {
		return syncjobs.Usage{}, err
	}
	defer o.mu.Unlock()
	var u syncjobs.Usage
	for _, j := range o.accounts[account] {
		u.OpenJobs++
		u.StagedBytes += j.stagedBytes
	}
	return u, nil
}

// Idle returns the jobs awaiting uploads touched last before `before`,
// found in the index and read from their records.
func (js *Jobs) Idle(before int64, limit int) ([]syncjobs.Job, error) {
	o, err := js.index()
	if err != nil {
		return nil, err
	}
	type idle struct {
		account, id string
		touched     int64
	}
	var found []idle
	for account, jobs := range o.accounts {
		for id, j := range jobs {
			if j.status == syncjobs.StatusAwaitingUploads && j.touched < before {
				found = append(found, idle{account, id, j.touched})
			}
		}
	}
	o.mu.Unlock()
	slices.SortFunc(found, func(a, b idle) int {
		return cmp.Or(cmp.Compare(a.touched, b.touched), cmp.Compare(a.account, b.account), cmp.Compare(a.id, b.id))
	})
	var out []syncjobs.Job
	for _, f := range found[:min(limit, len(found))] {
		j, err := js.Job(f.account, f.id)
		if errors.Is(err, syncjobs.ErrJobNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}

// ListJobs reads the account's job records in id order.
func (js *Jobs) ListJobs(account, after string, limit int) ([]syncjobs.Job, error) {
	p := jobKey(account, "")
	lower := jobKey(account, after)
	if after != "" {
		lower = append(lower, 0)
	}
	it, err := js.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: PrefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("read jobs of account %s: %w", account, err)
	}
	var ids []string
	for it.First(); it.Valid() && len(ids) < limit; it.Next() {
		ids = append(ids, string(it.Key()[len(p):]))
	}
	err = it.Error()
	it.Close()
	if err != nil {
		return nil, fmt.Errorf("read jobs of account %s: %w", account, err)
	}
	out := make([]syncjobs.Job, 0, len(ids))
	for _, id := range ids {
		j, err := js.Job(account, id)
		if errors.Is(err, syncjobs.ErrJobNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, nil
}
