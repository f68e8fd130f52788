package pebblestore

import (
	"encoding/base64"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/graph"
)

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
