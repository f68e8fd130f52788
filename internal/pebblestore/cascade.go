package pebblestore

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/graph"
)

// DeleteRelationships soft-deletes up to max of the live relationships
// attached to the entity with id, as the transaction sees them, and
// reports whether live ones remain.
func (tx *txn) DeleteRelationships(id string, max int) (bool, error) {
	rels, err := tx.attached(id, max+1)
	if err != nil {
		return false, err
	}
	more := len(rels) > max
	if more {
		rels = rels[:max]
	}
	for _, r := range rels {
		if _, err := tx.Delete(r); err != nil {
			return false, err
		}
	}
	return more, nil
}

// attached returns up to limit of the live relationships attached to an
// entity as the transaction sees them, in id order: the stored ones, read
// through the entity's adjacency entries (the batch is not indexed: it
// cannot be read), less those the transaction detached, with those it
// attached. It reads no more stored entries than it returns plus those the
// transaction detached.
func (tx *txn) attached(entity string, limit int) ([]string, error) {
	var rels []string
	p := adjacentKey(tx.account, entity, "")
	it, err := tx.s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: PrefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("find relationships of %s: %w", entity, err)
	}
	for it.First(); it.Valid() && len(rels) < limit; it.Next() {
		if r := string(it.Key()[len(p):]); !tx.adjacent.Removed(entity, r) {
			rels = append(rels, r)
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("find relationships of %s: %w", entity, err)
	}
	// Those attached by the transaction sort among the stored ones; the
	// first limit of the union are among the first limit stored and them.
	rels = append(rels, tx.adjacent.Added(entity)...)
	slices.Sort(rels)
	rels = slices.Compact(rels)
	if len(rels) > limit {
		rels = rels[:limit]
	}
	return rels, nil
}

var _ graph.Txn = (*txn)(nil)
