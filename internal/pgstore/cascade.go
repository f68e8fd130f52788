package pgstore

import (
	"fmt"
	"slices"

	"github.com/j1ds/j1ds/internal/graph"
)

// DeleteRelationships soft-deletes up to max of the live relationships
// attached to the entity with id, as the transaction sees them, and
// reports whether live ones remain. The hint is not needed: the indexes of
// the ends skip the rows of deleted relationships (their entries are
// marked dead once a scan has found them so), so it returns none.
func (tx *txn) DeleteRelationships(id, _ string, max int) (string, bool, error) {
	rels, err := tx.attached(id, max+1)
	if err != nil {
		return "", false, err
	}
	more := len(rels) > max
	if more {
		rels = rels[:max]
	}
	if err := tx.Prefetch(rels); err != nil {
		return "", false, err
	}
	for _, r := range rels {
		if _, err := tx.Delete(r); err != nil {
			return "", false, err
		}
	}
	return "", more, nil
}

// attached returns up to limit of the live relationships attached to an
// entity as the transaction sees them, in id order: the stored ones (the
// transaction's writes are not in the database until it commits), less
// those the transaction detached, with those it attached. Each end's index
// is read for at most limit rows plus those the transaction detached.
func (tx *txn) attached(entity string, limit int) ([]string, error) {
	n := limit + tx.adjacent.Detached(entity)
	rows, err := tx.tx.Query(tx.ctx, `(SELECT id FROM objects WHERE account = $1 AND from_id = $2 AND kind = 'r' AND NOT deleted LIMIT $3)
		UNION (SELECT id FROM objects WHERE account = $1 AND to_id = $2 AND kind = 'r' AND NOT deleted LIMIT $3)`, tx.account, entity, n)
	if err != nil {
		return nil, fmt.Errorf("find relationships of %s: %w", entity, err)
	}
	var rels []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find relationships of %s: %w", entity, err)
		}
		if !tx.adjacent.Removed(entity, r) {
			rels = append(rels, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find relationships of %s: %w", entity, err)
	}
	rels = append(rels, tx.adjacent.Added(entity)...)
	slices.Sort(rels)
	rels = slices.Compact(rels)
	if len(rels) > limit {
		rels = rels[:limit]
	}
	return rels, nil
}

var _ graph.Txn = (*txn)(nil)
