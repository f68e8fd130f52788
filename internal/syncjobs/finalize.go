package syncjobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/j1ds/j1ds/internal/failpoint"
	"github.com/j1ds/j1ds/internal/graph"
)

// Add counts the changes of one finalize chunk in the job's totals.
func (j *Job) Add(c graph.Counts) {
	j.NumEntitiesCreated += c.EntitiesCreated
	j.NumEntitiesUpdated += c.EntitiesUpdated
	j.NumEntitiesDeleted += c.EntitiesDeleted
	j.NumRelationshipsCreated += c.RelationshipsCreated
	j.NumRelationshipsUpdated += c.RelationshipsUpdated
	j.NumRelationshipsDeleted += c.RelationshipsDeleted
}

// Finalize phases, kept in Job.Progress as "<phase>:<last object id done>".
const (
	phaseEntities      = "e"
	phaseRelationships = "r"
	phaseDeleteRels    = "dr"
	phaseDeleteEnts    = "de"
)

// advance takes t's job on from FINALIZE_PENDING (or wherever its last
// turn, or a previous run, stopped) towards FINISHED or ERROR_BAD_DATA,
// doing at most one chunk of work: finalizeChunk staged relationships
// checked, objects applied, or objects looked at for deletion. It reports
// whether the job ended. Each chunk of objects is one graph transaction
// that also saves the job's counters and progress, so a crash neither
// loses nor repeats a chunk. Every write goes through s.runs: in a
// cluster, once another node has taken the job over, the next write fails
// with ErrNotRunner and writes nothing.
func (s *Service) advance(t *task) (finished bool, err error) {
	j := &t.job
	for budget := finalizeChunk; budget > 0; {
		if err := s.ctx.Err(); err != nil {
			return false, err
		}
		if j.Status == StatusFinalizePending {
			n, bad, err := s.checkRelationships(j, &t.checked, budget)
			if err != nil {
				return false, err
			}
			if bad != nil {
				j.Status, j.Error, j.EndTimestamp = StatusErrorBadData, bad, s.now().UnixMilli()
				s.log.Warn("job rejected at finalize", "account", j.AccountID, "job", j.ID, "code", bad.Code, "reason", bad.Message)
				return true, finish(s.runs, j)
			}
			if budget -= n; budget <= 0 {
				return false, nil
			}
			j.Status, j.Progress = StatusFinalizingEntities, phaseEntities+":"
			if err := s.save(j); err != nil {
				return false, err
			}
			continue
		}
		phase, after, _ := cut(j.Progress)
		var done bool
		var n int
		switch phase {
		case phaseEntities, phaseRelationships:
			kind := graph.KindEntity
			if phase == phaseRelationships {
				kind = graph.KindRelationship
			}
			n, done, err = s.applyChunk(j, kind, after, budget)
		case phaseDeleteRels, phaseDeleteEnts:
			kind := graph.KindRelationship
			if phase == phaseDeleteEnts {
				kind = graph.KindEntity
			}
			n, done, err = s.deleteChunk(j, phase, kind, after, budget)
		default:
			return false, fmt.Errorf("job %s: unknown finalize progress %q", j.ID, j.Progress)
		}
		if err != nil {
			return false, err
		}
		if j.Status == StatusErrorBadData {
			return true, nil // applyChunk ended the job
		}
		failpoint.Hit("sync-after-chunk")
		budget -= n
		if !done {
			continue
		}
		switch phase {
		case phaseEntities:
			j.Status, j.Progress = StatusFinalizingRelationships, phaseRelationships+":"
		case phaseRelationships:
			if j.SyncMode != ModeDiff {
				return true, s.complete(j)
			}
			j.Progress = phaseDeleteRels + ":"
		case phaseDeleteRels:
			j.Progress = phaseDeleteEnts + ":"
		case phaseDeleteEnts:
			return true, s.complete(j)
		}
		if err := s.save(j); err != nil {
			return false, err
		}
	}
	return false, nil
}

func cut(p string) (phase, after string, ok bool) {
	for i := 0; i < len(p); i++ {
		if p[i] == ':' {
			return p[:i], p[i+1:], true
		}
	}
	return p, "", false
}

func (s *Service) save(j *Job) error {
	if err := s.runs.PutJob(j); err != nil {
		return fmt.Errorf("save job %s: %w", j.ID, err)
	}
	return nil
}

func (s *Service) complete(j *Job) error {
	j.Status, j.EndTimestamp = StatusFinished, s.now().UnixMilli()
	s.log.Info("job finished", "account", j.AccountID, "job", j.ID,
		"entities_created", j.NumEntitiesCreated, "entities_updated", j.NumEntitiesUpdated, "entities_deleted", j.NumEntitiesDeleted,
		"relationships_created", j.NumRelationshipsCreated, "relationships_updated", j.NumRelationshipsUpdated, "relationships_deleted", j.NumRelationshipsDeleted)
	return finish(s.runs, j)
}

// stagedObject is an object staged for a job, as finalize reads it.
type stagedObject struct {
	id   string
	data []byte
}

var errChunkFull = errors.New("chunk full")

// stagedChunk returns up to limit of the objects staged for a job under
// kind whose id sorts after `after`, in id order, and whether more follow.
func (s *Service) stagedChunk(account, jobID string, kind graph.Kind, after string, limit int) ([]stagedObject, bool, error) {
	var chunk []stagedObject
	err := s.store.ScanStaged(account, jobID, kind, after, func(id string, data []byte) error {
		if len(chunk) == limit {
			return errChunkFull
		}
		chunk = append(chunk, stagedObject{id, slices.Clone(data)})
		return nil
	})
	more := errors.Is(err, errChunkFull)
	if err != nil && !more {
		return nil, false, fmt.Errorf("read staged objects: %w", err)
	}
	return chunk, more, nil
}

// applyChunk upserts the next chunk of up to limit staged objects of a
// kind after the object id `after`, in one transaction that also saves the
// job. It returns how many it applied and whether none are left.
func (s *Service) applyChunk(j *Job, kind graph.Kind, after string, limit int) (int, bool, error) {
	chunk, more, err := s.stagedChunk(j.AccountID, j.ID, kind, after, limit)
	if err != nil {
		return 0, false, err
	}
	if len(chunk) == 0 {
		return 0, true, nil
	}
	source := j.Source
	next := *j
	// Parsed before the transaction, so the ids it reads are known first;
	// a parse error is handled as one in the transaction would be.
	ins := make([]graph.Input, len(chunk))
	for i, st := range chunk {
		in, perr := graph.ParseObject(kind, st.data)
		if perr != nil {
			err = fmt.Errorf("staged object %s: %w", st.id, perr)
			break
		}
		in.Scope, in.Source = j.Scope, source
		addIntegrationProps(&in, j)
		ins[i] = in
	}
	if err == nil {
		_, err = s.runs.Apply(&next, func(tx graph.Txn) error {
			if p, ok := tx.(graph.Prefetcher); ok {
				if err := p.Prefetch(chunkIDs(j.AccountID, chunk, ins)); err != nil {
					return err
				}
			}
			for i := range ins {
				in := &ins[i]
				if _, _, err := tx.Upsert(in); err != nil {
					return fmt.Errorf("apply %s %s: %w", kind, quote(in.Key), err)
				}
			}
			next.Add(tx.Counts())
			next.Progress = phaseOf(kind) + ":" + chunk[len(chunk)-1].id
			return nil
		})
	}
	if err != nil {
		if bad := badData(err); bad != nil {
			// The checks ran before anything was applied; an end can still
			// vanish, or a key be taken, if another writer changed the graph
			// meanwhile. Retrying cannot help: the job ends here.
			j.Status, j.Error, j.EndTimestamp = StatusErrorBadData, bad, s.now().UnixMilli()
			return len(chunk), true, finish(s.runs, j)
		}
		return 0, false, err
	}
	*j = next
	return len(chunk), !more, nil
}

// chunkIDs returns the ids a chunk's upserts read: its objects' and the
// entities its relationships name.
func chunkIDs(account string, chunk []stagedObject, ins []graph.Input) []string {
	ids := make([]string, 0, len(chunk))
	for i, st := range chunk {
		ids = append(ids, st.id)
		in := &ins[i]
		if in.Kind != graph.KindRelationship {
			continue
		}
		for _, end := range []struct{ id, key, scope string }{{in.FromID, in.FromKey, in.FromScope}, {in.ToID, in.ToKey, in.ToScope}} {
			switch {
			case end.id != "":
				ids = append(ids, end.id)
			case end.key != "":
				scope := end.scope
				if scope == "" {
					scope = in.Scope
				}
				ids = append(ids, graph.ObjectID(account, scope, end.key))
			}
		}
	}
	return ids
}

// badData returns the job error for an error of applying a staged object
// that no retry can fix, nil for any other error.
func badData(err error) *Error {
	var ee *graph.EndpointError
	var ie *graph.InputError
	switch {
	case errors.As(err, &ee):
		return &Error{Code: "RELATIONSHIP_ENDPOINT_NOT_FOUND", Message: err.Error()}
	case errors.Is(err, graph.ErrKindConflict):
		return &Error{Code: "KEY_CONFLICT", Message: err.Error()}
	case errors.As(err, &ie):
		return &Error{Code: "INVALID_GRAPH_OBJECT", Message: err.Error()}
	}
	return nil
}

func phaseOf(kind graph.Kind) string {
	if kind == graph.KindEntity {
		return phaseEntities
	}
	return phaseRelationships
}

// addIntegrationProps sets the integration metadata of integration-managed
// objects.
func addIntegrationProps(in *graph.Input, j *Job) {
	if j.IntegrationInstanceID == "" {
		return
	}
	v, _ := json.Marshal(j.IntegrationInstanceID)
	in.Props = graph.MergeProps(in.Props, []graph.Prop{{Name: "_integrationInstanceId", Value: v}})
}

// deleteChunk deletes the live objects of the job's scope that the job did
// not upload (DIFF), skipping types in partialDatasets, among up to limit
// objects scanned on from the object id `after`. It returns how many it
// scanned and whether the scan reached the end.
func (s *Service) deleteChunk(j *Job, phase string, kind graph.Kind, after string, limit int) (int, bool, error) {
	var doomed []string
	last, scanned := after, 0
	err := s.graph.ScanScope(j.AccountID, j.Scope, kind, after, func(oid, typ string) error {
		if scanned == limit {
			return errChunkFull
		}
		last = oid
		scanned++
		if j.PartialDatasets != nil && slices.Contains(j.PartialDatasets.Types, typ) {
			return nil
		}
		if _, staged, err := s.store.Staged(j.AccountID, j.ID, kind, oid); err != nil || staged {
			return err
		}
		doomed = append(doomed, oid)
		return nil
	})
	full := errors.Is(err, errChunkFull)
	if err != nil && !full {
		return 0, false, fmt.Errorf("find objects to delete: %w", err)
	}
	if len(doomed) == 0 {
		// Nothing to delete among them: the next scan goes on after them.
		j.Progress = phase + ":" + last
		return scanned, !full, nil
	}
	next := *j
	stopped := false
	_, err = s.runs.Apply(&next, func(tx graph.Txn) error {
		next.Progress, stopped = phase+":"+last, false
		prev := after
		for _, oid := range doomed {
			// An entity's relationships count in the chunk: one with more
			// than the rest of graph.MaxCascade loses that many now, the
			// rest and itself in the next chunks, which scan from before it.
			done, err := graph.DeleteWithin(tx, oid, graph.MaxCascade-tx.Changes())
			if err != nil {
				return err
			}
			if !done {
				next.Progress, stopped = phase+":"+prev, true
				break
			}
			prev = oid
		}
		next.Add(tx.Counts())
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("delete objects missing from job: %w", err)
	}
	*j = next
	return scanned, !full && !stopped, nil
}

// checkRelationships verifies, before anything is applied, that every
// staged relationship's ends will exist: as an entity staged by this job,
// or as a live entity of the graph that this job will not delete; and that
// its _key is not an entity's of the scope. It checks up to limit
// relationships after the id *after, which it moves on, and returns how
// many it checked (fewer than limit once all are), the job error of the
// first relationship that fails, or an error when it could not read.
func (s *Service) checkRelationships(j *Job, after *string, limit int) (int, *Error, error) {
	chunk, _, err := s.stagedChunk(j.AccountID, j.ID, graph.KindRelationship, *after, limit)
	if err != nil {
		return 0, nil, err
	}
	for _, st := range chunk {
		if bad, err := s.checkRelationship(j, st.data); bad != nil || err != nil {
			return 0, bad, err
		}
	}
	if len(chunk) > 0 {
		*after = chunk[len(chunk)-1].id
	}
	return len(chunk), nil, nil
}

func (s *Service) checkRelationship(j *Job, data []byte) (*Error, error) {
	in, err := graph.ParseObject(graph.KindRelationship, data)
	if err != nil {
		return errorf(http.StatusBadRequest, "INVALID_GRAPH_OBJECT", "%v", err), nil
	}
	// A _key names one object per scope: an entity (even a deleted one)
	// of the scope with this key cannot become a relationship.
	o, _, err := s.graph.Get(j.AccountID, graph.ObjectID(j.AccountID, j.Scope, in.Key))
	if err != nil && !errors.Is(err, graph.ErrNotFound) {
		return nil, fmt.Errorf("check relationship %s: %w", quote(in.Key), err)
	}
	if err == nil && o.Kind != graph.KindRelationship {
		return errorf(http.StatusBadRequest, "KEY_CONFLICT",
			"relationship _key %s: the graph holds an entity with this _key in scope %s; give the relationship another _key",
			quote(in.Key), quote(j.Scope)), nil
	}
	ends := []struct{ idField, id, keyField, key, scope string }{
		{"_fromEntityId", in.FromID, "_fromEntityKey", in.FromKey, in.FromScope},
		{"_toEntityId", in.ToID, "_toEntityKey", in.ToKey, in.ToScope},
	}
	for _, e := range ends {
		field, value, oid := e.idField, e.id, e.id
		if oid == "" {
			scope := e.scope
			if scope == "" {
				scope = j.Scope
			}
			field, value, oid = e.keyField, e.key, graph.ObjectID(j.AccountID, scope, e.key)
		}
		ok, err := s.endWillExist(j, oid)
		if err != nil {
			return nil, fmt.Errorf("check relationship %s: %w", quote(in.Key), err)
		}
		if ok {
			continue
		}
		return errorf(http.StatusBadRequest, "RELATIONSHIP_ENDPOINT_NOT_FOUND",
			"relationship _key %s: %s %s names no entity uploaded to this job or kept in the graph; upload that entity in this job or fix the reference",
			quote(in.Key), field, quote(value)), nil
	}
	return nil, nil
}

func (s *Service) endWillExist(j *Job, oid string) (bool, error) {
	if _, staged, err := s.store.Staged(j.AccountID, j.ID, graph.KindEntity, oid); err != nil || staged {
		return staged, err
	}
	o, _, err := s.graph.Get(j.AccountID, oid)
	if errors.Is(err, graph.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if o.Deleted || o.Kind != graph.KindEntity {
		return false, nil
	}
	// A DIFF job deletes the entities of its scope it did not upload.
	if j.SyncMode == ModeDiff && o.Scope == j.Scope && (j.PartialDatasets == nil || !slices.Contains(j.PartialDatasets.Types, o.Type)) {
		return false, nil
	}
	return true, nil
}
