package syncjobs

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/j1ds/j1ds/internal/graph"
)

// Store keeps what the jobs of every account persist: each job's record
// (with its finalize progress), the number of events reported for it, and
// the objects uploaded to it (its staging) until it ends. Every write is
// atomic and durable when the method returns; a failed write changes
// nothing.
//
// Every write of a job's record (PutJob, Stage, Finish, Apply) is
// conditional on the record's revision: it writes only when j.Revision is
// the stored record's Revision (0 for a job that has no record), stores
// the record at the next revision and sets j.Revision to it; otherwise it
// fails with ErrJobChanged and writes nothing. The check and the write are
// one atomic step against every other write of the job, whichever process
// sends it: of writes made from one revision, one succeeds. This is what
// keeps a job's changes in order when several processes share the Store
// (the nodes of a cluster each answer any request), where the Service's
// locks, which serialise the changes of one job within its process, do not
// reach. SetEvents is not a write of the record: it neither checks nor
// changes the revision.
type Store interface {
	// Job returns the record of the account's job with id as last written,
	// Progress included, with NumEvents set to the count last written by
	// SetEvents (0 when none). ErrJobNotFound when there is none.
	Job(account, id string) (Job, error)
	// PutJob writes the job's record, replacing the one stored, or
	// creating it when j.Revision is 0 and there is none.
	PutJob(j *Job) error
	// SetEvents writes the number of events reported for a job, apart from
	// its record: writing the record leaves it as it is.
	SetEvents(account, id string, n int) error
	// Stage adds objs to the staging of job j, in order, and writes j's
	// record with them in one atomic write. An object staged already (by
	// an earlier call or earlier in objs) under the same kind and id with
	// the same Data is skipped; one staged under the other kind, or with
	// other Data, fails the call with a *DuplicateError. Once every object
	// is resolved, fn learns which objects are new (added[i]) and what the
	// account's open jobs hold (u, as Usage returns it), and may update j
	// before its record is written. On a duplicate or an error from fn, or
	// a changed job (ErrJobChanged), nothing is written.
	//
	// Stages of one account run one at a time from the read of u to the
	// commit, on every node that shares the Store, so a quota that fn
	// checks against u holds for the account as a whole. With no objects,
	// Stage writes j's record alone that way (a new job's, when
	// j.Revision is 0 and there is none).
	Stage(j *Job, objs []StagedObject, fn func(added []bool, u Usage) error) error
	// Staged returns the Data of the object staged for the account's job
	// under kind and id; ok is false when there is none.
	Staged(account, jobID string, kind graph.Kind, id string) (data []byte, ok bool, err error)
	// ScanStaged calls fn for each object staged for the account's job
	// under kind whose id sorts after the given one (all when empty), in id
	// order. data is valid only during the call, and fn must not call the
	// Store. An error from fn stops the scan and is returned.
	ScanStaged(account, jobID string, kind graph.Kind, after string, fn func(id string, data []byte) error) error
	// Finish writes the record of a job that reached a final state and
	// drops its staging, in one atomic write.
	Finish(j *Job) error
	// Unfinished returns every stored job, of every account, whose record's
	// Status is Finalizing, Progress included.
	Unfinished() ([]Job, error)
	// Usage returns what the account's open jobs (those whose Status is
	// not Final) hold, as their records were last written: how many there
	// are and the sum of their StagedBytes. It reads the open jobs only.
	Usage(account string) (Usage, error)
	// ListJobs returns up to limit of the account's jobs, of any status,
	// whose id sorts after `after` (all when empty), in id order, each as
	// Job returns it.
	ListJobs(account, after string, limit int) ([]Job, error)
	// Idle returns up to limit jobs, of every account, that await uploads
	// and were touched last (Job.Touched, or StartTimestamp when it is 0)
	// before `before` (Unix milliseconds), the least recently touched
	// first, as Job returns them.
	Idle(before int64, limit int) ([]Job, error)
	// Apply runs fn as one transaction on the graph of j's account
	// (graph.Graph.Update) and commits the transaction's changes and j's
	// record, as it stands when fn returns, in one atomic write, even when
	// the transaction changes no object. An error from fn writes neither.
	Apply(j *Job, fn func(graph.Txn) error) (graph.Commit, error)
}

// Runners is implemented by a Store that several processes, the nodes of a
// cluster, share. It records which node runs each job's finalization (the
// job's runner), so that at most one live node runs a finalization and one
// whose node died is taken over by another. A node is live while its lease
// in the store has not ended (in the store's clock) and it has not left; a
// node the store has no lease of is not live.
type Runners interface {
	// Claim makes node the runner of the account's job, in one atomic
	// write, when the job is being finalized and its runner is node
	// itself, or node is live and the job has no runner or its runner is
	// not live. ok reports whether node is the job's runner on return. A
	// write of the former runner is either refused or committed before
	// the claim, so the record a claim leaves holds every chunk applied.
	Claim(account, id, node string) (ok bool, err error)
	// Orphans returns up to limit of the jobs being finalized, of every
	// account, that no live node runs (their runner is not live, or they
	// have none), in account and id order. It is one cheap statement:
	// every node calls it every few seconds.
	Orphans(limit int) ([]Orphan, error)
	// Runner returns the Store through which node runs finalizations.
	// Its PutJob, Finish and Apply write only while node is the job's
	// runner, and make node the runner of a job that has none (Finalize
	// writing FINALIZE_PENDING); otherwise, or when there is no such job,
	// they fail with ErrNotRunner and write nothing. Node being the runner,
	// they are conditional on the revision as the Store's are
	// (ErrJobChanged). Both checks are part of the write's transaction.
	// Its other methods are the Store's.
	Runner(node string) Store
}

// Orphan is a job being finalized that no live node runs.
type Orphan struct {
	AccountID string
	ID        string
	// Runner is the node that ran it last; "" when none did.
	Runner string
}

// ErrNotRunner is returned by the writes of a Runners.Runner Store once
// another node runs the job: its node lost its lease (it was paused or cut
// off) and the job was taken over. The node stops that finalization and
// leaves the job to the other.
var ErrNotRunner = errors.New("another node runs this job's finalization now")

// ErrJobChanged is returned by a write of a job's record whose Revision is
// not the stored one: another request, perhaps on another node, changed
// the job since this one read it. Nothing was written; the caller reads
// the job again and decides anew, as if it had come after the other.
var ErrJobChanged = errors.New("the job changed since it was read")

// StagedObject is one uploaded object as a job stages it.
type StagedObject struct {
	Kind graph.Kind
	// ID is the object's id in the graph (graph.ObjectID of the job's
	// account and scope and the object's _key).
	ID string
	// Data is the object in canonical form (graph.Input.AppendCanonical).
	Data []byte
}

// ErrJobNotFound is returned by Store.Job for a job that does not exist.
var ErrJobNotFound = errors.New("job not found")

// DuplicateError is returned by Store.Stage for an object whose id is
// staged already as the other kind or with other content.
type DuplicateError struct {
	// Index is the object's index in the objects given to Stage.
	Index int
	// Kind is the kind the id is staged as.
	Kind graph.Kind
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("object %d: its id is staged already as %s with other content", e.Index, e.Kind)
}

// Finalizing reports whether a job in this state is being finalized: its
// finalization resumes when the service opens, or, in a cluster, on
// another node once its runner is no longer live.
func (s Status) Finalizing() bool {
	switch s {
	case StatusFinalizePending, StatusFinalizingEntities, StatusFinalizingRelationships:
		return true
	}
	return false
}

// Final reports whether a job in this state has ended: nothing changes it
// any more, and its staging is gone. A job that is not final is open.
func (s Status) Final() bool {
	switch s {
	case StatusAborted, StatusFinished, StatusErrorBadData:
		return true
	}
	return false
}

// Usage is what an account's open jobs hold (Store.Usage).
type Usage struct {
	// OpenJobs is the number of jobs awaiting uploads or being finalized.
	OpenJobs int `json:"openJobs"`
	// StagedBytes is the size of what they staged.
	StagedBytes int64 `json:"stagedBytes"`
}

// LastTouched returns when the job was created or last took an upload
// (Unix milliseconds): Touched, or StartTimestamp for a record that has
// none.
func (j *Job) LastTouched() int64 {
	if j.Touched != 0 {
		return j.Touched
	}
	return j.StartTimestamp
}

// record is a job as backends store it: the job in the API's shape plus
// its finalize progress and its revision, which the API does not show.
type record struct {
	Job
	Progress    string `json:"progress,omitempty"`
	Revision    int64  `json:"revision,omitempty"`
	StagedBytes int64  `json:"stagedBytes,omitempty"`
	Touched     int64  `json:"touched,omitempty"`
}

// EncodeRecord returns the JSON a backend stores for a job's record,
// Progress, Revision, StagedBytes and Touched included; both backends
// store the same.
func EncodeRecord(j *Job) ([]byte, error) {
	v, err := json.Marshal(record{Job: *j, Progress: j.Progress, Revision: j.Revision, StagedBytes: j.StagedBytes, Touched: j.Touched})
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return v, nil
}

// DecodeRecord decodes what EncodeRecord wrote. A record written before
// records had revisions is at revision 0.
func DecodeRecord(v []byte) (Job, error) {
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return Job{}, err
	}
	r.Job.Progress, r.Job.Revision, r.Job.StagedBytes, r.Job.Touched = r.Progress, r.Revision, r.StagedBytes, r.Touched
	return r.Job, nil
}
