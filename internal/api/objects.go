package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/j1ds/j1ds/internal/graph"
)

// defaultScope is the scope of objects created through the REST API
// without a _scope.
const defaultScope = "api"

// immutable lists the fields an update may repeat but not change.
var immutable = []string{"_key", "_type", "_class", "_scope", "_fromEntityId", "_toEntityId", "_fromEntityKey", "_toEntityKey"}

func (s *Server) readRaw(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var raw json.RawMessage
	if !s.decodeJSON(w, r, &raw, false) {
		return nil, false
	}
	return raw, true
}

func (s *Server) createObject(k graph.Kind) accountHandler {
	return func(w http.ResponseWriter, r *http.Request, p principal) {
		raw, ok := s.readRaw(w, r)
		if !ok {
			return
		}
		in, err := graph.ParseObject(k, raw)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		var meta struct {
			Scope *string `json:"_scope"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", "_scope: must be a string")
			return
		}
		in.Scope, in.Source = defaultScope, "api"
		if meta.Scope != nil {
			in.Scope = *meta.Scope
		}
		var obj graph.Object
		_, err = s.cfg.Graph.Update(p.account.ID, func(tx graph.Txn) error {
			id := graph.ObjectID(p.account.ID, in.Scope, in.Key)
			if old, err := tx.Get(id); err == nil && !old.Deleted {
				return errExists{id: id, kind: old.Kind}
			}
			var err error
			_, obj, err = tx.Upsert(&in)
			return err
		})
		var ex errExists
		if errors.As(err, &ex) {
			writeError(w, http.StatusConflict, "ALREADY_EXISTS", fmt.Sprintf("%s _key %s already exists in scope %s (id %s); change it with PATCH .../%s/%s", ex.kind, strconv.Quote(in.Key), strconv.Quote(in.Scope), ex.id, plural(ex.kind), ex.id))
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeRaw(w, http.StatusCreated, obj.AppendJSON(nil))
	}
}

type errExists struct {
	id   string
	kind graph.Kind
}

func (e errExists) Error() string { return "exists" }

func notFound(w http.ResponseWriter, k graph.Kind, id string) {
	writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no %s with id %s in this account", k, strconv.Quote(truncate(id, 80))))
}

func (s *Server) getObject(k graph.Kind) accountHandler {
	return func(w http.ResponseWriter, r *http.Request, p principal) {
		id := r.PathValue("id")
		o, raw, err := s.cfg.Graph.Get(p.account.ID, id)
		if errors.Is(err, graph.ErrNotFound) || (err == nil && o.Kind != k) {
			notFound(w, k, id)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeRaw(w, http.StatusOK, raw)
	}
}

func (s *Server) patchObject(k graph.Kind) accountHandler {
	return func(w http.ResponseWriter, r *http.Request, p principal) {
		id := r.PathValue("id")
		raw, ok := s.readRaw(w, r)
		if !ok {
			return
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", "the body must be a JSON object of the properties to change")
			return
		}
		var obj graph.Object
		var changed bool
		_, err := s.cfg.Graph.Update(p.account.ID, func(tx graph.Txn) error {
			old, err := tx.Get(id)
			if err != nil {
				// ErrNotFound, or the database's error: a 404 only for
				// an object that is not there.
				return err
			}
			if old.Kind != k || old.Deleted {
				return graph.ErrNotFound
			}
			if err := checkImmutable(&old, fields); err != nil {
				return err
			}
			if err := graph.CheckMembers(raw); err != nil {
				return err
			}
			// Rebuild a full object: the stored key, type, class and ends,
			// and the body's properties, so the body is validated like an
			// upload.
			full := make(map[string]any, len(fields)+4)
			for name, v := range fields {
				full[name] = v
			}
			full["_key"], full["_type"], full["_class"] = old.Key, old.Type, old.Class
			if k == graph.KindRelationship {
				full["_class"] = old.Class[0]
				full["_fromEntityId"], full["_toEntityId"] = old.FromID, old.ToID
			}
			b, err := json.Marshal(full)
			if err != nil {
				return err
			}
			patch, err := graph.ParseObject(k, b)
			if err != nil {
				return err
			}
			in := patch
			in.Scope, in.Source = old.Scope, old.Source
			in.Props = graph.MergeProps(old.Props, rawPatch(patch.Props, fields))
			var op graph.Op
			op, obj, err = tx.Upsert(&in)
			changed = op != 0
			return err
		})
		if errors.Is(err, graph.ErrNotFound) {
			notFound(w, k, id)
			return
		}
		var ie *immutableError
		if errors.As(err, &ie) {
			writeError(w, http.StatusUnprocessableEntity, "IMMUTABLE_FIELD", ie.Error())
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !changed {
			w.Header().Set("J1ds-Unchanged", "true")
		}
		writeRaw(w, http.StatusOK, obj.AppendJSON(nil))
	}
}

// rawPatch keeps the explicit nulls of the body, which ParseObject keeps as
// the value null, so MergeProps removes those properties.
func rawPatch(props []graph.Prop, fields map[string]json.RawMessage) []graph.Prop {
	out := props[:0:0]
	for _, p := range props {
		if _, ok := fields[p.Name]; ok {
			out = append(out, p)
		}
	}
	return out
}

type immutableError struct{ field, old, new string }

func (e *immutableError) Error() string {
	return fmt.Sprintf("%s cannot change on update (stored %s, given %s); delete the object and create a new one instead", e.field, e.old, e.new)
}

func checkImmutable(o *graph.Object, fields map[string]json.RawMessage) error {
	stored := map[string]any{
		"_key": o.Key, "_type": o.Type, "_scope": o.Scope,
		"_fromEntityId": o.FromID, "_toEntityId": o.ToID, "_fromEntityKey": o.FromKey, "_toEntityKey": o.ToKey,
	}
	for _, name := range immutable {
		v, ok := fields[name]
		if !ok {
			continue
		}
		if name == "_class" {
			var one string
			var many []string
			if json.Unmarshal(v, &one) == nil {
				many = []string{one}
			} else if json.Unmarshal(v, &many) != nil {
				return &immutableError{"_class", fmt.Sprint(o.Class), truncate(string(v), 80)}
			}
			if !slices.Equal(many, o.Class) {
				return &immutableError{"_class", fmt.Sprint(o.Class), fmt.Sprint(many)}
			}
			continue
		}
		var given string
		want := stored[name].(string)
		if json.Unmarshal(v, &given) != nil || given != want {
			return &immutableError{name, strconv.Quote(want), truncate(string(v), 80)}
		}
	}
	return nil
}

func (s *Server) deleteObject(k graph.Kind) accountHandler {
	return func(w http.ResponseWriter, r *http.Request, p principal) {
		id := r.PathValue("id")
		var err error
		if k == graph.KindEntity {
			// Its relationships first, in transactions of at most
			// graph.MaxCascade each, then the entity.
			var c graph.Counts
			c, err = graph.DeleteEntity(graph.UpdaterOf(s.cfg.Graph, p.account.ID), id)
			if err != nil && c.RelationshipsDeleted > 0 {
				err = &partialDeleteError{relationships: c.RelationshipsDeleted, err: err}
			}
		} else {
			_, err = s.cfg.Graph.Update(p.account.ID, func(tx graph.Txn) error {
				old, err := tx.Get(id)
				if err != nil {
					return err
				}
				if old.Kind != k || old.Deleted {
					return graph.ErrNotFound
				}
				_, err = tx.Delete(id)
				return err
			})
		}
		if errors.Is(err, graph.ErrNotFound) {
			notFound(w, k, id)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		_, raw, err := s.cfg.Graph.Get(p.account.ID, id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeRaw(w, http.StatusOK, raw)
	}
}

// partialDeleteError is an entity's delete that failed after some of its
// transactions committed: those relationships are deleted, the entity is
// still live, and sending the DELETE again finishes it.
type partialDeleteError struct {
	relationships int
	err           error
}

func (e *partialDeleteError) Error() string {
	return fmt.Sprintf("delete stopped after %d of the entity's relationships: %v", e.relationships, e.err)
}

func (e *partialDeleteError) Unwrap() error { return e.err }

// written says what a write that failed with err left behind, for the
// message of an error that would otherwise say nothing was written.
func written(err error) string {
	if pd, ok := errors.AsType[*partialDeleteError](err); ok {
		return fmt.Sprintf("%d of the entity's relationships were deleted before it stopped and the entity is still there: send the DELETE again once there is room to finish it", pd.relationships)
	}
	return "nothing was written, try again later"
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func (s *Server) listObjects(k graph.Kind) accountHandler {
	return func(w http.ResponseWriter, r *http.Request, p principal) {
		q := r.URL.Query()
		limit := defaultPageSize
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxPageSize {
				writeError(w, http.StatusBadRequest, "INVALID_LIMIT", fmt.Sprintf("limit %s must be a whole number from 1 to %d", strconv.Quote(truncate(v, 20)), maxPageSize))
				return
			}
			limit = n
		}
		typ := q.Get("type")
		if len(typ) > graph.MaxTypeLen {
			writeError(w, http.StatusBadRequest, "INVALID_TYPE", fmt.Sprintf("type is longer than %d bytes", graph.MaxTypeLen))
			return
		}
		s.writeObjectPage(w, r, p.account.ID, k, typ, q.Get("cursor"), limit)
	}
}
