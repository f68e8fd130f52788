package pgstore

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// OperatorKeyHash returns the hash of the operator key the database keeps
// (table operator_key), storing hash as that key's when it keeps none yet;
// created reports whether this call stored it. Of several processes that
// start at once on an empty table, exactly one stores its hash and the
// others get that one. The key itself is never stored; hash is what the
// caller derived from it (j1ds serve: its SHA-256).
func (s *Store) OperatorKeyHash(hash []byte) (stored []byte, created bool, err error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	// A concurrent insert of the row makes this one wait for it to commit,
	// then do nothing: the select below sees the row it committed.
	err = s.pool.QueryRow(ctx, "INSERT INTO operator_key (hash) VALUES ($1) ON CONFLICT DO NOTHING RETURNING hash", hash).Scan(&stored)
	if err == nil {
		return stored, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, false, s.wrap("store the operator key's hash", err)
	}
	if err := s.pool.QueryRow(ctx, "SELECT hash FROM operator_key").Scan(&stored); err != nil {
		return nil, false, s.wrap("read the operator key's hash", err)
	}
	if len(stored) == 0 {
		return nil, false, fmt.Errorf("read the operator key's hash: it is empty")
	}
	return stored, false, nil
}
