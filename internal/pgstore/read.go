package pgstore

import (
	"encoding/base64"
	"errors"
	"fmt"
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
	rows, err := s.pool.Query(ctx, `SELECT type, id, state FROM objects
		WHERE account = $1 AND kind = $2 AND NOT deleted AND ($3 = '' OR type = $3) AND (type, id) > ($4, $5)
		ORDER BY type, id LIMIT $6`, account, string(kind), typ, afterType, afterID, limit+1)
	if err != nil {
		return nil, "", s.wrap("list objects", err)
	}
	defer rows.Close()
	var out [][]byte
	var lastType, lastID string
	more := false
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		var t, id string
		var raw []byte
		if err := rows.Scan(&t, &id, &raw); err != nil {
			return nil, "", s.wrap("list objects", err)
		}
		out = append(out, raw)
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
