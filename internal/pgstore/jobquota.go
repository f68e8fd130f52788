package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Usage sums the account's open jobs: a scan of its entries in the partial
// index sync_jobs_open (schema/007_job_quotas.sql), which holds the open
// jobs only, with their staged bytes.
func (js *Jobs) Usage(account string) (syncjobs.Usage, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	u, err := usage(ctx, js.s.pool, account)
	if err != nil {
		return syncjobs.Usage{}, js.s.wrap("usage", err)
	}
	return u, nil
}

// usage reads what the account's open jobs hold, on q (the pool, or the
// transaction of a Stage).
func usage(ctx context.Context, q rowQuerier, account string) (syncjobs.Usage, error) {
	var u syncjobs.Usage
	err := q.QueryRow(ctx, `SELECT count(*), coalesce(sum(staged_bytes), 0)::bigint FROM sync_jobs
		WHERE account = $1 AND open`, account).Scan(&u.OpenJobs, &u.StagedBytes)
	if err != nil {
		return syncjobs.Usage{}, fmt.Errorf("read open jobs of account %s: %w", account, err)
	}
	return u, nil
}

// ListJobs reads a page of the account's jobs in id order.
func (js *Jobs) ListJobs(account, after string, limit int) ([]syncjobs.Job, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	rows, err := js.s.pool.Query(ctx, `SELECT `+jobColumns+` FROM sync_jobs j
		LEFT JOIN sync_job_events e ON e.account = j.account AND e.job = j.id
		WHERE j.account = $1 AND j.id > $2 ORDER BY j.id LIMIT $3`, account, after, limit)
	if err != nil {
		return nil, js.s.wrap("read jobs of account "+account, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (syncjobs.Job, error) { return scanJob(r) })
	return out, js.s.wrap("read jobs of account "+account, err)
}

// Idle reads the jobs awaiting uploads touched last before `before`, from
// the partial index sync_jobs_touched (jobs awaiting uploads only), oldest
// first: one of the statements on these tables that names no account, as
// each node looks for them.
func (js *Jobs) Idle(before int64, limit int) ([]syncjobs.Job, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	rows, err := js.s.pool.Query(ctx, `SELECT `+jobColumns+` FROM sync_jobs j
		LEFT JOIN sync_job_events e ON e.account = j.account AND e.job = j.id
		WHERE j.touched < $1 ORDER BY j.touched, j.account, j.id LIMIT $2`, before, limit)
	if err != nil {
		return nil, js.s.wrap("read idle jobs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (syncjobs.Job, error) { return scanJob(r) })
	return out, js.s.wrap("read idle jobs", err)
}
