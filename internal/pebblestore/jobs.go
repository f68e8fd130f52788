package pebblestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Jobs keeps the sync jobs of every account in the store's database,
// beside the graph, in the families 'J', 'E' and 'S' (keys.go).
//
// Account ids and job ids never contain a NUL byte, so the separators are
// unambiguous; job ids are UUIDs, unique across accounts, so staging needs
// no account. Every write is one synced batch; a finalize chunk's record is
// written in the graph transaction's own batch (txn.Set), so the chunk's
// object changes, its log entry and the job's progress are one atomic
// write.
//
// Every write of a record checks the stored record's revision and commits
// under the job's lock (Jobs.lock), so that the check and the write are
// one step against the other writes of the job; then, still under it, it
// sets the job's entry in the index of open jobs (jobindex.go). The lock is of this
// process, which is enough: a Pebble database is open in one process at a
// time.
type Jobs struct {
	s  *Store
	db *pebble.DB

	mu struct {
		sync.Mutex
		// locks holds the lock of each job being written, while anyone
		// holds or waits for it.
		locks map[string]*jobLock
	}
	// open indexes the open jobs (jobindex.go).
	open openJobs
}

// jobLock is the lock of one job's record and the number of writers that
// hold or wait for it.
type jobLock struct {
	sync.Mutex
	users int
}

var _ syncjobs.Store = (*Jobs)(nil)

// Jobs returns the store of the sync jobs kept in s's database.
func (s *Store) Jobs() *Jobs { return s.jobs }

// lock locks the record of the account's job and returns its unlock.
func (js *Jobs) lock(account, id string) func() {
	key := string(jobKey(account, id))
	js.mu.Lock()
	if js.mu.locks == nil {
		js.mu.locks = make(map[string]*jobLock)
	}
	l := js.mu.locks[key]
	if l == nil {
		l = &jobLock{}
		js.mu.locks[key] = l
	}
	l.users++
	js.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		js.mu.Lock()
		if l.users--; l.users == 0 {
			delete(js.mu.locks, key)
		}
		js.mu.Unlock()
	}
}

// checkRevision returns syncjobs.ErrJobChanged unless the stored record
// of j's job is at j's revision (a job without a record is at 0). The
// caller holds the job's lock.
func (js *Jobs) checkRevision(j *syncjobs.Job) error {
	v, closer, err := js.db.Get(jobKey(j.AccountID, j.ID))
	var revision int64
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read job %s: %w", j.ID, err)
	default:
		stored, err := syncjobs.DecodeRecord(v)
		closer.Close()
		if err != nil {
			return fmt.Errorf("decode job %s: %w", j.ID, err)
		}
		revision = stored.Revision
	}
	if revision != j.Revision {
		return syncjobs.ErrJobChanged
	}
	return nil
}

// nextRecord encodes the job's record at the revision after j's.
func nextRecord(j *syncjobs.Job) ([]byte, error) {
	next := *j
	next.Revision++
	return syncjobs.EncodeRecord(&next)
}

// setJob writes the job's record, at the revision after j's, into a
// batch. The caller sets j.Revision once the batch commits.
func setJob(b *pebble.Batch, j *syncjobs.Job) error {
	v, err := nextRecord(j)
	if err != nil {
		return err
	}
	return b.Set(jobKey(j.AccountID, j.ID), v, nil)
}

// writeJob checks j's revision and commits what fill puts in a batch,
// under the job's lock, and then sets j.Revision to the record's.
func (js *Jobs) writeJob(j *syncjobs.Job, fill func(b *pebble.Batch) error) error {
	defer js.lock(j.AccountID, j.ID)()
	if err := js.checkRevision(j); err != nil {
		return err
	}
	if err := js.commit(j.ID, fill); err != nil {
		return err
	}
	j.Revision++
	js.open.set(j)
	return nil
}

// Job returns the job's record as last written, with NumEvents from its
// event count; syncjobs.ErrJobNotFound when there is none.
func (js *Jobs) Job(account, id string) (syncjobs.Job, error) {
	v, closer, err := js.db.Get(jobKey(account, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return syncjobs.Job{}, syncjobs.ErrJobNotFound
	}
	if err != nil {
		return syncjobs.Job{}, fmt.Errorf("read job %s: %w", id, err)
	}
	j, err := syncjobs.DecodeRecord(v)
	closer.Close()
	if err != nil {
		return syncjobs.Job{}, fmt.Errorf("decode job %s: %w", id, err)
	}
	j.NumEvents = 0
	v, closer, err = js.db.Get(eventsKey(account, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return j, nil
	}
	if err != nil {
		return syncjobs.Job{}, fmt.Errorf("read events of job %s: %w", id, err)
	}
	n, _ := binary.Uvarint(v)
	closer.Close()
	j.NumEvents = int(n)
	return j, nil
}

// PutJob writes the job's record from j's revision.
func (js *Jobs) PutJob(j *syncjobs.Job) error {
	return js.writeJob(j, func(b *pebble.Batch) error { return setJob(b, j) })
}

// SetEvents writes the number of events reported for a job.
func (js *Jobs) SetEvents(account, id string, n int) error {
	return js.commit(id, func(b *pebble.Batch) error {
		return b.Set(eventsKey(account, id), binary.AppendUvarint(nil, uint64(n)), nil)
	})
}

// Finish writes the job's record from j's revision and deletes its
// staging in one batch.
func (js *Jobs) Finish(j *syncjobs.Job) error {
	return js.writeJob(j, func(b *pebble.Batch) error {
		if err := setJob(b, j); err != nil {
			return err
		}
		p := stagePrefix(j.ID)
		return b.DeleteRange(p, PrefixEnd(p), nil)
	})
}

// commit writes what fill puts in a batch, synced.
func (js *Jobs) commit(id string, fill func(b *pebble.Batch) error) error {
	b := js.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("write job %s: %w", id, err)
	}
	return nil
}

// Stage writes the new objects and the job's record, from j's revision,
// in one indexed batch, whose reads see the objects staged earlier in the
// same call. Stages of one account hold its lock (the job lock of the
// empty id, taken before the job's) from the read of its usage to the
// commit.
func (js *Jobs) Stage(j *syncjobs.Job, objs []syncjobs.StagedObject, fn func(added []bool, u syncjobs.Usage) error) error {
	defer js.lock(j.AccountID, "")()
	defer js.lock(j.AccountID, j.ID)()
	if err := js.checkRevision(j); err != nil {
		return err
	}
	// The batch is sized for every object at once: grown by doubling, a
	// 30 MiB upload would hold its old and new buffers together (96 MiB
	// for a moment) and leave 32 MiB of garbage.
	b := js.db.NewIndexedBatchWithSize(stageBatchSize(j.ID, objs))
	defer b.Close()
	added := make([]bool, len(objs))
	for i, o := range objs {
		same := false
		for _, k := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
			v, closer, err := b.Get(stageKey(j.ID, k, o.ID))
			if errors.Is(err, pebble.ErrNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read staged object %s: %w", o.ID, err)
			}
			same = k == o.Kind && bytes.Equal(v, o.Data)
			closer.Close()
			if !same {
				return &syncjobs.DuplicateError{Index: i, Kind: k}
			}
		}
		if same {
			continue
		}
		if err := b.Set(stageKey(j.ID, o.Kind, o.ID), o.Data, nil); err != nil {
			return fmt.Errorf("stage object %s: %w", o.ID, err)
		}
		added[i] = true
	}
	u, err := js.Usage(j.AccountID)
	if err != nil {
		return err
	}
	if err := fn(added, u); err != nil {
		return err
	}
	if err := setJob(b, j); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("stage objects of job %s: %w", j.ID, err)
	}
	j.Revision++
	js.open.set(j)
	return nil
}

// stageBatchSize is the size of a batch that stages objs and the job's
// record: each object's key and data, with room for the record's kind and
// two varint lengths, and a margin for the job's record.
func stageBatchSize(jobID string, objs []syncjobs.StagedObject) int {
	const perRecord = 1 + 2*binary.MaxVarintLen32
	prefix := map[graph.Kind]int{
		graph.KindEntity:       len(stageKindPrefix(jobID, graph.KindEntity)),
		graph.KindRelationship: len(stageKindPrefix(jobID, graph.KindRelationship)),
	}
	n := 4 << 10
	for _, o := range objs {
		n += perRecord + prefix[o.Kind] + len(o.ID) + len(o.Data)
	}
	return n
}

// Staged returns a copy of the staged object's data. Staging is keyed by
// job id alone, so the account is not needed.
func (js *Jobs) Staged(_, jobID string, kind graph.Kind, id string) ([]byte, bool, error) {
	v, closer, err := js.db.Get(stageKey(jobID, kind, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read staged object %s: %w", id, err)
	}
	defer closer.Close()
	return slices.Clone(v), true, nil
}

// ScanStaged iterates the job's staged objects of a kind from one
// consistent snapshot. Staging is keyed by job id alone, so the account is
// not needed.
func (js *Jobs) ScanStaged(_, jobID string, kind graph.Kind, after string, fn func(id string, data []byte) error) error {
	p := stageKindPrefix(jobID, kind)
	lower := p
	if after != "" {
		lower = append(append(slices.Clip(p), after...), 0)
	}
	it, err := js.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: PrefixEnd(p)})
	if err != nil {
		return fmt.Errorf("read staged objects of job %s: %w", jobID, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("read staged objects of job %s: %w", jobID, err)
		}
		if err := fn(string(it.Key()[len(p):]), v); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("read staged objects of job %s: %w", jobID, err)
	}
	return nil
}

// Unfinished reads every job record and returns those being finalized.
func (js *Jobs) Unfinished() ([]syncjobs.Job, error) {
	it, err := js.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famJob}, UpperBound: []byte{famJob + 1}})
	if err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	defer it.Close()
	var out []syncjobs.Job
	for it.First(); it.Valid(); it.Next() {
		j, err := syncjobs.DecodeRecord(it.Value())
		if err != nil {
			return nil, fmt.Errorf("decode job %q: %w", it.Key(), err)
		}
		if j.Status.Finalizing() {
			out = append(out, j)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("read jobs: %w", err)
	}
	return out, nil
}

// Apply runs fn in a graph transaction of j's account (Store.Update) and
// sets j's record, from j's revision, in the transaction's batch once fn
// returns. The job's lock is held throughout, taken before the account's.
func (js *Jobs) Apply(j *syncjobs.Job, fn func(graph.Txn) error) (graph.Commit, error) {
	defer js.lock(j.AccountID, j.ID)()
	if err := js.checkRevision(j); err != nil {
		return graph.Commit{}, err
	}
	c, err := js.s.update(j.AccountID, func(tx *txn) error {
		if err := fn(tx); err != nil {
			return err
		}
		v, err := nextRecord(j)
		if err != nil {
			return err
		}
		return tx.Set(jobKey(j.AccountID, j.ID), v)
	})
	if err == nil {
		j.Revision++
		js.open.set(j)
	}
	return c, err
}
