package pgstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// txn is one graph transaction on one account, inside one PostgreSQL
// transaction that holds the account's log_heads row locked. Objects
// written are kept in memory (pending) and written in one statement at
// commit, with the log entry and the head.
type txn struct {
	ctx     context.Context
	tx      pgx.Tx
	account string
	micros  int64
	ms      int64
	changes int
	meta    []byte // per change: op, kind, uvarint id length, id, uvarint record length
	lines   []byte
	counts  graph.Counts
	buf     []byte
	// pending holds the objects the transaction wrote, in first-write
	// order (order), with their hash and stored JSON.
	pending map[string]*stored
	order   []string
	// adjacent holds the transaction's changes to the relationships
	// attached to entities.
	adjacent graph.Adjacency
	// read holds the objects read from the database (nil: there is none),
	// so an entity several relationships name is read once.
	read map[string]*stored
}

// maxRead bounds the objects a transaction keeps read; past it, reads go
// to the database again.
const maxRead = 1 << 16

type stored struct {
	obj  graph.Object
	hash [16]byte
	raw  []byte // JSON state
}

func (tx *txn) Account() string       { return tx.account }
func (tx *txn) CommitTime() time.Time { return time.UnixMicro(tx.micros) }
func (tx *txn) Counts() graph.Counts  { return tx.counts }
func (tx *txn) Changes() int          { return tx.changes }

func (tx *txn) load(id string) (*stored, error) {
	if st, ok := tx.pending[id]; ok {
		return st, nil
	}
	if st, ok := tx.read[id]; ok {
		return st, nil
	}
	var hash, raw []byte
	err := tx.tx.QueryRow(tx.ctx, "SELECT hash, state FROM objects WHERE account = $1 AND id = $2", tx.account, id).Scan(&hash, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		tx.remember(id, nil)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", id, err)
	}
	st, err := decodeStored(hash, raw)
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", id, err)
	}
	tx.remember(id, st)
	return st, nil
}

func decodeStored(hash, raw []byte) (*stored, error) {
	st := &stored{raw: raw}
	copy(st.hash[:], hash)
	var err error
	st.obj, err = graph.DecodeObject(raw)
	return st, err
}

func (tx *txn) remember(id string, st *stored) {
	if tx.read == nil {
		tx.read = make(map[string]*stored)
	}
	if len(tx.read) < maxRead {
		tx.read[id] = st
	}
}

// Prefetch reads the objects with these ids in one statement, so the
// upserts that follow find them without a round trip each
// (graph.Prefetcher).
func (tx *txn) Prefetch(ids []string) error {
	var want []string
	for _, id := range ids {
		_, written := tx.pending[id]
		_, known := tx.read[id]
		if !written && !known {
			want = append(want, id)
		}
	}
	if len(want) == 0 {
		return nil
	}
	rows, err := tx.tx.Query(tx.ctx, "SELECT id, hash, state FROM objects WHERE account = $1 AND id = ANY($2)", tx.account, want)
	if err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	defer rows.Close()
	found := make(map[string]bool, len(want))
	for rows.Next() {
		var id string
		var hash, raw []byte
		if err := rows.Scan(&id, &hash, &raw); err != nil {
			return fmt.Errorf("read objects: %w", err)
		}
		st, err := decodeStored(hash, raw)
		if err != nil {
			return fmt.Errorf("read object %s: %w", id, err)
		}
		tx.remember(id, st)
		found[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read objects: %w", err)
	}
	for _, id := range want {
		if !found[id] {
			tx.remember(id, nil)
		}
	}
	return nil
}

// Get returns an object as the transaction sees it, deleted objects too.
func (tx *txn) Get(id string) (graph.Object, error) {
	st, err := tx.load(id)
	if err != nil {
		return graph.Object{}, err
	}
	if st == nil {
		return graph.Object{}, graph.ErrNotFound
	}
	return st.obj, nil
}

// end returns the object stored under id, for graph.NewObject to resolve
// a relationship's end.
func (tx *txn) end(id string) (*graph.Object, bool, error) {
	st, err := tx.load(id)
	if st == nil || err != nil {
		return nil, false, err
	}
	return &st.obj, true, nil
}

// Upsert creates the object, or updates it when its content differs, or
// does nothing when the upload matches what is stored (op 0).
func (tx *txn) Upsert(in *graph.Input) (graph.Op, graph.Object, error) {
	o, err := graph.NewObject(tx.account, in, tx.end)
	if err != nil {
		return 0, graph.Object{}, err
	}
	var hash [16]byte
	hash, tx.buf = graph.ContentHash(tx.buf, &o)
	old, err := tx.load(o.ID)
	if err != nil {
		return 0, graph.Object{}, err
	}
	var prev stored
	if old != nil {
		prev = *old
	}
	op, err := graph.Versioned(&o, hash, &prev.obj, prev.hash, old != nil, tx.ms)
	if err != nil {
		return 0, graph.Object{}, err
	}
	if op == 0 {
		return 0, prev.obj, nil
	}
	if op == graph.OpUpdate {
		tx.adjacent.Attach(&prev.obj, false)
	}
	if err := tx.put(op, &o, hash); err != nil {
		return 0, graph.Object{}, err
	}
	tx.adjacent.Attach(&o, true)
	return op, o, nil
}

// Delete soft-deletes the object with id; deleting an entity deletes its
// live relationships in the same transaction, first; an entity with more
// than graph.MaxCascade is refused with a *graph.CascadeError, nothing
// written.
func (tx *txn) Delete(id string) (bool, error) {
	st, err := tx.load(id)
	if err != nil || st == nil || st.obj.Deleted {
		return false, err
	}
	o := st.obj
	if o.Kind == graph.KindEntity {
		rels, err := tx.attached(o.ID, graph.MaxCascade+1)
		if err != nil {
			return false, err
		}
		if len(rels) > graph.MaxCascade {
			return false, &graph.CascadeError{ID: o.ID, Limit: graph.MaxCascade}
		}
		if err := tx.Prefetch(rels); err != nil {
			return false, err
		}
		for _, r := range rels {
			if _, err := tx.Delete(r); err != nil {
				return false, err
			}
		}
	}
	tx.adjacent.Attach(&o, false)
	o = graph.Deleted(o, tx.ms)
	return true, tx.put(graph.OpDelete, &o, st.hash)
}

func (tx *txn) put(op graph.Op, o *graph.Object, hash [16]byte) error {
	raw := o.AppendJSON(nil)
	if err := graph.TooLarge(o, len(raw)); err != nil {
		return err
	}
	if tx.pending == nil {
		tx.pending = make(map[string]*stored)
	}
	if _, ok := tx.pending[o.ID]; !ok {
		tx.order = append(tx.order, o.ID)
	}
	tx.pending[o.ID] = &stored{obj: *o, hash: hash, raw: raw}
	start := len(tx.lines)
	tx.lines = graph.AppendRecord(tx.lines, op, o, raw)
	tx.meta = appendChangeMeta(tx.meta, op, o.Kind, o.ID, len(tx.lines)-start)
	tx.lines = append(tx.lines, '\n')
	tx.changes++
	tx.counts.Note(o.Kind, op)
	return nil
}

// appendChangeMeta encodes one change of a log entry's changes column.
func appendChangeMeta(b []byte, op graph.Op, kind graph.Kind, id string, record int) []byte {
	b = append(b, byte(op), byte(kind))
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	return binary.AppendUvarint(b, uint64(record))
}

// Update runs fn as one transaction on account's graph: every object write
// fn makes and the log entry holding their after-images are committed in
// one PostgreSQL transaction. If fn returns an error nothing is written.
func (s *Store) Update(account string, fn func(graph.Txn) error) (graph.Commit, error) {
	return s.update(account, func(tx *txn) error { return fn(tx) }, nil)
}

// entryOverhead is what an entry counts in bytes beyond its changes and
// lines (LSN, commit time, count).
const entryOverhead = 24

// update is Update with the backend's own transaction; extra, when set,
// runs in the same PostgreSQL transaction after fn and before the commit,
// even when fn changed no object (a sync job's progress).
func (s *Store) update(account string, fn func(*txn) error, extra func(ctx context.Context, tx pgx.Tx) error) (graph.Commit, error) {
	if err := accounts.ValidateID(account); err != nil {
		return graph.Commit{}, err
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	start := time.Now()
	var c graph.Commit
	var entryBytes int
	var fnErr error   // an error of fn or extra, returned as it is
	var before uint64 // the account's end before this transaction's entry
	err := pgx.BeginFunc(ctx, s.pool, func(ptx pgx.Tx) error {
		// The account's head row, locked until the commit, serialises
		// the account's transactions on every connection and node.
		var lastCommit, prevEnd int64
		err := ptx.QueryRow(ctx, `INSERT INTO log_heads (account) VALUES ($1)
			ON CONFLICT (account) DO UPDATE SET account = excluded.account
			RETURNING last_commit, lsn`, account).Scan(&lastCommit, &prevEnd)
		if err != nil {
			return fmt.Errorf("lock the log of %s: %w", account, err)
		}
		micros := s.now().UnixMicro()
		if micros <= lastCommit {
			micros = lastCommit + 1
		}
		tx := &txn{ctx: ctx, tx: ptx, account: account, micros: micros, ms: micros / 1000}
		if fnErr = fn(tx); fnErr != nil {
			return fnErr
		}
		if tx.changes > 0 {
			// The objects and the log entry go in one round trip.
			entryBytes = entryOverhead + len(tx.meta) + len(tx.lines)
			var b pgx.Batch
			tx.queueObjects(&b)
			b.Queue(`WITH e AS (
					INSERT INTO log (account, lsn, commit_time, count, bytes, changes, lines)
					VALUES ($1, nextval('log_lsn'), $2, $3, $4, $5, $6) RETURNING lsn)
				UPDATE log_heads h SET lsn = e.lsn, last_commit = $2, entries = h.entries + 1, bytes = h.bytes + $4
				FROM e WHERE h.account = $1 RETURNING e.lsn`,
				account, micros, tx.changes, entryBytes, tx.meta, tx.lines)
			br := ptx.SendBatch(ctx, &b)
			var lsn int64
			if _, err := br.Exec(); err != nil {
				br.Close()
				return fmt.Errorf("write objects: %w", err)
			}
			if err := br.QueryRow().Scan(&lsn); err != nil {
				br.Close()
				return fmt.Errorf("write log entry: %w", err)
			}
			if err := br.Close(); err != nil {
				return fmt.Errorf("write log entry: %w", err)
			}
			before = uint64(prevEnd)
			c = graph.Commit{LSN: uint64(lsn), CommitTime: micros, Changes: tx.changes, Counts: tx.counts}
		}
		if extra != nil {
			if fnErr = extra(ctx, ptx); fnErr != nil {
				return fnErr
			}
		}
		return nil
	})
	if fnErr != nil {
		return graph.Commit{}, fnErr
	}
	if err != nil {
		if c.LSN > 0 {
			// The connection may have failed after the database
			// committed: look again once it answers (watchDoubtful).
			s.doubt(account, before)
		}
		s.metrics.failed.Inc()
		return graph.Commit{}, s.wrap("commit transaction of "+account, err)
	}
	if c.LSN > 0 {
		s.metrics.ObserveCommit(c.Counts, time.Since(start))
		for last := s.lastLSN.Load(); c.LSN > last && !s.lastLSN.CompareAndSwap(last, c.LSN); last = s.lastLSN.Load() {
		}
		ev := changelog.CommitEvent{Account: account, LSN: c.LSN, CommitTime: c.CommitTime, Changes: c.Changes, Bytes: entryBytes}
		s.notify(ev)
		s.publish(ev)
	}
	return c, nil
}

// queueObjects queues the statement that writes every object the
// transaction changed.
func (tx *txn) queueObjects(b *pgx.Batch) {
	n := len(tx.order)
	ids := make([]string, n)
	kinds := make([]string, n)
	types := make([]string, n)
	scopes := make([]string, n)
	deleted := make([]bool, n)
	froms := make([]*string, n)
	tos := make([]*string, n)
	hashes := make([][]byte, n)
	states := make([][]byte, n)
	for i, id := range tx.order {
		st := tx.pending[id]
		o := &st.obj
		ids[i], kinds[i], types[i], scopes[i], deleted[i] = id, string(o.Kind), o.Type, o.Scope, o.Deleted
		if o.Kind == graph.KindRelationship {
			froms[i], tos[i] = &o.FromID, &o.ToID
		}
		hashes[i], states[i] = st.hash[:], st.raw
	}
	b.Queue(`INSERT INTO objects (account, id, kind, type, scope, deleted, from_id, to_id, hash, state)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::text[], $9::bytea[], $10::bytea[])
		ON CONFLICT (account, id) DO UPDATE SET kind = excluded.kind, type = excluded.type, scope = excluded.scope,
			deleted = excluded.deleted, from_id = excluded.from_id, to_id = excluded.to_id, hash = excluded.hash, state = excluded.state`,
		tx.account, ids, kinds, types, scopes, deleted, froms, tos, hashes, states)
}

var _ graph.Prefetcher = (*txn)(nil)
