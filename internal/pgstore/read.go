package pgstore

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/graph"
)

// Get returns the stored object with id and its JSON state as stored;
// deleted objects are returned too.
func (s *Store) Get(account, id string) (graph.Object, []byte, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, "SELECT state FROM objects WHERE account = $1 AND id = $2", account, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return graph.Object{}, nil, graph.ErrNotFound
	}
	if err != nil {
		return graph.Object{}, nil, s.wrap("read object "+id, err)
	}
	o, err := graph.DecodeObject(raw)
	return o, raw, err
}

// List returns up to limit live objects of a kind in an account, optionally
// of one type, ordered by type and id, as stored JSON. The cursor is the
// type and id of the last object returned.
func (s *Store) List(account string, kind graph.Kind, typ, cursor string, limit int) ([][]byte, string, error) {
	afterType, afterID, err := listCursor(cursor, typ)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT type, id, state FROM objects
		WHERE account = $1 AND kind = $2 AND NOT deleted AND ($3 = '' OR type = $3) AND (type, id) > ($4, $5)
		ORDER BY type, id LIMIT $6`, account, string(kind), typ, afterType, afterID, limit+1)
	if err != nil {
		return nil, "", s.wrap("list objects", err)
	}
	return s.listPage(rows, limit, math.MaxInt)
}

// ListBytes is List whose page also stops before its objects' bytes would
// pass maxBytes; a page holds one object at least, whatever its size.
// The database sends the objects within the budget and the one after
// (which tells whether there are more), not the whole page of limit.
func (s *Store) ListBytes(account string, kind graph.Kind, typ, cursor string, limit, maxBytes int) ([][]byte, string, error) {
	afterType, afterID, err := listCursor(cursor, typ)
	if err != nil {
		return nil, "", err
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
	return s.listPage(rows, limit, maxBytes)
}

// listCursor reads the (type, id) a list page continues after.
func listCursor(cursor, typ string) (afterType, afterID string, err error) {
	if cursor == "" {
		return "", "", nil
	}
	c, err := base64.RawURLEncoding.DecodeString(cursor)
	t, id, ok := strings.Cut(string(c), "\x00")
	if err != nil || !ok || id == "" || (typ != "" && t != typ) {
		return "", "", graph.ErrBadCursor
	}
	return t, id, nil
}

// listPage reads a page of (type, id, state) rows: up to limit objects
// whose bytes stay within maxBytes (one at least), and the cursor after
// them when a row was left.
func (s *Store) listPage(rows pgx.Rows, limit, maxBytes int) ([][]byte, string, error) {
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

// scopePage is how many objects ScanScope reads per statement.
const scopePage = 4096

// ScanScope calls fn for every live object of a kind in a scope whose id
// sorts after the given one, in id order, with its id and type, reading
// one snapshot (a repeatable-read transaction read a page at a time, fn
// called between pages).
func (s *Store) ScanScope(account, scope string, kind graph.Kind, after string, fn func(id, typ string) error) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.wrap("scan scope "+scope, err)
	}
	defer tx.Rollback(ctx)
	type row struct{ id, typ string }
	page := make([]row, 0, scopePage)
	for {
		page = page[:0]
		rows, err := tx.Query(ctx, `SELECT id, type FROM objects
			WHERE account = $1 AND scope = $2 AND kind = $3 AND NOT deleted AND id > $4
			ORDER BY id LIMIT $5`, account, scope, string(kind), after, scopePage)
		if err != nil {
			return s.wrap(fmt.Sprintf("scan scope %s", scope), err)
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.typ); err != nil {
				rows.Close()
				return s.wrap("scan scope "+scope, err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.wrap("scan scope "+scope, err)
		}
		for _, r := range page {
			if err := fn(r.id, r.typ); err != nil {
				return err
			}
		}
		if len(page) < scopePage {
			return nil
		}
		after = page[len(page)-1].id
	}
}
