package pebblestore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/graph"
)

// Get returns the stored object with id and its JSON state as stored
// (metadata included); deleted objects are returned too.
func (s *Store) Get(account, id string) (graph.Object, []byte, error) {
	v, closer, err := s.db.Get(objectKey(account, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return graph.Object{}, nil, graph.ErrNotFound
	}
	if err != nil {
		return graph.Object{}, nil, fmt.Errorf("read object %s: %w", id, err)
	}
	defer closer.Close()
	raw := append([]byte(nil), v[16:]...)
	o, err := graph.DecodeObject(raw)
	return o, raw, err
}

// List returns up to limit live objects of a kind in an account, optionally
// of one type, in a stable order, as stored JSON. Pass the returned cursor
// to continue; it is empty after the last page.
func (s *Store) List(account string, kind graph.Kind, typ, cursor string, limit int) ([][]byte, string, error) {
	return s.ListBytes(account, kind, typ, cursor, limit, math.MaxInt)
}

// ListBytes is List whose page also stops before its objects' bytes would
// pass maxBytes; a page holds one object at least, whatever its size.
func (s *Store) ListBytes(account string, kind graph.Kind, typ, cursor string, limit, maxBytes int) ([][]byte, string, error) {
	var prefix []byte
	if typ != "" {
		prefix = keyOf(famType, account, string(kind)+typ, "")
	} else {
		prefix = keyOf(famType, account, string(kind))
	}
	lower := prefix
	if cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(c) == 0 {
			return nil, "", graph.ErrBadCursor
		}
		lower = append(append(append([]byte(nil), prefix...), c...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: PrefixEnd(prefix)})
	if err != nil {
		return nil, "", fmt.Errorf("list objects: %w", err)
	}
	defer it.Close()
	var out [][]byte
	var last []byte
	size := 0
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		_, raw, err := s.Get(account, string(k[len(k)-idLen(k):]))
		if err != nil {
			return nil, "", err
		}
		if len(out) > 0 && size+len(raw) > maxBytes {
			break
		}
		out = append(out, raw)
		size += len(raw)
		last = append(last[:0], k[len(prefix):]...)
	}
	var next string
	if it.Valid() {
		next = base64.RawURLEncoding.EncodeToString(last)
	}
	return out, next, it.Error()
}

// idLen returns the length of the id at the end of an index key: the part
// after the last NUL.
func idLen(k []byte) int {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == 0 {
			return len(k) - i - 1
		}
	}
	return len(k)
}

// ScanScope calls fn for every live object of a kind in a scope whose id
// sorts after the given one (all when empty), in id order, with its id and
// type, reading a consistent snapshot. Writes made meanwhile are not seen.
// An error from fn stops the scan and is returned.
func (s *Store) ScanScope(account, scope string, kind graph.Kind, after string, fn func(id, typ string) error) error {
	p := keyOf(famScope, account, scope, string(kind))
	lower := p
	if after != "" {
		lower = append(append(append([]byte(nil), p...), after...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: PrefixEnd(p)})
	if err != nil {
		return fmt.Errorf("scan scope %s: %w", scope, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(string(it.Key()[len(p):]), string(it.Value())); err != nil {
			return err
		}
	}
	return it.Error()
}
