package syncjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/j1ds/j1ds/internal/graph"
)

// Status is a job's state, as JupiterOne names it.
type Status string

const (
	StatusAwaitingUploads         Status = "AWAITING_UPLOADS"
	StatusFinalizePending         Status = "FINALIZE_PENDING"
	StatusFinalizingEntities      Status = "FINALIZING_ENTITIES"
	StatusFinalizingRelationships Status = "FINALIZING_RELATIONSHIPS"
	StatusAborted                 Status = "ABORTED"
	StatusFinished                Status = "FINISHED"
	StatusErrorBadData            Status = "ERROR_BAD_DATA"
)

// Sync modes.
const (
	ModeDiff  = "DIFF"
	ModePatch = "PATCH"
)

// Sources a job may write as.
var sources = map[string]bool{"api": true, "integration-managed": true, "integration-external": true}

// PartialDatasets lists types a DIFF job did not fully upload: objects of
// these types are not deleted when missing from the job.
type PartialDatasets struct {
	Types []string `json:"types"`
}

// Job is a synchronization job, in the shape of JupiterOne's API.
type Job struct {
	ID                            string           `json:"id"`
	AccountID                     string           `json:"accountId"`
	Source                        string           `json:"source"`
	Scope                         string           `json:"scope"`
	SyncMode                      string           `json:"syncMode"`
	IntegrationInstanceID         string           `json:"integrationInstanceId,omitempty"`
	IntegrationJobID              string           `json:"integrationJobId,omitempty"`
	Status                        Status           `json:"status"`
	StartTimestamp                int64            `json:"startTimestamp"`
	FinalizeTimestamp             int64            `json:"finalizeTimestamp,omitempty"`
	EndTimestamp                  int64            `json:"endTimestamp,omitempty"`
	NumEntitiesUploaded           int              `json:"numEntitiesUploaded"`
	NumEntitiesCreated            int              `json:"numEntitiesCreated"`
	NumEntitiesUpdated            int              `json:"numEntitiesUpdated"`
	NumEntitiesDeleted            int              `json:"numEntitiesDeleted"`
	NumRelationshipsUploaded      int              `json:"numRelationshipsUploaded"`
	NumRelationshipsCreated       int              `json:"numRelationshipsCreated"`
	NumRelationshipsUpdated       int              `json:"numRelationshipsUpdated"`
	NumRelationshipsDeleted       int              `json:"numRelationshipsDeleted"`
	NumMappedRelationshipsCreated int              `json:"numMappedRelationshipsCreated"`
	NumMappedRelationshipsUpdated int              `json:"numMappedRelationshipsUpdated"`
	NumMappedRelationshipsDeleted int              `json:"numMappedRelationshipsDeleted"`
	NumEvents                     int              `json:"numEvents"`
	PartialDatasets               *PartialDatasets `json:"partialDatasets,omitempty"`
	AbortReason                   string           `json:"abortReason,omitempty"`
	Error                         *Error           `json:"error,omitempty"`

	// Progress is the finalize progress, so a restart resumes where it
	// stopped. It is not part of the API's shape; a Store keeps it.
	Progress string `json:"-"`
	// Revision counts the writes of the job's record: the Store sets it,
	// and writes a record only from the revision it was read at (see
	// Store). It is not part of the API's shape.
	Revision int64 `json:"-"`
	// StagedBytes is the size of the objects staged for the job (their ids
	// and data), counted in its account's staging quota while the job is
	// open. It is not part of the API's shape; a Store keeps it.
	StagedBytes int64 `json:"-"`
	// Touched is when the job was created or last took an upload (Unix
	// milliseconds); a job awaiting uploads expires Options.JobExpiry after
	// it. It is not part of the API's shape; a Store keeps it.
	Touched int64 `json:"-"`
}

// Error is a job error in JupiterOne's shape. Status is the HTTP status an
// API answers with.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Limits of the service.
const (
	// MaxObjectsPerUpload bounds one upload request.
	MaxObjectsPerUpload = 10000
	// finalizeChunk is the number of objects applied per transaction.
	finalizeChunk = 500
	// finalizeWait is how long Finalize waits for a small job to finish
	// before answering with the job as it is.
	finalizeWait = 5 * time.Second
	maxEvents    = 1000
)

// Options configure a Service.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Retry reports whether a finalization that failed with err is tried
	// again in this process, after a backoff (from a second, doubling, to
	// a minute), until it ends or the service closes: for errors that
	// pass, such as a database that cannot be reached. When nil, or for
	// the errors it refuses, the job waits for the next Open to resume it.
	// A finalization whose record changed under it (ErrJobChanged) is
	// always tried again.
	Retry func(err error) bool
	// Node is this process's id among the processes that share the Store
	// (cluster.Manager.ID); "" when the process has the Store to itself.
	// With a Node the Store must implement Runners: a finalization runs
	// only on the node that claimed it, and instead of resuming every
	// unfinished job at Open the Service takes over, every ResumePoll,
	// the finalizations no live node runs.
	Node string
	// ResumePoll is how often a Node looks for finalizations no live node
	// runs (one Runners.Orphans call); DefaultResumePoll when zero.
	ResumePoll time.Duration
	// Workers is how many finalizations run at once, fairly shared by the
	// accounts (schedule.go); DefaultWorkers when zero.
	Workers int
	// MaxOpenJobs bounds an account's open jobs (awaiting uploads or being
	// finalized): Create answers 429 TOO_MANY_OPEN_JOBS beyond it.
	// DefaultMaxOpenJobs when zero.
	MaxOpenJobs int
	// MaxStagedBytes bounds what an account's open jobs stage (the ids and
	// canonical data of their uploads): an upload beyond it is answered
	// 429 STAGING_QUOTA_EXCEEDED. DefaultMaxStagedBytes when zero.
	MaxStagedBytes int64
	// JobExpiry is how long a job awaits uploads after its last (or its
	// creation) before it is aborted and its staging dropped (quota.go);
	// DefaultJobExpiry when zero.
	JobExpiry time.Duration
	// ExpiryPoll is how often the Service looks for jobs to expire
	// (ExpireIdle): a tenth of JobExpiry, at most a minute, when zero;
	// never when negative, for an owner that calls ExpireIdle itself.
	ExpiryPoll time.Duration
}

// DefaultResumePoll is Options.ResumePoll when zero: half the default
// lease of a cluster node, so a dead node's finalizations are taken over
// within one and a half leases of its last renewal.
const DefaultResumePoll = 3 * time.Second

// maxOrphans bounds the orphaned jobs one look takes up; the others wait
// for the next.
const maxOrphans = 100

// Backoff of the finalizations Options.Retry tries again.
const (
	finalizeRetryMin = time.Second
	finalizeRetryMax = time.Minute
)

// Service runs synchronization jobs against a graph. Uploads are staged in
// a Store (on disk) and applied at finalize in bounded transactions.
type Service struct {
	graph graph.Graph
	store Store
	log   *slog.Logger
	now   func() time.Time
	retry func(error) bool
	// sched holds the finalizations waiting for one of the workers.
	sched   scheduler
	workers int

	// runs is the Store finalizations write through: the Store itself,
	// or in a cluster its Runners.Runner view for this node.
	runs Store
	// node and runners are set in a cluster (Options.Node).
	node    string
	runners Runners
	poll    time.Duration

	// jobLocks serialise changes to a job within this process; a job uses
	// the stripe its id hashes to, so the locks take fixed memory however
	// many jobs run. Across processes sharing the Store, its conditional
	// writes order them (ErrJobChanged).
	jobLocks [64]sync.Mutex
	// accountLocks serialise, within this process, the changes an
	// account's quotas bound (lockAccount).
	accountLocks [64]sync.Mutex
	limits       Limits
	expiryPoll   time.Duration

	mu struct {
		sync.Mutex
		running map[string]chan struct{}
	}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open starts the service over a graph and the Store of its jobs, and
// resumes jobs whose finalization a previous run did not complete: at
// once on its own, or in a cluster (Options.Node) those no live node
// runs, looked for at once and then every ResumePoll. Close stops it.
func Open(g graph.Graph, st Store, o Options) (*Service, error) {
	s := &Service{graph: g, store: st, runs: st, log: o.Logger, now: o.Now, retry: o.Retry, workers: o.Workers}
	if s.workers <= 0 {
		s.workers = DefaultWorkers
	}
	s.sched.init()
	s.limits = Limits{MaxOpenJobs: o.MaxOpenJobs, MaxStagedBytes: o.MaxStagedBytes, JobExpiry: o.JobExpiry}
	if s.limits.MaxOpenJobs <= 0 {
		s.limits.MaxOpenJobs = DefaultMaxOpenJobs
	}
	if s.limits.MaxStagedBytes <= 0 {
		s.limits.MaxStagedBytes = DefaultMaxStagedBytes
	}
	if s.limits.JobExpiry <= 0 {
		s.limits.JobExpiry = DefaultJobExpiry
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mu.running = make(map[string]chan struct{})
	if o.Node != "" {
		r, ok := st.(Runners)
		if !ok {
			return nil, fmt.Errorf("sync jobs of node %s: the Store cannot be shared by nodes (it keeps no job runners)", o.Node)
		}
		s.node, s.runners, s.runs, s.poll = o.Node, r, r.Runner(o.Node), o.ResumePoll
		if s.poll <= 0 {
			s.poll = DefaultResumePoll
		}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for range s.workers {
		s.wg.Add(1)
		go s.worker()
	}
	if s.expiryPoll = o.ExpiryPoll; s.expiryPoll == 0 {
		s.expiryPoll = min(s.limits.JobExpiry/10, maxExpiryPoll)
	}
	if s.expiryPoll > 0 {
		s.wg.Add(1)
		go s.expireLoop()
	}
	if s.runners != nil {
		s.wg.Add(1)
		go s.resumeOrphans()
		return s, nil
	}
	pending, err := s.store.Unfinished()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("find unfinished jobs: %w", err)
	}
	for _, j := range pending {
		s.log.Info("resuming job finalization", slog.String("account", j.AccountID), slog.String("job", j.ID), slog.String("status", string(j.Status)))
		s.startFinalize(j.AccountID, j.ID, nil)
	}
	return s, nil
}

// Close stops running finalizations (they resume on the next Open, or on
// another node of a cluster) and waits for them.
func (s *Service) Close() {
	s.cancel()
	s.closeScheduler()
	s.wg.Wait()
}

// CreateRequest is the body of POST /persister/synchronization/jobs.
type CreateRequest struct {
	Source                string `json:"source"`
	Scope                 string `json:"scope"`
	SyncMode              string `json:"syncMode"`
	IntegrationInstanceID string `json:"integrationInstanceId"`
	IntegrationJobID      string `json:"integrationJobId"`
}

// Create starts a job.
func (s *Service) Create(account string, r CreateRequest) (Job, error) {
	if r.Source == "" {
		r.Source = "api"
	}
	if !sources[r.Source] {
		return Job{}, errorf(http.StatusBadRequest, "INVALID_SOURCE", "source %q is not one of api, integration-managed, integration-external", r.Source)
	}
	if r.SyncMode == "" {
		r.SyncMode = ModeDiff
	}
	if r.SyncMode != ModeDiff && r.SyncMode != ModePatch {
		return Job{}, errorf(http.StatusBadRequest, "INVALID_SYNC_MODE", "syncMode %q is not DIFF or PATCH", r.SyncMode)
	}
	scope := r.Scope
	if scope == "" {
		scope = r.IntegrationInstanceID
	}
	if scope == "" {
		return Job{}, errorf(http.StatusBadRequest, "SCOPE_REQUIRED", "a job needs a scope (or an integrationInstanceId, which becomes its scope): it names the objects a DIFF job owns")
	}
	probe := graph.Input{Kind: graph.KindEntity, Key: "probe-key-x", Type: "probe", Class: []string{"X"}, Scope: scope}
	if err := probe.Validate(); err != nil && strings.HasPrefix(err.Error(), "_scope") {
		return Job{}, errorf(http.StatusBadRequest, "INVALID_SCOPE", "scope %s", strings.TrimPrefix(err.Error(), "_scope: "))
	}
	if len(r.IntegrationInstanceID) > 256 || len(r.IntegrationJobID) > 256 {
		return Job{}, errorf(http.StatusBadRequest, "INVALID_JOB", "integrationInstanceId and integrationJobId are limited to 256 bytes")
	}
	unlock := s.lockAccount(account)
	defer unlock()
	j := Job{
		ID: uuid.NewString(), AccountID: account, Source: r.Source, Scope: scope, SyncMode: r.SyncMode,
		IntegrationInstanceID: r.IntegrationInstanceID, IntegrationJobID: r.IntegrationJobID,
		Status: StatusAwaitingUploads, StartTimestamp: s.now().UnixMilli(),
	}
	// Written by Stage, which checks the quota against the account's
	// open jobs on every node at once.
	err := s.store.Stage(&j, nil, func(_ []bool, u Usage) error { return s.checkOpenJobs(account, u) })
	if _, ok := errors.AsType[*Error](err); ok {
		return Job{}, err
	}
	if err != nil {
		return Job{}, fmt.Errorf("create job: %w", err)
	}
	return j, nil
}

// Get returns a job of the account.
func (s *Service) Get(account, id string) (Job, error) {
	return s.load(account, id)
}

func (s *Service) load(account, id string) (Job, error) {
	notFound := func() *Error {
		return errorf(http.StatusNotFound, "JOB_NOT_FOUND", "no synchronization job %s in account %s", quote(id), account)
	}
	if _, err := uuid.Parse(id); err != nil {
		return Job{}, notFound()
	}
	j, err := s.store.Job(account, id)
	if errors.Is(err, ErrJobNotFound) {
		return Job{}, notFound()
	}
	return j, err
}

// lock serialises changes to one job.
func (s *Service) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &s.jobLocks[h.Sum32()%uint32(len(s.jobLocks))]
	m.Lock()
	return m.Unlock
}

func notAwaiting(j Job) *Error {
	return errorf(http.StatusBadRequest, "JOB_NOT_AWAITING_UPLOADS", "job %s is %s, not AWAITING_UPLOADS: start a new job to upload more data", j.ID, j.Status)
}

// maxJobChanges bounds how often one request finds the job changed by
// another between its read and its write (ErrJobChanged) and starts over
// from the job as it then stands. Each time another request's write
// succeeded, so a request gives up only on a job that other nodes change
// without pause, or a Store that keeps failing this way: it then fails
// with jobChanging's error, which the API answers as an internal error.
const maxJobChanges = 100

func jobChanging(id string) error {
	return fmt.Errorf("job %s: changed under this request %d times in a row: %w", id, maxJobChanges, ErrJobChanged)
}

// Upload stages entities and relationships of a job. Every object is
// validated first; one invalid object rejects the whole request, and
// nothing of it is staged. Upload takes the slices: it sets each element
// to nil once parsed, so that a large upload is not held twice.
func (s *Service) Upload(account, id string, entities, relationships []json.RawMessage) (Job, error) {
	if n := len(entities) + len(relationships); n > MaxObjectsPerUpload {
		return Job{}, errorf(http.StatusRequestEntityTooLarge, "TOO_MANY_OBJECTS", "one upload holds %d objects; the limit is %d: split it into smaller uploads", n, MaxObjectsPerUpload)
	}
	if err := s.graph.CheckSpace(); err != nil {
		return Job{}, err
	}
	unlock := s.lock(id)
	defer unlock()
	j, err := s.load(account, id)
	if err != nil {
		return Job{}, err
	}
	if j.Status != StatusAwaitingUploads {
		return Job{}, notAwaiting(j)
	}
	// Every object is validated before anything is staged.
	objs := make([]StagedObject, 0, len(entities)+len(relationships))
	keys := make([]string, 0, cap(objs))
	lists := []struct {
		kind graph.Kind
		name string
		raws []json.RawMessage
	}{{graph.KindEntity, "entities", entities}, {graph.KindRelationship, "relationships", relationships}}
	// Each raw object is let go once parsed: an upload is then held about
	// once (as canonical data) rather than twice while it is staged.
	for _, l := range lists {
		for i, raw := range l.raws {
			in, err := graph.ParseObject(l.kind, raw)
			if err != nil {
				return Job{}, badObject(l.name, i, raw, err)
			}
			objs = append(objs, StagedObject{Kind: l.kind, ID: graph.ObjectID(account, j.Scope, in.Key), Data: in.AppendCanonical(nil)})
			keys = append(keys, in.Key)
			l.raws[i] = nil
		}
	}
	// The SDK retries uploads whose answer it did not get, so an object
	// uploaded again with identical content is accepted once more and not
	// counted twice; the same _key with other content is a duplicate.
	// What the new objects add to the account's staging must fit in its
	// quota, besides what its open jobs hold.
	count := func(added []bool, usage Usage) error {
		var size int64
		for i, a := range added {
			if a {
				size += stagedSize(objs[i])
			}
		}
		if err := s.stagingQuota(account, usage, size); err != nil {
			return err
		}
		for i, a := range added {
			switch {
			case !a:
			case objs[i].Kind == graph.KindEntity:
				j.NumEntitiesUploaded++
			default:
				j.NumRelationshipsUploaded++
			}
		}
		j.StagedBytes += size
		j.Touched = s.now().UnixMilli()
		return nil
	}
	unlockAccount := s.lockAccount(account)
	defer unlockAccount()
	// Another request that changed the job between its read and this
	// write (ErrJobChanged) came first: nothing was staged, and the upload
	// starts over from the job as it stands, which may no longer await
	// uploads.
	for changes := 0; ; changes++ {
		err = s.store.Stage(&j, objs, count)
		if !errors.Is(err, ErrJobChanged) {
			break
		}
		if changes == maxJobChanges {
			return Job{}, jobChanging(id)
		}
		if j, err = s.load(account, id); err != nil {
			return Job{}, err
		}
		if j.Status != StatusAwaitingUploads {
			return Job{}, notAwaiting(j)
		}
	}
	if dup, ok := errors.AsType[*DuplicateError](err); ok {
		list, i := lists[0].name, dup.Index
		if i >= len(entities) {
			list, i = lists[1].name, i-len(entities)
		}
		return Job{}, errorf(http.StatusBadRequest, "DUPLICATE_KEY", "%s[%d]: _key %s was already uploaded to this job (as %s) with other content; each _key may appear once per scope", list, i, quote(keys[dup.Index]), dup.Kind)
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return Job{}, err
	}
	if err != nil {
		return Job{}, fmt.Errorf("stage upload: %w", err)
	}
	return j, nil
}

func badObject(list string, i int, raw []byte, err error) *Error {
	var key struct {
		Key any `json:"_key"`
	}
	_ = json.Unmarshal(raw, &key)
	where := fmt.Sprintf("%s[%d]", list, i)
	if k, ok := key.Key.(string); ok && k != "" {
		where += " (_key " + quote(k) + ")"
	}
	return errorf(http.StatusBadRequest, "INVALID_GRAPH_OBJECT", "%s: %v", where, err)
}

// Event is a job event an integration reports.
type Event struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Level       string `json:"level,omitempty"`
}

// AddEvents records events of a job: they are counted on the job and
// logged.
func (s *Service) AddEvents(account, id string, events []Event) (Job, error) {
	if len(events) > maxEvents {
		return Job{}, errorf(http.StatusRequestEntityTooLarge, "TOO_MANY_EVENTS", "%d events in one request; the limit is %d", len(events), maxEvents)
	}
	unlock := s.lock(id)
	defer unlock()
	j, err := s.load(account, id)
	if err != nil {
		return Job{}, err
	}
	for _, e := range events {
		s.log.Info("job event", slog.String("account", account), slog.String("job", id),
			slog.String("name", truncate(e.Name, 200)), slog.String("description", truncate(e.Description, 1000)))
	}
	// The count is kept apart from the record: a finalization running meanwhile
	// rewrites the job record from its own copy.
	j.NumEvents += len(events)
	if err := s.store.SetEvents(account, id, j.NumEvents); err != nil {
		return Job{}, fmt.Errorf("record job events: %w", err)
	}
	return j, nil
}

// finish saves a job that reached a final state, through st, and drops
// its staging.
func finish(st Store, j *Job) error {
	j.Progress = ""
	if err := st.Finish(j); err != nil {
		return fmt.Errorf("finish job %s: %w", j.ID, err)
	}
	return nil
}

// errNotClaimed is claim's error for a job that another live node runs, or
// that is no longer being finalized.
var errNotClaimed = errors.New("job not claimed")

func quote(s string) string {
	return fmt.Sprintf("%q", truncate(s, 64))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
