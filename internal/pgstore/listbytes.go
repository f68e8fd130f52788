package pgstore

import (
	"encoding/base64"
	"strings"

	"github.com/j1ds/j1ds/internal/graph"
)

// ListBytes is List whose page also stops before its objects' bytes would
// pass maxBytes; a page holds one object at least, whatever its size.
// The database sends the objects within the budget and the one after
// (which tells whether there are more), not the whole page of limit.
func (s *Store) ListBytes(account string, kind graph.Kind, typ, cursor string, limit, maxBytes int) ([][]byte, string, error) {
	afterType, afterID := "", ""
	if cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(cursor)
		t, id, ok := strings.Cut(string(c), "\x00")
		if err != nil || !ok || id == "" || (typ != "" && t != typ) {
			return nil, "", graph.ErrBadCursor
		}
		afterType, afterID = t, id
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT type, id, state FROM (
			SELECT type, id, state, row_number() OVER w AS n, sum(octet_length(state)) OVER w AS total
			FROM objects
			WHERE account = $1 AND kind = $2 AND NOT deleted AND ($3 = '' OR type = $3) AND (type, id) > ($4, $5)
			WINDOW w AS (ORDER BY type, id)
			ORDER BY type, id LIMIT $6
		) page WHERE n <= 2 OR total - octet_length(state) <= $7
		ORDER BY type, id`, account, string(kind), typ, afterType, afterID, limit+1, maxBytes)
	if err != nil {
		return nil, "", s.wrap("list objects", err)
	}
	defer rows.Close()
	var out [][]byte
	var lastType, lastID string
	size, more := 0, false
	for rows.Next() {
		var t, id string
		var raw []byte
		if err := rows.Scan(&t, &id, &raw); err != nil {
			return nil, "", s.wrap("list objects", err)
		}
		if len(out) == limit || (len(out) > 0 && size+len(raw) > maxBytes) {
			more = true
			break
		}
		out = append(out, raw)
		size += len(raw)
		lastType, lastID = t, id
	}
	if err := rows.Err(); err != nil {
		return nil, "", s.wrap("list objects", err)
	}
	var next string
	if more {
		next = base64.RawURLEncoding.EncodeToString([]byte(lastType + "\x00" + lastID))
	}
	return out, next, nil
}
