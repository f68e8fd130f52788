package pebblestore

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/graph"
)

// txn is one atomic transaction on one account's graph. Reads see the
// transaction's own writes. It is valid only inside the function given to
// Update.
type txn struct {
	s       *Store
	account string
	batch   *pebble.Batch
	micros  int64
	ms      int64
	changes int    // changes logged
	body    []byte // the log entry's changes but their records (see appendChangeMeta)
	lines   []byte // the log entry's record lines
	counts  graph.Counts
	extra   bool
	buf     []byte // scratch: an object's stored value, its content hash input
	kbuf    []byte // scratch: a key (see key)
	// pending holds the objects written by the transaction (stored value),
	// so reads of them need not search the batch.
	pending map[string][]byte
	// adjacent holds the transaction's changes to the relationships
	// attached to entities.
	adjacent graph.Adjacency
	// iter reads stored objects for the whole transaction (opened on the
	// first read). Unlike DB.Get it consults the bloom filters of the
	// bottom level too, where most of a settled store lives: the existence
	// check of a create then reads no data block.
	iter *pebble.Iterator
}

// Account returns the account the transaction writes.
func (tx *txn) Account() string { return tx.account }

// CommitTime returns the transaction's commit time.
func (tx *txn) CommitTime() time.Time { return time.UnixMicro(tx.micros) }

// Counts returns the tally of the transaction's changes so far.
func (tx *txn) Counts() graph.Counts { return tx.counts }

// Changes returns how many object changes the transaction holds so far.
func (tx *txn) Changes() int { return tx.changes }

// Set writes an extra key in the same atomic batch. It is for other
// packages' key families (a sync job's progress, say); it must never touch
// the graph's own families.
func (tx *txn) Set(key, value []byte) error {
	if isGraphFamily(key) {
		return fmt.Errorf("txn set: key family %q belongs to the graph", key[0])
	}
	tx.extra = true
	return tx.batch.Set(key, value, nil)
}

// DeleteKey removes an extra key in the same atomic batch; see Set.
func (tx *txn) DeleteKey(key []byte) error {
	if isGraphFamily(key) {
		return fmt.Errorf("txn delete: key family %q belongs to the graph", key[0])
	}
	tx.extra = true
	return tx.batch.Delete(key, nil)
}

func isGraphFamily(key []byte) bool {
	if len(key) == 0 {
		return true
	}
	switch key[0] {
	case famObject, famType, famScope, famAdjacent, famLog, famGlobal, famTrunc, famMeta:
		return true
	}
	return false
}

type stored struct {
	obj  graph.Object
	hash [16]byte
}

func (tx *txn) load(id string) (stored, bool, error) {
	v, ok := tx.pending[id]
	if !ok {
		if tx.iter == nil {
			it, err := tx.s.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
			if err != nil {
				return stored{}, false, fmt.Errorf("read object %s: %w", id, err)
			}
			tx.iter = it
		}
		k := objectKey(tx.account, id)
		if !tx.iter.SeekPrefixGE(k) || !bytes.Equal(tx.iter.Key(), k) {
			if err := tx.iter.Error(); err != nil {
				return stored{}, false, fmt.Errorf("read object %s: %w", id, err)
			}
			return stored{}, false, nil
		}
		raw, err := tx.iter.ValueAndErr()
		if err != nil {
			return stored{}, false, fmt.Errorf("read object %s: %w", id, err)
		}
		// The decoded object refers to its bytes (property values), which
		// Pebble reuses once the iterator moves: copy them.
		v = append([]byte(nil), raw...)
	}
	var st stored
	copy(st.hash[:], v[:16])
	obj, err := graph.DecodeObject(v[16:])
	st.obj = obj
	return st, err == nil, err
}

// Get returns an object as the transaction sees it, deleted objects too.
func (tx *txn) Get(id string) (graph.Object, error) {
	st, ok, err := tx.load(id)
	if err != nil {
		return graph.Object{}, err
	}
	if !ok {
		return graph.Object{}, graph.ErrNotFound
	}
	return st.obj, nil
}

// end returns the object stored under id, for graph.NewObject to resolve
// a relationship's end.
func (tx *txn) end(id string) (*graph.Object, bool, error) {
	st, ok, err := tx.load(id)
	return &st.obj, ok, err
}

// Upsert creates the object, or updates it when its content differs, or
// does nothing when the upload matches what is stored (op 0). The object's
// id comes from its scope and key. A deleted object is created again with
// the next version.
func (tx *txn) Upsert(in *graph.Input) (graph.Op, graph.Object, error) {
	o, err := graph.NewObject(tx.account, in, tx.end)
	if err != nil {
		return 0, graph.Object{}, err
	}
	var hash [16]byte
	hash, tx.buf = graph.ContentHash(tx.buf, &o)
	old, found, err := tx.load(o.ID)
	if err != nil {
		return 0, graph.Object{}, err
	}
	op, err := graph.Versioned(&o, hash, &old.obj, old.hash, found, tx.ms)
	if err != nil {
		return 0, graph.Object{}, err
	}
	if op == 0 {
		return 0, old.obj, nil
	}
	if op == graph.OpUpdate {
		if err := tx.unindex(&old.obj); err != nil {
			return 0, graph.Object{}, err
		}
	}
	if err := tx.put(op, &o, hash); err != nil {
		return 0, graph.Object{}, err
	}
	if err := tx.index(&o); err != nil {
		return 0, graph.Object{}, err
	}
	return op, o, nil
}

// Delete soft-deletes the object with id: it keeps its properties, gains
// _deleted and _endOn and the next version. Deleting an entity deletes its
// live relationships in the same transaction, first; an entity with more
// than graph.MaxCascade is refused with a *graph.CascadeError, nothing
// written. It reports false when there is no live object with that id.
func (tx *txn) Delete(id string) (bool, error) {
	st, ok, err := tx.load(id)
	if err != nil || !ok || st.obj.Deleted {
		return false, err
	}
	o := st.obj
	if o.Kind == graph.KindEntity {
		rels, err := tx.attached(o.ID, "", graph.MaxCascade+1)
		if err != nil {
			return false, err
		}
		if len(rels) > graph.MaxCascade {
			return false, &graph.CascadeError{ID: o.ID, Limit: graph.MaxCascade}
		}
		for _, r := range rels {
			if _, err := tx.Delete(r); err != nil {
				return false, err
			}
		}
	}
	if err := tx.unindex(&o); err != nil {
		return false, err
	}
	o = graph.Deleted(o, tx.ms)
	return true, tx.put(graph.OpDelete, &o, st.hash)
}

func (tx *txn) put(op graph.Op, o *graph.Object, hash [16]byte) error {
	b := append(tx.buf[:0], hash[:]...)
	b = o.AppendJSON(b)
	if err := graph.TooLarge(o, len(b)-16); err != nil {
		return err
	}
	if err := tx.batch.Set(tx.key(appendObjectKey(tx.kbuf[:0], tx.account, o.ID)), b, nil); err != nil {
		return fmt.Errorf("write object %s: %w", o.ID, err)
	}
	if tx.pending == nil {
		tx.pending = make(map[string][]byte)
	}
	tx.pending[o.ID] = append([]byte(nil), b...)
	tx.buf = b
	if tx.body == nil {
		tx.body, tx.lines = getBody(), getBody()
	}
	start := len(tx.lines)
	tx.lines = graph.AppendRecord(tx.lines, op, o, b[16:])
	tx.body = appendChangeMeta(tx.body, op, o.Kind, o.ID, len(tx.lines)-start)
	tx.lines = append(tx.lines, '\n')
	tx.changes++
	tx.counts.Note(o.Kind, op)
	return nil
}

// bodies recycles the buffers transactions encode their log entries in;
// buffers above maxPooledBody are left to the collector.
var bodies sync.Pool

const maxPooledBody = 4 << 20

func getBody() []byte {
	if b, ok := bodies.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 64<<10)
}

func (tx *txn) releaseBody() {
	for _, b := range [][]byte{tx.body, tx.lines} {
		if b != nil && cap(b) <= maxPooledBody {
			bodies.Put(&b)
		}
	}
	tx.body, tx.lines = nil, nil
}

// key keeps the grown scratch buffer of a key built in it and returns
// the key.
func (tx *txn) key(k []byte) []byte {
	tx.kbuf = k
	return k
}

func (tx *txn) index(o *graph.Object) error {
	b := tx.batch
	if err := b.Set(tx.key(appendTypeKey(tx.kbuf[:0], tx.account, o.Kind, o.Type, o.ID)), nil, nil); err != nil {
		return err
	}
	if err := b.Set(tx.key(appendScopeKey(tx.kbuf[:0], tx.account, o.Scope, o.Kind, o.ID)), []byte(o.Type), nil); err != nil {
		return err
	}
	if o.Kind == graph.KindRelationship {
		if err := b.Set(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.FromID, o.ID)), nil, nil); err != nil {
			return err
		}
		if err := b.Set(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.ToID, o.ID)), nil, nil); err != nil {
			return err
		}
		tx.adjacent.Attach(o, true)
	}
	return nil
}

func (tx *txn) unindex(o *graph.Object) error {
	b := tx.batch
	if err := b.Delete(tx.key(appendTypeKey(tx.kbuf[:0], tx.account, o.Kind, o.Type, o.ID)), nil); err != nil {
		return err
	}
	if err := b.Delete(tx.key(appendScopeKey(tx.kbuf[:0], tx.account, o.Scope, o.Kind, o.ID)), nil); err != nil {
		return err
	}
	if o.Kind == graph.KindRelationship {
		if err := b.Delete(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.FromID, o.ID)), nil); err != nil {
			return err
		}
		if err := b.Delete(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.ToID, o.ID)), nil); err != nil {
			return err
		}
		tx.adjacent.Attach(o, false)
	}
	return nil
}
