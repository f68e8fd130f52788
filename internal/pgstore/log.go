package pgstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// End returns the LSN of the account's last entry, 0 if it never had one.
func (s *Store) End(account string) (uint64, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	return s.end(ctx, account)
}

func (s *Store) end(ctx context.Context, account string) (uint64, error) {
	var lsn int64
	err := s.pool.QueryRow(ctx, "SELECT lsn FROM log_heads WHERE account = $1", account).Scan(&lsn)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, s.wrap("read the log end of "+account, err)
	}
	return uint64(lsn), nil
}

// readEntries is the statement every log read runs: the account's
// truncation mark and, in the same snapshot, up to $3 entries after the
// position. A row with a NULL lsn says there is no entry.
const readEntries = `SELECT h.trunc_lsn, l.lsn, l.commit_time, l.count, l.bytes, l.changes, l.lines
	FROM log_heads h LEFT JOIN LATERAL (
		SELECT lsn, commit_time, count, bytes, CASE WHEN $4 THEN changes END AS changes, lines FROM log
		WHERE account = h.account AND lsn > $2 ORDER BY lsn LIMIT $3) l ON true
	WHERE h.account = $1`

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// scan calls fn for each entry of the account after the position, at most
// limit of them, in one snapshot; the slices given to fn are valid only
// during the call. A position removed by retention gives a
// *changelog.TruncatedError before fn is called.
func (s *Store) scan(ctx context.Context, q querier, account string, after uint64, limit int, withChanges bool,
	fn func(lsn uint64, commitTime int64, count, size int, changes, lines []byte) (bool, error)) error {
	rows, err := q.Query(ctx, readEntries, account, int64(after), limit, withChanges)
	if err != nil {
		return s.wrap("read the log of "+account, err)
	}
	defer rows.Close()
	for rows.Next() {
		var trunc int64
		var lsn, commitTime *int64
		var count, size *int32
		var changes, lines []byte
		// Lines and changes are read raw: they alias the row's buffer.
		raw := rows.RawValues()
		if err := rows.Scan(&trunc, &lsn, &commitTime, &count, &size, nil, nil); err != nil {
			return s.wrap("read the log of "+account, err)
		}
		if uint64(trunc) > after {
			return &changelog.TruncatedError{Account: account, From: after + 1, To: uint64(trunc)}
		}
		if lsn == nil {
			return nil
		}
		changes, lines = raw[5], raw[6]
		more, err := fn(uint64(*lsn), *commitTime, int(*count), int(*size), changes, lines)
		if err != nil || !more {
			return err
		}
	}
	return s.wrap("read the log of "+account, rows.Err())
}

// NextCommit returns the commit time of the account's first entry after
// an LSN.
func (s *Store) NextCommit(account string, after uint64) (int64, bool, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var micros int64
	var ok bool
	err := s.scan(ctx, s.pool, account, after, 1, false, func(_ uint64, ct int64, _, _ int, _, _ []byte) (bool, error) {
		micros, ok = ct, true
		return false, nil
	})
	return micros, ok, err
}

// scanPage is how many entries one statement of ScanLog reads.
const scanPage = 512

// ScanLog calls fn for each of the account's entries after an LSN, in
// commit order, until fn returns false or an error. The Entry and its
// Lines are valid only during the call; Changes are left out.
func (s *Store) ScanLog(account string, after uint64, fn func(*changelog.Entry) (bool, error)) error {
	ctx, cancel := s.opCtx()
	defer cancel()
	// The pages are read in one repeatable-read transaction: one snapshot,
	// so retention cannot remove entries between two pages, and the scan
	// ends at the end it saw even while writers go on.
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.wrap("read the log of "+account, err)
	}
	defer tx.Rollback(ctx)
	var e changelog.Entry
	for {
		n := 0
		done := false
		err := s.scan(ctx, tx, account, after, scanPage, false, func(lsn uint64, ct int64, count, _ int, _, lines []byte) (bool, error) {
			n++
			e = changelog.Entry{LSN: lsn, CommitTime: ct, Count: count, Lines: lines}
			more, err := fn(&e)
			after = lsn
			if err != nil || !more {
				done = true
			}
			return more, err
		})
		if err != nil || done || n < scanPage {
			return err
		}
	}
}

// ReadLog returns the account's entries after an LSN with their changes,
// at most maxEntries and stopping once maxBytes are collected (the entry
// that reaches the limit included).
func (s *Store) ReadLog(account string, after uint64, maxEntries, maxBytes int) ([]changelog.Entry, error) {
	if maxEntries <= 0 {
		return nil, nil
	}
	ctx, cancel := s.opCtx()
	defer cancel()
	var out []changelog.Entry
	size := 0
	err := s.scan(ctx, s.pool, account, after, maxEntries, true, func(lsn uint64, ct int64, count, n int, changes, lines []byte) (bool, error) {
		e := changelog.Entry{LSN: lsn, CommitTime: ct, Count: count, Lines: append([]byte(nil), lines...)}
		var err error
		if e.Changes, err = decodeChanges(changes, e.Lines, count); err != nil {
			return false, fmt.Errorf("log of %s at LSN %d: %w", account, lsn, err)
		}
		out = append(out, e)
		size += n
		return len(out) < maxEntries && size < maxBytes, nil
	})
	return out, err
}

var errCorrupt = errors.New("corrupt log entry")

// decodeChanges decodes an entry's changes column; records alias lines.
func decodeChanges(meta, lines []byte, count int) ([]changelog.Change, error) {
	out := make([]changelog.Change, 0, count)
	for len(meta) > 0 {
		if len(meta) < 2 {
			return nil, errCorrupt
		}
		c := changelog.Change{Op: graph.Op(meta[0]), Kind: graph.Kind(meta[1])}
		meta = meta[2:]
		n, k := binary.Uvarint(meta)
		if k <= 0 || uint64(len(meta)-k) < n {
			return nil, errCorrupt
		}
		c.ID, meta = string(meta[k:k+int(n)]), meta[k+int(n):]
		r, k := binary.Uvarint(meta)
		if k <= 0 || uint64(len(lines)) < r+1 {
			return nil, errCorrupt
		}
		meta = meta[k:]
		c.Record, lines = lines[:r:r], lines[r+1:]
		out = append(out, c)
	}
	if len(out) != count || len(lines) != 0 {
		return nil, errCorrupt
	}
	return out, nil
}

// waitPoll bounds how long Wait goes without looking at the database: a
// commit of another process wakes it no later than this.
const waitPoll = time.Second

// Wait blocks until the account has an entry after the LSN or ctx ends.
func (s *Store) Wait(ctx context.Context, account string, after uint64) error {
	st := s.account(account)
	for {
		st.mu.Lock()
		ch, durable := st.changed, st.durable
		st.mu.Unlock()
		if durable > after {
			return nil
		}
		end, err := s.end(ctx, account)
		if err != nil {
			return err
		}
		if end > after {
			st.advance(end)
			return nil
		}
		t := time.NewTimer(waitPoll)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-s.ctx.Done():
			t.Stop()
			return graph.ErrClosed
		}
		t.Stop()
	}
}

// LogBytes returns the size of the retained log; -1 when the database
// cannot be read.
func (s *Store) LogBytes() int64 {
	ctx, cancel := s.opCtx()
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, "SELECT coalesce(sum(bytes), 0)::bigint FROM log_heads").Scan(&n); err != nil {
		s.log.Warn("read the size of the log", "err", err)
		return -1
	}
	return n
}
