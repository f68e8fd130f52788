package graph

import "fmt"

// The rules of Txn.Upsert and Txn.Delete that every backend shares; a
// backend supplies the reads (of the stored object and of relationship
// ends) and the writes.

// NewObject validates an upload to account and returns the object it
// writes: its id from the scope and key, its relationship ends resolved
// by end. end receives the id to read and returns the object stored
// under it, and whether there is one.
func NewObject(account string, in *Input, end func(id string) (*Object, bool, error)) (Object, error) {
	if err := in.Validate(); err != nil {
		return Object{}, err
	}
	if in.Scope == "" {
		return Object{}, inputErr("_scope", "is required")
	}
	if in.Source == "" {
		return Object{}, inputErr("_source", "is required")
	}
	o := Object{
		Kind: in.Kind, Key: in.Key, Type: in.Type, Class: in.Class, Scope: in.Scope,
		Source: in.Source, AccountID: account, Props: in.Props,
		ID: ObjectID(account, in.Scope, in.Key),
	}
	if in.Kind != KindRelationship {
		return o, nil
	}
	fromScope, toScope := in.FromScope, in.ToScope
	if fromScope == "" {
		fromScope = in.Scope
	}
	if toScope == "" {
		toScope = in.Scope
	}
	var err error
	if o.FromID, o.FromKey, err = resolveEnd(account, end, "_fromEntityId", in.FromID, "_fromEntityKey", in.FromKey, fromScope); err != nil {
		return Object{}, err
	}
	if o.ToID, o.ToKey, err = resolveEnd(account, end, "_toEntityId", in.ToID, "_toEntityKey", in.ToKey, toScope); err != nil {
		return Object{}, err
	}
	return o, nil
}

// resolveEnd finds the live entity a relationship end names, by id or by
// key within a scope.
func resolveEnd(account string, end func(string) (*Object, bool, error), idField, id, keyField, key, scope string) (string, string, error) {
	field, value := idField, id
	if id == "" {
		field, value = keyField, key
		id = ObjectID(account, scope, key)
	}
	e, ok, err := end(id)
	if err != nil {
		return "", "", err
	}
	if !ok || e.Deleted || e.Kind != KindEntity {
		return "", "", &EndpointError{Field: field, Value: value}
	}
	return e.ID, e.Key, nil
}

// Versioned decides how the object o, with content hash hash, is written
// at ms over what is stored (old with oldHash; found false when there is
// nothing): it sets o's version and times and returns the operation, 0
// when the upload matches the live object (nothing to write), or
// ErrKindConflict.
func Versioned(o *Object, hash [16]byte, old *Object, oldHash [16]byte, found bool, ms int64) (Op, error) {
	o.Version, o.CreatedOn, o.BeginOn = 1, ms, ms
	if !found {
		return OpCreate, nil
	}
	if old.Kind != o.Kind {
		return 0, fmt.Errorf("%w: %s %s exists as %s %s in scope %s", ErrKindConflict, "_key", quote(o.Key), "a", old.Kind, quote(o.Scope))
	}
	if !old.Deleted && oldHash == hash {
		return 0, nil
	}
	o.Version = old.Version + 1
	if old.Deleted {
		return OpCreate, nil
	}
	o.CreatedOn = old.CreatedOn
	return OpUpdate, nil
}

// Deleted returns the soft-deleted state of o at ms.
func Deleted(o Object, ms int64) Object {
	o.Deleted, o.EndOn, o.Version = true, ms, o.Version+1
	return o
}

// TooLarge returns the error for an object whose encoded state is n bytes,
// nil when it is within MaxObjectBytes.
func TooLarge(o *Object, n int) error {
	if n <= MaxObjectBytes {
		return nil
	}
	return inputErr("", "object %s is %d bytes encoded, more than the limit of %d", o.Key, n, MaxObjectBytes)
}

// Adjacency records, per entity id, the relationship ids a transaction
// attached (true) or detached (false), so a cascading delete sees the
// transaction's own changes beside what is stored.
type Adjacency map[string]map[string]bool

// Attach records that relationship o (of any kind: entities are ignored)
// is attached to its ends, or detached when attached is false.
func (a *Adjacency) Attach(o *Object, attached bool) {
	if o.Kind != KindRelationship {
		return
	}
	a.set(o.FromID, o.ID, attached)
	a.set(o.ToID, o.ID, attached)
}

func (a *Adjacency) set(entity, rel string, attached bool) {
	if *a == nil {
		*a = make(Adjacency)
	}
	m := (*a)[entity]
	if m == nil {
		m = make(map[string]bool)
		(*a)[entity] = m
	}
	m[rel] = attached
}

// Removed reports whether the transaction detached rel from entity.
func (a Adjacency) Removed(entity, rel string) bool {
	attached, ok := a[entity][rel]
	return ok && !attached
}

// Added returns the relationships the transaction attached to entity.
func (a Adjacency) Added(entity string) []string {
	var out []string
	for rel, attached := range a[entity] {
		if attached {
			out = append(out, rel)
		}
	}
	return out
}

// Detached returns how many relationships the transaction detached from
// entity: a backend that reads the stored ones without the transaction's
// changes reads that many more to find live ones.
func (a Adjacency) Detached(entity string) int {
	n := 0
	for _, attached := range a[entity] {
		if !attached {
			n++
		}
	}
	return n
}
