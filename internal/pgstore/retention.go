package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The log is partitioned by LSN range. Partition k holds the LSNs from
// k<<partitionBits; when a partition has taken commits for PartitionPeriod
// the next one is created and the LSN sequence jumps to its first LSN, so
// each partition holds one period of commits. LSNs need only increase,
// never be dense. Retention removes a partition whole (detached
// concurrently, then dropped) once every entry in it is to go, and deletes
// entries one by one only in the partition that straddles the limit;
// writers only ever insert into the newest partition.
const partitionBits = 40

// Advisory lock keys ("j1ds" + n).
const (
	lockPartitions = 0x6a31647300000002
)

// partitionName returns the table name of the partition from first.
func partitionName(first int64) string {
	return fmt.Sprintf("log_p%d", first>>partitionBits)
}

// withLock runs fn on one connection holding a session advisory lock.
func (s *Store) withLock(ctx context.Context, key int64, fn func(conn *pgxpool.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return err
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
	return fn(conn)
}

type partition struct {
	first, openedAt int64
	dropping        bool
}

func partitions(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]partition, error) {
	rows, err := q.Query(ctx, "SELECT first_lsn, opened_at, dropping FROM log_partitions ORDER BY first_lsn")
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (partition, error) {
		var p partition
		err := r.Scan(&p.first, &p.openedAt, &p.dropping)
		return p, err
	})
}

// rollPartition creates the first partition, or the next one when the
// newest has taken commits for a period, and moves the LSN sequence into
// the newest partition's range.
func (s *Store) rollPartition(ctx context.Context) error {
	err := s.withLock(ctx, lockPartitions, func(conn *pgxpool.Conn) error {
		ps, err := partitions(ctx, conn)
		if err != nil {
			return err
		}
		now := s.now().UnixMicro()
		var next int64
		switch {
		case len(ps) == 0:
			next = 0
		case now-ps[len(ps)-1].openedAt >= s.period.Microseconds():
			next = ps[len(ps)-1].first + 1<<partitionBits
		default:
			next = -1
		}
		if next >= 0 {
			name := partitionName(next)
			tx, err := conn.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			// Created apart and attached, which locks the log less than
			// CREATE TABLE ... PARTITION OF: writers go on meanwhile.
			if _, err := tx.Exec(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE log INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION)`, name)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER TABLE log ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)`, name, next, next+1<<partitionBits)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO log_partitions (first_lsn, opened_at) VALUES ($1, $2)", next, now); err != nil {
				return err
			}
			if err := tx.Commit(ctx); err != nil {
				return err
			}
			ps = append(ps, partition{first: next, openedAt: now})
			s.log.Info("log partition opened", slog.String("table", name))
		}
		// The sequence only moves up, so a value handed out meanwhile is
		// never taken again.
		first := ps[len(ps)-1].first
		_, err = conn.Exec(ctx, `SELECT setval('log_lsn', $1::bigint) FROM log_lsn WHERE last_value < $1::bigint`, max(first, 1))
		return err
	})
	return s.wrap("open a log partition", err)
}

func (s *Store) retentionLoop() {
	defer s.wg.Done()
	every := min(s.ret.Interval, s.period)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.ret.MaxAge <= 0 && s.ret.MaxBytes <= 0 {
			if err := s.rollPartition(s.ctx); err != nil && s.ctx.Err() == nil {
				s.log.Warn("log partition upkeep failed; retried at the next pass", slog.Any("err", err))
			}
			continue
		}
		if n, err := s.Truncate(); err != nil && s.ctx.Err() == nil {
			s.log.Warn("log retention pass failed; retried at the next pass", slog.Any("err", err))
		} else if n > 0 {
			s.log.Info("log retention removed entries", slog.Int("entries", n))
		}
	}
}

// agePartitionMargin: an entry's commit time is taken a moment before its
// LSN, so a partition opened more than this after the age limit holds no
// entry older than it.
const agePartitionMargin = time.Minute

// removal is what a retention step removes from one account's log.
type removal struct {
	lastLSN       int64
	entries, size int64
}

// Truncate runs one retention pass now (opening the next log partition
// when it is time) and returns how many entries it removed.
func (s *Store) Truncate() (int, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	if err := s.rollPartition(ctx); err != nil {
		return 0, err
	}
	removed := 0
	err := s.withLock(ctx, lockPartitions, func(conn *pgxpool.Conn) error {
		ps, err := partitions(ctx, conn)
		if err != nil {
			return err
		}
		// Finish partitions a pass left half dropped.
		live := ps[:0:0]
		for _, p := range ps {
			if p.dropping {
				if err := s.dropPartition(ctx, conn, p.first); err != nil {
					return err
				}
				continue
			}
			live = append(live, p)
		}
		ps = live
		now := s.now().UnixMicro()
		if s.ret.MaxAge > 0 {
			cutoff := now - s.ret.MaxAge.Microseconds()
			n, err := s.truncateAge(ctx, conn, ps, cutoff)
			removed += n
			if err != nil {
				return err
			}
			if ps, err = partitions(ctx, conn); err != nil {
				return err
			}
		}
		if s.ret.MaxBytes > 0 {
			n, err := s.truncateBytes(ctx, conn, ps)
			removed += n
			if err != nil {
				return err
			}
		}
		return nil
	})
	s.metrics.Truncated(removed)
	return removed, s.wrap("log retention", err)
}

// truncateAge removes the entries committed before cutoff (µs).
func (s *Store) truncateAge(ctx context.Context, conn *pgxpool.Conn, ps []partition, cutoff int64) (int, error) {
	removed := 0
	for i, p := range ps {
		if i == len(ps)-1 {
			break // the newest partition takes commits
		}
		closedAt := ps[i+1].openedAt
		if closedAt >= cutoff {
			break
		}
		stats, newest, err := partitionStats(ctx, conn, p.first)
		if err != nil {
			return removed, err
		}
		if newest >= cutoff {
			break // straddles the limit: its old entries go one by one below
		}
		n, err := s.removePartition(ctx, conn, p.first, stats)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	// The entries left before the limit are in partitions opened before it
	// (and a margin): delete them one by one.
	var upper int64 = -1
	for _, p := range ps {
		if p.openedAt > cutoff+agePartitionMargin.Microseconds() {
			upper = p.first
			break
		}
	}
	q := "DELETE FROM log WHERE commit_time < $1 RETURNING account, lsn, bytes"
	args := []any{cutoff}
	if upper >= 0 {
		q = "DELETE FROM log WHERE lsn < $2 AND commit_time < $1 RETURNING account, lsn, bytes"
		args = append(args, upper)
	}
	n, err := s.deleteEntries(ctx, conn, q, args...)
	return removed + n, err
}

// truncateBytes removes the oldest entries, of every account, while the
// log is larger than MaxBytes.
func (s *Store) truncateBytes(ctx context.Context, conn *pgxpool.Conn, ps []partition) (int, error) {
	var total int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(sum(bytes), 0)::bigint FROM log_heads").Scan(&total); err != nil {
		return 0, err
	}
	excess := total - s.ret.MaxBytes
	removed := 0
	for i, p := range ps {
		if excess <= 0 {
			break
		}
		stats, _, err := partitionStats(ctx, conn, p.first)
		if err != nil {
			return removed, err
		}
		var size int64
		for _, r := range stats {
			size += r.size
		}
		if size <= excess && i < len(ps)-1 {
			n, err := s.removePartition(ctx, conn, p.first, stats)
			removed += n
			if err != nil {
				return removed, err
			}
			excess -= size
			continue
		}
		// The oldest entries of this partition, in LSN order, until the
		// excess is covered.
		rows, err := conn.Query(ctx, fmt.Sprintf("SELECT lsn, bytes FROM %s ORDER BY lsn", partitionName(p.first)))
		if err != nil {
			return removed, err
		}
		last := int64(-1)
		for rows.Next() && excess > 0 {
			var lsn int64
			var n int32
			if err := rows.Scan(&lsn, &n); err != nil {
				rows.Close()
				return removed, err
			}
			last, excess = lsn, excess-int64(n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return removed, err
		}
		if last >= 0 {
			n, err := s.deleteEntries(ctx, conn, "DELETE FROM log WHERE lsn >= $1 AND lsn <= $2 RETURNING account, lsn, bytes", p.first, last)
			removed += n
			if err != nil {
				return removed, err
			}
		}
		break
	}
	return removed, nil
}

// partitionStats reads what each account has in a partition, and the
// newest commit time in it.
func partitionStats(ctx context.Context, conn *pgxpool.Conn, first int64) (map[string]removal, int64, error) {
	rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT account, max(lsn), count(*), sum(bytes)::bigint, max(commit_time) FROM %s GROUP BY account`, partitionName(first)))
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := map[string]removal{}
	var newest int64
	for rows.Next() {
		var a string
		var r removal
		var ct int64
		if err := rows.Scan(&a, &r.lastLSN, &r.entries, &r.size, &ct); err != nil {
			return nil, 0, err
		}
		out[a] = r
		newest = max(newest, ct)
	}
	return out, newest, rows.Err()
}

// removePartition marks a partition's entries removed in the heads of
// their accounts, then drops the partition.
func (s *Store) removePartition(ctx context.Context, conn *pgxpool.Conn, first int64, stats map[string]removal) (int, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	n, err := applyRemovals(ctx, tx, stats)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, "UPDATE log_partitions SET dropping = true WHERE first_lsn = $1", first); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return n, s.dropPartition(ctx, conn, first)
}

// dropPartition detaches a partition concurrently (writers and readers of
// the log are not blocked) and drops it.
func (s *Store) dropPartition(ctx context.Context, conn *pgxpool.Conn, first int64) error {
	name := partitionName(first)
	_, err := conn.Exec(ctx, fmt.Sprintf("ALTER TABLE log DETACH PARTITION %s CONCURRENTLY", name))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55000" { // a detach left pending
		_, err = conn.Exec(ctx, fmt.Sprintf("ALTER TABLE log DETACH PARTITION %s FINALIZE", name))
	}
	if errors.As(err, &pe) && pe.Code == "42P01" || errors.As(err, &pe) && pe.Code == "42809" { // gone, or detached already
		err = nil
	}
	if err != nil {
		return fmt.Errorf("detach %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s", name)); err != nil {
		return fmt.Errorf("drop %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM log_partitions WHERE first_lsn = $1", first); err != nil {
		return err
	}
	s.log.Info("log partition dropped", slog.String("table", name))
	return nil
}

// deleteEntries runs a DELETE ... RETURNING account, lsn, bytes on the log
// and records what it removed in the heads, in one transaction.
func (s *Store) deleteEntries(ctx context.Context, conn *pgxpool.Conn, q string, args ...any) (int, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	stats := map[string]removal{}
	for rows.Next() {
		var a string
		var lsn int64
		var n int32
		if err := rows.Scan(&a, &lsn, &n); err != nil {
			rows.Close()
			return 0, err
		}
		r := stats[a]
		r.lastLSN, r.entries, r.size = max(r.lastLSN, lsn), r.entries+1, r.size+int64(n)
		stats[a] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n, err := applyRemovals(ctx, tx, stats)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit(ctx)
}

// applyRemovals records removed entries in their accounts' heads.
func applyRemovals(ctx context.Context, tx pgx.Tx, stats map[string]removal) (int, error) {
	n := 0
	for a, r := range stats {
		if _, err := tx.Exec(ctx, `UPDATE log_heads SET trunc_lsn = greatest(trunc_lsn, $2), entries = entries - $3, bytes = bytes - $4
			WHERE account = $1`, a, r.lastLSN, r.entries, r.size); err != nil {
			return 0, err
		}
		n += int(r.entries)
	}
	return n, nil
}
