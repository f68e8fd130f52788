package graph

import (
	"errors"
	"fmt"
)

// MaxCascade bounds the relationships one transaction deletes with an
// entity (Txn.Delete), and the relationships each transaction of a chunked
// delete removes (DeleteEntity, DeleteWithin): however many relationships
// an entity has, no transaction that deletes them holds more than
// MaxCascade of them, plus the entity.
const MaxCascade = 1000

// ErrTooManyRelationships is wrapped by *CascadeError.
var ErrTooManyRelationships = errors.New("entity has more live relationships than one transaction deletes with it")

// CascadeError is returned by Txn.Delete for an entity with more than
// Limit live relationships. The transaction is left as it was.
type CascadeError struct {
	ID    string
	Limit int
}

func (e *CascadeError) Error() string {
	return fmt.Sprintf("entity %s has more than %d live relationships, more than one transaction deletes with it: delete them in chunks first (graph.DeleteEntity)", e.ID, e.Limit)
}

func (e *CascadeError) Unwrap() error { return ErrTooManyRelationships }

// Updater runs fn as one transaction on one account's graph, as
// Graph.Update does: a Graph bound to an account (UpdaterOf), or a sync
// job's Apply, which saves the job's progress in the same transaction.
type Updater func(fn func(Txn) error) (Commit, error)

// UpdaterOf returns the Updater of account's graph in g.
func UpdaterOf(g Graph, account string) Updater {
	return func(fn func(Txn) error) (Commit, error) { return g.Update(account, fn) }
}

// DeleteWithin deletes the live object with id in tx when its cascade fits
// the budget: a relationship, or an entity with at most budget live
// relationships (deleted first, then the entity). An entity with more has
// budget of its relationships deleted instead, and stays live: done is
// false, and the caller commits and calls again in a new transaction.
// Nothing live with that id is done, with nothing written. budget below 1
// counts as 1, so each call makes progress.
func DeleteWithin(tx Txn, id string, budget int) (done bool, err error) {
	done, _, err = deleteWithin(tx, id, "", budget)
	return done, err
}

// deleteWithin is DeleteWithin with the hint of Txn.DeleteRelationships:
// from in, next out.
func deleteWithin(tx Txn, id, from string, budget int) (done bool, next string, err error) {
	o, err := tx.Get(id)
	if errors.Is(err, ErrNotFound) {
		return true, "", nil
	}
	if err != nil || o.Deleted {
		return err == nil, "", err
	}
	if o.Kind == KindEntity {
		var more bool
		next, more, err = tx.DeleteRelationships(id, from, max(budget, 1))
		if err != nil || more {
			return false, next, err
		}
	}
	_, err = tx.Delete(id)
	return err == nil, "", err
}

// DeleteEntity deletes the live entity with id and its relationships in
// transactions of at most MaxCascade relationships each, every one its own
// commit in the log: relationships first, chunk after chunk, then, in the
// last transaction, those that remain and the entity together. Every
// relationship's delete record is therefore in the log before the
// entity's, and a failure (or a crash) between two transactions leaves the
// entity live with fewer relationships, never a live relationship whose
// end is deleted: calling DeleteEntity again completes it. Relationships
// other writers attach to the entity meanwhile are deleted too, by as many
// more transactions as they need; transactions of other writers of the
// account run between the chunks.
//
// It returns the tally of every transaction it committed, and ErrNotFound
// when there is no live entity with id. An entity another writer deletes
// between two chunks ends the delete without error.
func DeleteEntity(update Updater, id string) (Counts, error) {
	var total Counts
	from := ""
	for first := true; ; first = false {
		done := false
		c, err := update(func(tx Txn) error {
			o, err := tx.Get(id)
			switch {
			case err != nil && !errors.Is(err, ErrNotFound):
				return err
			case err != nil || o.Kind != KindEntity || o.Deleted:
				if first {
					return ErrNotFound
				}
				done = true
				return nil
			}
			var next string
			done, next, err = deleteWithin(tx, id, from, MaxCascade)
			if err == nil {
				from = next
			}
			return err
		})
		if err != nil {
			return total, err
		}
		total.Add(c.Counts)
		if done {
			return total, nil
		}
	}
}
