package pebblestore

import (
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/graph"
)

// DeleteRelationships soft-deletes up to max of the live relationships
// attached to the entity with id, as the transaction sees them, and
// reports whether live ones remain. It reads the entity's adjacency from
// the hint on (the last relationship the previous call deleted), so that
// the entries earlier calls deleted, tombstones until compacted, are not
// stepped over again; from the start only when fewer remain after it.
func (tx *txn) DeleteRelationships(id, from string, max int) (string, bool, error) {
	rels, err := tx.attached(id, from, max+1)
	if err != nil {
		return "", false, err
	}
	more := len(rels) > max
	if more {
		rels = rels[:max]
	}
	for _, r := range rels {
		if _, err := tx.Delete(r); err != nil {
			return "", false, err
		}
	}
	next := ""
	if len(rels) > 0 {
		next = rels[len(rels)-1]
	}
	return next, more, nil
}

// attached returns up to limit of the live relationships attached to an
// entity as the transaction sees them, in id order: the stored ones, read
// through the entity's adjacency entries (the batch is not indexed: it
// cannot be read), less those the transaction detached, with those it
// attached. The stored ones are read after the id from first, then, when
// fewer than limit were found, up to it; no more entries are read than
// limit and those the transaction detached.
func (tx *txn) attached(entity, from string, limit int) ([]string, error) {
	p := adjacentKey(tx.account, entity, "")
	lower, upper := p, PrefixEnd(p)
	var hint []byte
	if from != "" {
		hint = append(adjacentKey(tx.account, entity, from), 0)
		lower = hint
	}
	rels, err := tx.scanAdjacent(entity, p, lower, upper, limit, nil)
	if err == nil && hint != nil && len(rels) < limit {
		rels, err = tx.scanAdjacent(entity, p, p, hint, limit, rels)
	}
	if err != nil {
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

// scanAdjacent appends to rels the relationships of the entity's adjacency
// entries (prefix p) from lower to upper that the transaction did not
// detach, until rels holds limit.
func (tx *txn) scanAdjacent(entity string, p, lower, upper []byte, limit int, rels []string) ([]string, error) {
	it, err := tx.s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	for it.First(); it.Valid() && len(rels) < limit; it.Next() {
		if r := string(it.Key()[len(p):]); !tx.adjacent.Removed(entity, r) {
			rels = append(rels, r)
		}
	}
	return rels, it.Close()
}

var _ graph.Txn = (*txn)(nil)
