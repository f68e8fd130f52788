package syncjobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/failpoint"
	"github.com/j1ds/j1ds/internal/graph"
)

// Key layout: the 'J', 'E' and 'S' families of the store's database.
//
//	J <account> 0 <job id>          job record (JSON, with finalize progress)
//	E <account> 0 <job id>          number of events reported (uvarint)
//	S <job id> 0 <kind> <object id> staged object, in canonical form
const (
	famJob    = 'J'
	famEvents = 'E'
	famStage  = 'S'
)

func eventsKey(account, id string) []byte {
	return append(append(append([]byte{famEvents}, account...), 0), id...)
}

func jobKey(account, id string) []byte {
	return append(append(append([]byte{famJob}, account...), 0), id...)
}

func stagePrefix(id string) []byte {
	return append(append([]byte{famStage}, id...), 0)
}

func stageKindPrefix(id string, kind graph.Kind) []byte {
	return append(stagePrefix(id), byte(kind))
}

func stageKey(id string, kind graph.Kind, oid string) []byte {
	return append(stageKindPrefix(id, kind), oid...)
}

func putJob(b *pebble.Batch, j *Job) error {
	v, err := json.Marshal(storedJob{Job: *j, Progress: j.Progress})
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return b.Set(jobKey(j.AccountID, j.ID), v, nil)
}

func (j *Job) setInTxn(tx *graph.Txn) error {
	v, err := json.Marshal(storedJob{Job: *j, Progress: j.Progress})
	if err != nil {
		return fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	return tx.Set(jobKey(j.AccountID, j.ID), v)
}

func (j *Job) add(c graph.Counts) {
	j.NumEntitiesCreated += c.EntitiesCreated
	j.NumEntitiesUpdated += c.EntitiesUpdated
	j.NumEntitiesDeleted += c.EntitiesDeleted
	j.NumRelationshipsCreated += c.RelationshipsCreated
	j.NumRelationshipsUpdated += c.RelationshipsUpdated
	j.NumRelationshipsDeleted += c.RelationshipsDeleted
}

// Finalize phases, kept in Job.Progress as "<phase>:<last key done>".
const (
	phaseEntities      = "e"
	phaseRelationships = "r"
	phaseDeleteRels    = "dr"
	phaseDeleteEnts    = "de"
)

// runFinalize takes a job from FINALIZE_PENDING (or wherever a previous
// run stopped) to FINISHED or ERROR_BAD_DATA. Each chunk of objects is one
// graph transaction that also saves the job's counters and progress, so a
// crash neither loses nor repeats a chunk.
func (s *Service) runFinalize(account, id string) error {
	j, err := s.load(account, id)
	if err != nil {
		return err
	}
	if j.Status == StatusFinalizePending {
		if bad := s.checkRelationships(&j); bad != nil {
			j.Status, j.Error, j.EndTimestamp = StatusErrorBadData, bad, s.now().UnixMilli()
			s.log.Warn("job rejected at finalize", "account", account, "job", id, "code", bad.Code, "reason", bad.Message)
			return s.finish(&j)
		}
		j.Status, j.Progress = StatusFinalizingEntities, phaseEntities+":"
		if err := s.save(&j); err != nil {
			return err
		}
	}
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		phase, after, _ := cut(j.Progress)
		var done bool
		switch phase {
		case phaseEntities, phaseRelationships:
			kind := graph.KindEntity
			if phase == phaseRelationships {
				kind = graph.KindRelationship
			}
			done, err = s.applyChunk(&j, kind, after)
		case phaseDeleteRels, phaseDeleteEnts:
			kind := graph.KindRelationship
			if phase == phaseDeleteEnts {
				kind = graph.KindEntity
			}
			done, err = s.deleteChunk(&j, phase, kind, after)
		default:
			return fmt.Errorf("job %s: unknown finalize progress %q", id, j.Progress)
		}
		if err != nil {
			return err
		}
		if j.Status == StatusErrorBadData {
			return nil // applyChunk ended the job
		}
		failpoint.Hit("sync-after-chunk")
		if s.opts.afterChunk != nil {
			if err := s.opts.afterChunk(&j); err != nil {
				return err
			}
		}
		if !done {
			continue
		}
		switch phase {
		case phaseEntities:
			j.Status, j.Progress = StatusFinalizingRelationships, phaseRelationships+":"
		case phaseRelationships:
			if j.SyncMode != ModeDiff {
				return s.complete(&j)
			}
			j.Progress = phaseDeleteRels + ":"
		case phaseDeleteRels:
			j.Progress = phaseDeleteEnts + ":"
		case phaseDeleteEnts:
			return s.complete(&j)
		}
		if err := s.save(&j); err != nil {
			return err
		}
	}
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
	b := s.db.NewBatch()
	defer b.Close()
	if err := putJob(b, j); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}

func (s *Service) complete(j *Job) error {
	j.Status, j.EndTimestamp = StatusFinished, s.now().UnixMilli()
	s.log.Info("job finished", "account", j.AccountID, "job", j.ID,
		"entities_created", j.NumEntitiesCreated, "entities_updated", j.NumEntitiesUpdated, "entities_deleted", j.NumEntitiesDeleted,
		"relationships_created", j.NumRelationshipsCreated, "relationships_updated", j.NumRelationshipsUpdated, "relationships_deleted", j.NumRelationshipsDeleted)
	return s.finish(j)
}

// applyChunk upserts the next chunk of staged objects of a kind after the
// staged key `after`, in one transaction.
func (s *Service) applyChunk(j *Job, kind graph.Kind, after string) (bool, error) {
	p := stageKindPrefix(j.ID, kind)
	lower := p
	if after != "" {
		lower = append(append([]byte(nil), p...), after...)
		lower = append(lower, 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: graph.PrefixEnd(p)})
	if err != nil {
		return false, fmt.Errorf("read staged objects: %w", err)
	}
	type staged struct {
		oid string
		raw []byte
	}
	var chunk []staged
	for it.First(); it.Valid() && len(chunk) < finalizeChunk; it.Next() {
		chunk = append(chunk, staged{string(it.Key()[len(p):]), slices.Clone(it.Value())})
	}
	more := it.Valid()
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("read staged objects: %w", err)
	}
	if len(chunk) == 0 {
		return true, nil
	}
	source := j.Source
	next := *j
	_, err = s.store.Update(j.AccountID, func(tx *graph.Txn) error {
		for _, st := range chunk {
			in, err := graph.ParseObject(kind, st.raw)
			if err != nil {
				return fmt.Errorf("staged object %s: %w", st.oid, err)
			}
			in.Scope, in.Source = j.Scope, source
			addIntegrationProps(&in, j)
			if _, _, err := tx.Upsert(&in); err != nil {
				return fmt.Errorf("apply %s %s: %w", kind, quote(in.Key), err)
			}
		}
		next.add(tx.Counts())
		next.Progress = phaseOf(kind) + ":" + chunk[len(chunk)-1].oid
		return next.setInTxn(tx)
	})
	if err != nil {
		if bad := badData(err); bad != nil {
			// The checks ran before anything was applied; an end can still
			// vanish, or a key be taken, if another writer changed the graph
			// meanwhile. Retrying cannot help: the job ends here.
			j.Status, j.Error, j.EndTimestamp = StatusErrorBadData, bad, s.now().UnixMilli()
			return true, s.finish(j)
		}
		return false, err
	}
	*j = next
	return !more, nil
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

// deleteChunk deletes up to one chunk of live objects of the job's scope
// that the job did not upload (DIFF), skipping types in partialDatasets,
// scanning on from the object id `after`. It reports true when the scan
// reached the end.
func (s *Service) deleteChunk(j *Job, phase string, kind graph.Kind, after string) (bool, error) {
	var doomed []string
	last := after
	errFull := errors.New("chunk full")
	err := s.store.ScanScope(j.AccountID, j.Scope, kind, after, func(oid, typ string) error {
		last = oid
		if j.PartialDatasets != nil && slices.Contains(j.PartialDatasets.Types, typ) {
			return nil
		}
		_, closer, err := s.db.Get(stageKey(j.ID, kind, oid))
		if err == nil {
			closer.Close()
			return nil
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			return err
		}
		doomed = append(doomed, oid)
		if len(doomed) == finalizeChunk {
			return errFull
		}
		return nil
	})
	full := errors.Is(err, errFull)
	if err != nil && !full {
		return false, fmt.Errorf("find objects to delete: %w", err)
	}
	if len(doomed) == 0 {
		return true, nil
	}
	next := *j
	_, err = s.store.Update(j.AccountID, func(tx *graph.Txn) error {
		for _, oid := range doomed {
			if _, err := tx.Delete(oid); err != nil {
				return err
			}
		}
		next.add(tx.Counts())
		next.Progress = phase + ":" + last
		return next.setInTxn(tx)
	})
	if err != nil {
		return false, fmt.Errorf("delete objects missing from job: %w", err)
	}
	*j = next
	return !full, nil
}

// checkRelationships verifies, before anything is applied, that every
// staged relationship's ends will exist: as an entity staged by this job,
// or as a live entity of the graph that this job will not delete; and that
// its _key is not an entity's of the scope.
func (s *Service) checkRelationships(j *Job) *Error {
	p := stageKindPrefix(j.ID, graph.KindRelationship)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: graph.PrefixEnd(p)})
	if err != nil {
		return errorf(http.StatusInternalServerError, "INTERNAL", "could not read the staged relationships")
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		in, err := graph.ParseObject(graph.KindRelationship, it.Value())
		if err != nil {
			return errorf(http.StatusBadRequest, "INVALID_GRAPH_OBJECT", "%v", err)
		}
		// A _key names one object per scope: an entity (even a deleted one)
		// of the scope with this key cannot become a relationship.
		if o, _, err := s.store.Get(j.AccountID, graph.ObjectID(j.AccountID, j.Scope, in.Key)); err == nil && o.Kind != graph.KindRelationship {
			return errorf(http.StatusBadRequest, "KEY_CONFLICT",
				"relationship _key %s: the graph holds an entity with this _key in scope %s; give the relationship another _key",
				quote(in.Key), quote(j.Scope))
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
			if s.endWillExist(j, oid) {
				continue
			}
			return errorf(http.StatusBadRequest, "RELATIONSHIP_ENDPOINT_NOT_FOUND",
				"relationship _key %s: %s %s names no entity uploaded to this job or kept in the graph; upload that entity in this job or fix the reference",
				quote(in.Key), field, quote(value))
		}
	}
	return nil
}

func (s *Service) endWillExist(j *Job, oid string) bool {
	if _, closer, err := s.db.Get(stageKey(j.ID, graph.KindEntity, oid)); err == nil {
		closer.Close()
		return true
	}
	o, _, err := s.store.Get(j.AccountID, oid)
	if err != nil || o.Deleted || o.Kind != graph.KindEntity {
		return false
	}
	// A DIFF job deletes the entities of its scope it did not upload.
	if j.SyncMode == ModeDiff && o.Scope == j.Scope && (j.PartialDatasets == nil || !slices.Contains(j.PartialDatasets.Types, o.Type)) {
		return false
	}
	return true
}
