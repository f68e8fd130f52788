package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Jobs keeps the sync jobs of every account in the tables sync_jobs,
// sync_job_events and sync_job_staging (schema/002_tenants.sql), beside
// the graph. Every write is one transaction; a finalize chunk's record is
// written in the graph transaction's own (Store.update), so the chunk's
// object changes, its log entry and the job's progress commit together.
//
// Every write of a record is conditional on sync_jobs.revision
// (schema/006_job_revisions.sql), checked by the statement that writes the
// row: under READ COMMITTED an UPDATE that waited for another transaction
// holding the row checks its condition again on the row that one
// committed, so of writes from one revision, on any connections or nodes,
// one updates the row and the others update none (syncjobs.ErrJobChanged).
// Stage locks the row (FOR UPDATE) before it reads the staging, so two
// uploads to one job stage one after the other, never both from one
// revision.
//
// The nodes of a cluster share the jobs (syncjobs.Runners): sync_jobs.runner
// names the node that runs a finalization (schema/005_job_runners.sql), and
// a node is live as the cluster's leases say (cluster_nodes, cluster.go).
//
// Every write of a record also sets the row's open, staged_bytes and
// touched (schema/007_job_quotas.sql), which the quotas and the expiry of
// idle jobs read (Usage, Idle in jobquota.go); Job reads staged_bytes from
// its column.
type Jobs struct{ s *Store }

var (
	_ syncjobs.Store   = (*Jobs)(nil)
	_ syncjobs.Runners = (*Jobs)(nil)
)

// Jobs returns the store of the sync jobs kept in s's database.
func (s *Store) Jobs() *Jobs { return &Jobs{s: s} }

// rowWriter is what a pool and a transaction have in common to write a
// row and read one.
type rowWriter interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// nextRecord encodes the job's record at the revision after j's.
func nextRecord(j *syncjobs.Job) ([]byte, error) {
	next := *j
	next.Revision++
	return syncjobs.EncodeRecord(&next)
}

// quotaColumns returns the columns of a job's row that Usage and Idle read
// (schema/007_job_quotas.sql): whether it is open, what it staged, and,
// while it awaits uploads, when it was touched last (NULL otherwise).
func quotaColumns(j *syncjobs.Job) (open bool, staged int64, touched *int64) {
	if j.Status == syncjobs.StatusAwaitingUploads {
		t := j.LastTouched()
		touched = &t
	}
	return !j.Status.Final(), j.StagedBytes, touched
}

// putJob writes the job's record at the revision after j's, on the
// condition that the row is at j's (a job without a row is at 0), or
// creates the row; syncjobs.ErrJobChanged, writing nothing, otherwise. It
// leaves j.Revision as it is: the caller sets it once the write commits.
func putJob(ctx context.Context, q rowWriter, j *syncjobs.Job) error {
	v, err := nextRecord(j)
	if err != nil {
		return err
	}
	var tag pgconn.CommandTag
	open, staged, touched := quotaColumns(j)
	if j.Revision == 0 {
		tag, err = q.Exec(ctx, `INSERT INTO sync_jobs (account, id, finalizing, record, revision, open, staged_bytes, touched)
			VALUES ($1, $2, $3, $4, 1, $5, $6, $7)
			ON CONFLICT (account, id) DO UPDATE SET finalizing = excluded.finalizing, record = excluded.record, revision = 1,
				open = excluded.open, staged_bytes = excluded.staged_bytes, touched = excluded.touched
			WHERE sync_jobs.revision = 0`,
			j.AccountID, j.ID, j.Status.Finalizing(), v, open, staged, touched)
	} else {
		tag, err = q.Exec(ctx, `UPDATE sync_jobs SET finalizing = $3, record = $4, revision = revision + 1,
			open = $6, staged_bytes = $7, touched = $8
			WHERE account = $1 AND id = $2 AND revision = $5`,
			j.AccountID, j.ID, j.Status.Finalizing(), v, j.Revision, open, staged, touched)
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return syncjobs.ErrJobChanged
	}
	return nil
}

// Job returns the job's record as last written, with its revision and
// with NumEvents from its event count, all read by one statement;
// syncjobs.ErrJobNotFound when there is none.
func (js *Jobs) Job(account, id string) (syncjobs.Job, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	j, err := scanJob(js.s.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM sync_jobs j
		LEFT JOIN sync_job_events e ON e.account = j.account AND e.job = j.id
		WHERE j.account = $1 AND j.id = $2`, account, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return syncjobs.Job{}, syncjobs.ErrJobNotFound
	}
	if err != nil {
		return syncjobs.Job{}, js.s.wrap("read job "+id, err)
	}
	return j, nil
}

// jobColumns are the columns scanJob reads, of sync_jobs j joined with
// sync_job_events e.
const jobColumns = `j.id, j.record, j.revision, j.staged_bytes, coalesce(e.events, 0)`

// scanJob decodes a row of jobColumns: the record, with its revision, its
// staged bytes (which the column holds for jobs written before the
// records had them) and its event count.
func scanJob(row pgx.Row) (syncjobs.Job, error) {
	var id string
	var v []byte
	var revision, staged, events int64
	if err := row.Scan(&id, &v, &revision, &staged, &events); err != nil {
		return syncjobs.Job{}, err
	}
	j, err := syncjobs.DecodeRecord(v)
	if err != nil {
		return syncjobs.Job{}, fmt.Errorf("decode job %s: %w", id, err)
	}
	j.Revision, j.StagedBytes, j.NumEvents = revision, staged, int(events)
	return j, nil
}

// PutJob writes the job's record from j's revision.
func (js *Jobs) PutJob(j *syncjobs.Job) error {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	if err := putJob(ctx, js.s.pool, j); err != nil {
		return js.s.wrap("write job "+j.ID, err)
	}
	j.Revision++
	return nil
}

// SetEvents writes the number of events reported for a job.
func (js *Jobs) SetEvents(account, id string, n int) error {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	_, err := js.s.pool.Exec(ctx, `INSERT INTO sync_job_events (account, job, events) VALUES ($1, $2, $3)
		ON CONFLICT (account, job) DO UPDATE SET events = excluded.events`, account, id, n)
	return js.s.wrap("write events of job "+id, err)
}

// Finish writes the job's record from j's revision and deletes its
// staging in one transaction.
func (js *Jobs) Finish(j *syncjobs.Job) error {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	err := pgx.BeginFunc(ctx, js.s.pool, func(tx pgx.Tx) error {
		if err := putJob(ctx, tx, j); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM sync_job_staging WHERE account = $1 AND job = $2", j.AccountID, j.ID)
		return err
	})
	if err != nil {
		return js.s.wrap("finish job "+j.ID, err)
	}
	j.Revision++
	return nil
}

// quotaLockClass is the first key of the transaction advisory lock that
// Stage takes for the account (the second is a hash of the account id):
// Stages of one account then run one at a time from their read of its
// usage to their commit, on every node. Two-key advisory locks are apart
// from the one-key locks of migrate.go and retention.go.
const quotaLockClass = 0x6a316473 // "j1ds"

// Stage resolves the objects against what the job has staged, read in the
// transaction that then writes the new objects and the job's record. It
// first takes the account's quota lock (quotaLockClass), then locks the
// job's row and checks its revision: a Stage of the job running on
// another connection or node commits first, and this one then finds the
// job changed, before it reads any staging. The account's usage, read
// under the quota lock, sees every Stage of the account that committed
// before.
func (js *Jobs) Stage(j *syncjobs.Job, objs []syncjobs.StagedObject, fn func(added []bool, u syncjobs.Usage) error) error {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	var fnErr error // a duplicate, an error of fn or a changed job, returned as it is
	err := pgx.BeginFunc(ctx, js.s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", quotaLockClass, j.AccountID); err != nil {
			return fmt.Errorf("lock the quotas of account %s: %w", j.AccountID, err)
		}
		var revision int64
		err := tx.QueryRow(ctx, "SELECT revision FROM sync_jobs WHERE account = $1 AND id = $2 FOR UPDATE",
			j.AccountID, j.ID).Scan(&revision)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("lock job: %w", err)
		}
		if revision != j.Revision {
			fnErr = syncjobs.ErrJobChanged
			return fnErr
		}
		ids := make([]string, len(objs))
		for i, o := range objs {
			ids[i] = o.ID
		}
		// staged holds, by kind and id, the objects staged before and
		// those this call adds.
		type stageKey struct {
			kind graph.Kind
			id   string
		}
		staged := make(map[stageKey][]byte)
		// One primary-key lookup per id and kind: "kind IN (...) AND id =
		// ANY(...)" had the planner walk every row the job had staged,
		// each upload slower than the last.
		rows, err := tx.Query(ctx, `SELECT k.kind, i.id, s.data
			FROM unnest($3::text[]) i(id) CROSS JOIN (VALUES ('e'), ('r')) k(kind)
			CROSS JOIN LATERAL (SELECT data FROM sync_job_staging
				WHERE account = $1 AND job = $2 AND kind = k.kind AND id = i.id OFFSET 0) s`, j.AccountID, j.ID, ids)
		if err != nil {
			return fmt.Errorf("read staged objects: %w", err)
		}
		for rows.Next() {
			var kind, id string
			var data []byte
			if err := rows.Scan(&kind, &id, &data); err != nil {
				rows.Close()
				return fmt.Errorf("read staged objects: %w", err)
			}
			staged[stageKey{graph.Kind(kind[0]), id}] = data
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read staged objects: %w", err)
		}

		added := make([]bool, len(objs))
		var kinds, newIDs []string
		var datas [][]byte
		for i, o := range objs {
			same := false
			for _, k := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
				v, ok := staged[stageKey{k, o.ID}]
				if !ok {
					continue
				}
				if same = k == o.Kind && bytes.Equal(v, o.Data); !same {
					fnErr = &syncjobs.DuplicateError{Index: i, Kind: k}
					return fnErr
				}
			}
			if same {
				continue
			}
			staged[stageKey{o.Kind, o.ID}] = o.Data
			kinds, newIDs, datas = append(kinds, string(o.Kind)), append(newIDs, o.ID), append(datas, o.Data)
			added[i] = true
		}
		u, err := usage(ctx, tx, j.AccountID)
		if err != nil {
			return err
		}
		if fnErr = fn(added, u); fnErr != nil {
			return fnErr
		}
		if len(newIDs) > 0 {
			_, err := tx.Exec(ctx, `INSERT INTO sync_job_staging (account, job, kind, id, data)
				SELECT $1, $2, * FROM unnest($3::text[], $4::text[], $5::bytea[])`,
				j.AccountID, j.ID, kinds, newIDs, datas)
			if err != nil {
				return fmt.Errorf("write staged objects: %w", err)
			}
		}
		return putJob(ctx, tx, j)
	})
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return js.s.wrap("stage objects of job "+j.ID, err)
	}
	j.Revision++
	return nil
}

// Staged returns the staged object's data.
func (js *Jobs) Staged(account, jobID string, kind graph.Kind, id string) ([]byte, bool, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	var data []byte
	err := js.s.pool.QueryRow(ctx, `SELECT data FROM sync_job_staging
		WHERE account = $1 AND job = $2 AND kind = $3 AND id = $4`, account, jobID, string(kind), id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, js.s.wrap("read staged object "+id, err)
	}
	return data, true, nil
}

// stagePage is how many staged objects ScanStaged reads per query: more
// than a finalize chunk asks for (500 and one to learn that more
// follow), so a chunk is one query, and few enough that a scan stopped
// early reads little it does not use.
const stagePage = 512

// ScanStaged reads the job's staged objects of a kind in pages of
// stagePage, each page one query; fn is called as a page's rows arrive,
// on the query's connection. Staging is scanned while the job is
// finalized, when it no longer changes, so the pages together are the
// staging as it stands.
func (js *Jobs) ScanStaged(account, jobID string, kind graph.Kind, after string, fn func(id string, data []byte) error) error {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	for {
		n, last, err := js.scanPage(ctx, account, jobID, kind, after, fn)
		if err != nil || n < stagePage {
			return err
		}
		after = last
	}
}

// scanPage calls fn for up to stagePage staged objects after `after`, and
// returns how many it read and the id of the last.
func (js *Jobs) scanPage(ctx context.Context, account, jobID string, kind graph.Kind, after string, fn func(id string, data []byte) error) (n int, last string, err error) {
	rows, err := js.s.pool.Query(ctx, `SELECT id, data FROM sync_job_staging
		WHERE account = $1 AND job = $2 AND kind = $3 AND id > $4
		ORDER BY id LIMIT $5`, account, jobID, string(kind), after, stagePage)
	if err != nil {
		return 0, "", js.s.wrap("read staged objects of job "+jobID, err)
	}
	defer rows.Close()
	for rows.Next() {
		// data is the connection's buffer, valid until the next row.
		var data pgtype.DriverBytes
		if err := rows.Scan(&last, &data); err != nil {
			return 0, "", js.s.wrap("read staged objects of job "+jobID, err)
		}
		n++
		if err := fn(last, data); err != nil {
			return 0, "", err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, "", js.s.wrap("read staged objects of job "+jobID, err)
	}
	return n, last, nil
}

// Unfinished returns the jobs being finalized, of every account (the
// partial index sync_jobs_finalizing): one of the statements on these
// tables that names no account, as the service resumes every account's
// jobs when it opens.
func (js *Jobs) Unfinished() ([]syncjobs.Job, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	rows, err := js.s.pool.Query(ctx, "SELECT account, id, record FROM sync_jobs WHERE finalizing ORDER BY account, id")
	if err != nil {
		return nil, js.s.wrap("read unfinished jobs", err)
	}
	defer rows.Close()
	var out []syncjobs.Job
	for rows.Next() {
		var account, id string
		var v []byte
		if err := rows.Scan(&account, &id, &v); err != nil {
			return nil, js.s.wrap("read unfinished jobs", err)
		}
		j, err := syncjobs.DecodeRecord(v)
		if err != nil {
			return nil, fmt.Errorf("decode job %s of account %s: %w", id, account, err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, js.s.wrap("read unfinished jobs", err)
	}
	return out, nil
}

// Apply runs fn in a graph transaction of j's account (Store.update) and
// writes j's record, as fn leaves it, from j's revision, in the same
// PostgreSQL transaction: a changed job rolls the transaction back.
func (js *Jobs) Apply(j *syncjobs.Job, fn func(graph.Txn) error) (graph.Commit, error) {
	c, err := js.s.update(j.AccountID, func(tx *txn) error { return fn(tx) }, func(ctx context.Context, tx pgx.Tx) error {
		return js.s.wrap("write job "+j.ID, putJob(ctx, tx, j))
	})
	if err == nil {
		j.Revision++
	}
	return c, err
}

// Claim makes node the runner of a job being finalized: its own, or, node
// being live, one without a live runner. It is one UPDATE, which locks the
// job's row: a write of the former runner that holds the row commits
// first, and is in the record the claim leaves; one that comes after finds
// another runner and is refused. Of nodes claiming at once, one updates
// the row; the others wait for it, then recheck their condition on the row
// as it wrote it (READ COMMITTED), whose runner is a live node.
func (js *Jobs) Claim(account, id, node string) (bool, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	tag, err := js.s.pool.Exec(ctx, `UPDATE sync_jobs j SET runner = $3
		WHERE j.account = $1 AND j.id = $2 AND j.finalizing AND (j.runner = $3 OR (
			EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.node = $3 AND n.expires_at > now() AND NOT n.leaving)
			AND (j.runner IS NULL OR NOT EXISTS (
				SELECT 1 FROM cluster_nodes n WHERE n.node = j.runner AND n.expires_at > now() AND NOT n.leaving))))`,
		account, id, node)
	if err != nil {
		return false, js.s.wrap("claim job "+id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// orphansSQL reads the jobs being finalized that no live node runs: a
// scan of the partial index sync_jobs_finalizing, which holds the jobs
// being finalized and their runners, each runner looked up by the primary
// key of cluster_nodes.
const orphansSQL = `SELECT j.account, j.id, coalesce(j.runner, '') FROM sync_jobs j
	WHERE j.finalizing AND (j.runner IS NULL OR NOT EXISTS (
		SELECT 1 FROM cluster_nodes n WHERE n.node = j.runner AND n.expires_at > now() AND NOT n.leaving))
	ORDER BY j.account, j.id LIMIT $1`

// Orphans returns the jobs being finalized that no live node runs, in one
// statement: every node of a cluster sends it every few seconds.
func (js *Jobs) Orphans(limit int) ([]syncjobs.Orphan, error) {
	ctx, cancel := js.s.opCtx()
	defer cancel()
	rows, err := js.s.pool.Query(ctx, orphansSQL, limit)
	if err != nil {
		return nil, js.s.wrap("read jobs no live node runs", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (syncjobs.Orphan, error) {
		var o syncjobs.Orphan
		return o, r.Scan(&o.AccountID, &o.ID, &o.Runner)
	})
	return out, js.s.wrap("read jobs no live node runs", err)
}

// Runner returns the Store through which node runs finalizations: its
// record writes are UPDATEs of the job's row on the condition that node is
// the job's runner or it has none, and that the row is at j's revision,
// and they make node the runner.
func (js *Jobs) Runner(node string) syncjobs.Store { return &runnerJobs{Jobs: js, node: node} }

// runnerJobs is Jobs as one node's finalizations write it.
type runnerJobs struct {
	*Jobs
	node string
}

var _ syncjobs.Store = (*runnerJobs)(nil)

// putRunnerJob writes the job's record at the revision after j's if node
// is its runner or it has none, and the row is at j's revision, and makes
// node its runner. When it writes nothing, it reads the row to say why:
// syncjobs.ErrNotRunner when another node is the runner, or there is no
// such job; syncjobs.ErrJobChanged when the revision differs. Like putJob
// it leaves j.Revision as it is.
func putRunnerJob(ctx context.Context, q rowWriter, j *syncjobs.Job, node string) error {
	v, err := nextRecord(j)
	if err != nil {
		return err
	}
	open, staged, touched := quotaColumns(j)
	tag, err := q.Exec(ctx, `UPDATE sync_jobs SET finalizing = $3, record = $4, runner = $5, revision = revision + 1,
			open = $7, staged_bytes = $8, touched = $9
		WHERE account = $1 AND id = $2 AND (runner IS NULL OR runner = $5) AND revision = $6`,
		j.AccountID, j.ID, j.Status.Finalizing(), v, node, j.Revision, open, staged, touched)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	var runner *string
	err = q.QueryRow(ctx, "SELECT runner FROM sync_jobs WHERE account = $1 AND id = $2", j.AccountID, j.ID).Scan(&runner)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return syncjobs.ErrNotRunner
	case err != nil:
		return err
	case runner != nil && *runner != node:
		return syncjobs.ErrNotRunner
	}
	return syncjobs.ErrJobChanged
}

// PutJob writes the job's record while r's node runs the job.
func (r *runnerJobs) PutJob(j *syncjobs.Job) error {
	ctx, cancel := r.s.opCtx()
	defer cancel()
	if err := putRunnerJob(ctx, r.s.pool, j, r.node); err != nil {
		return r.s.wrap("write job "+j.ID, err)
	}
	j.Revision++
	return nil
}

// Finish writes the job's record, while r's node runs the job, and
// deletes its staging, in one transaction.
func (r *runnerJobs) Finish(j *syncjobs.Job) error {
	ctx, cancel := r.s.opCtx()
	defer cancel()
	err := pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
		if err := putRunnerJob(ctx, tx, j, r.node); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "DELETE FROM sync_job_staging WHERE account = $1 AND job = $2", j.AccountID, j.ID)
		return err
	})
	if err != nil {
		return r.s.wrap("finish job "+j.ID, err)
	}
	j.Revision++
	return nil
}

// Apply runs fn in a graph transaction of j's account and writes j's
// record in it while r's node runs the job, from j's revision: otherwise
// the transaction rolls back, its changes with it.
func (r *runnerJobs) Apply(j *syncjobs.Job, fn func(graph.Txn) error) (graph.Commit, error) {
	c, err := r.s.update(j.AccountID, func(tx *txn) error { return fn(tx) }, func(ctx context.Context, tx pgx.Tx) error {
		return r.s.wrap("write job "+j.ID, putRunnerJob(ctx, tx, j, r.node))
	})
	if err == nil {
		j.Revision++
	}
	return c, err
}
