package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// The PostgreSQL measurements (--store): the graph store and the sync API
// on PostgreSQL against raw PostgreSQL writing the store's own rows again
// (ingest), and the exporter reading the corpus from PostgreSQL against
// the exporter reading it from Pebble (export). Every measurement runs on
// a database of its own, created for it and dropped after, on one server:
// the one --store names, or one the bench starts.

// pgServer is the PostgreSQL server of a run.
type pgServer struct {
	admin  string          // URL of the database connected to for CREATE and DROP DATABASE
	local  *localpg.Server // the server the bench started; nil for a given one
	prefix string          // of the databases the bench creates
	n      atomic.Int64
	// About is what the report says of the server: its version, where it
	// runs and the settings that decide what a commit costs.
	About string
}

// startPostgres returns the server --store names: a postgres:// URL, or
// StoreLocal to start one (localpg).
func startPostgres(ctx context.Context, store string) (*pgServer, error) {
	p := &pgServer{admin: store, prefix: fmt.Sprintf("j1ds_bench_%d_", os.Getpid())}
	where := "at " + redactURL(store)
	if store == StoreLocal {
		s, err := localpg.Start()
		if err != nil {
			return nil, fmt.Errorf("start PostgreSQL: %w", err)
		}
		p.local, p.admin, where = s, s.URL("postgres"), fmt.Sprintf("started by the bench on 127.0.0.1:%d", s.Port)
	}
	conn, err := pgx.Connect(ctx, p.admin)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("connect to PostgreSQL %s: %w", where, err)
	}
	defer conn.Close(ctx)
	var version, fsync, syncCommit, buffers string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('shared_buffers')`).Scan(&version, &fsync, &syncCommit, &buffers)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("PostgreSQL %s: %w", where, err)
	}
	p.About = fmt.Sprintf("PostgreSQL %s %s (fsync %s, synchronous_commit %s, shared_buffers %s)", version, where, fsync, syncCommit, buffers)
	return p, nil
}

// Close stops the server the bench started; a given one is left as it is.
func (p *pgServer) Close() error {
	if p.local == nil {
		return nil
	}
	return p.local.Stop()
}

// database creates an empty database and returns its URL and the function
// that drops it.
func (p *pgServer) database(ctx context.Context) (string, func() error, error) {
	name := fmt.Sprintf("%s%d", p.prefix, p.n.Add(1))
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, p.admin)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE DATABASE " + name); err != nil {
		return "", nil, fmt.Errorf("create database %s (the user of --store must be allowed to create databases): %w", name, err)
	}
	u, err := url.Parse(p.admin)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() error {
		if err := exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return u.String(), drop, nil
}

// open opens a graph store on a new database; closing it drops the
// database.
func (p *pgServer) open(ctx context.Context) (*pgstore.Store, func() error, error) {
	u, drop, err := p.database(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := pgstore.Open(ctx, u, pgstore.Options{})
	if err != nil {
		return nil, nil, errors.Join(err, drop())
	}
	return s, func() error { return errors.Join(s.Close(), drop()) }, nil
}

// settle writes out what the server holds in memory and brings the
// planner's statistics up to date, so that a measurement starts from the
// same state and pays for no earlier one: CHECKPOINT (where the user may
// run it), and VACUUM ANALYZE of the store's database when analyze is set.
func settle(ctx context.Context, s *pgstore.Store, analyze bool) error {
	if analyze {
		if _, err := s.Pool().Exec(ctx, "VACUUM (ANALYZE)"); err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
	}
	// CHECKPOINT takes a superuser or pg_checkpoint: without either, the
	// measurement goes on without one.
	_, _ = s.Pool().Exec(ctx, "CHECKPOINT")
	return nil
}

// pgMeasure returns the best rate of rounds runs of f, each on a store
// on a new database: f does its untimed preparation, then calls timed
// around the work measured, which returns how many entities it wrote.
func pgMeasure(ctx context.Context, p *pgServer, rounds int, name string, progress func(string, ...any),
	f func(s *pgstore.Store, timed func(func() (int, error)) error) error) (float64, error) {
	best := 0.0
	for i := range rounds {
		progress("ingest: %s (run %d of %d)", name, i+1, rounds)
		s, closeStore, err := p.open(ctx)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		rate := 0.0
		err = f(s, func(work func() (int, error)) error {
			if err := settle(ctx, s, false); err != nil {
				return err
			}
			start := time.Now()
			n, err := work()
			rate = float64(n) / time.Since(start).Seconds()
			return err
		})
		if cerr := closeStore(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		best = max(best, rate)
	}
	return best, nil
}

// pgTxn is one transaction of the graph store on PostgreSQL as the raw
// baseline writes it again: the rows it left in objects, its log entry,
// and the account's log head as it left it.
type pgTxn struct {
	objects [][]any // objectColumns
	entry   []any   // logColumns
	head    []any   // headColumns
}

var (
	objectColumns = []string{"account", "id", "kind", "type", "scope", "deleted", "from_id", "to_id", "hash", "state"}
	logColumns    = []string{"account", "lsn", "commit_time", "count", "bytes", "changes", "lines"}
	headColumns   = []string{"account", "lsn", "last_commit", "entries", "bytes"}
)

// pgStoreRows ingests the corpus into a graph store on PostgreSQL once
// (untimed) and returns what the store wrote, for the raw baseline to
// write again: per writer, each transaction's rows in commit order. Each
// row of objects is given to the transaction whose log entry names its id
// (the last one), each log entry to its own; a row left over is an error.
func pgStoreRows(ctx context.Context, p *pgServer, corpus [][]byte, batch, writers int) ([][]pgTxn, error) {
	s, closeStore, err := p.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	if _, err := writeCorpus(s, corpus, batch, writers); err != nil {
		return nil, err
	}
	return storeRows(ctx, s, writers)
}

// storeRows reads the rows the writers' transactions left in s (see
// pgStoreRows).
func storeRows(ctx context.Context, s *pgstore.Store, writers int) ([][]pgTxn, error) {
	type slot struct{ writer, index int }
	byLSN := make(map[int64]slot)
	byID := make(map[[2]string]int64)
	out := make([][]pgTxn, writers)
	for w := range writers {
		account := fmt.Sprintf("bench%d", w)
		es, err := s.ReadLog(account, 0, math.MaxInt, math.MaxInt)
		if err != nil {
			return nil, err
		}
		out[w] = make([]pgTxn, len(es))
		for i, e := range es {
			byLSN[int64(e.LSN)] = slot{w, i}
			for _, c := range e.Changes {
				byID[[2]string{account, c.ID}] = int64(e.LSN)
			}
		}
	}
	// The log, and the head each entry leaves: its LSN and commit time,
	// the entries and bytes retained so far.
	rows, err := s.Pool().Query(ctx, "SELECT "+strings.Join(logColumns, ", ")+" FROM log ORDER BY account, lsn")
	if err != nil {
		return nil, err
	}
	var entries, size int64
	var last string
	for rows.Next() {
		var account string
		var lsn, commitTime int64
		var count, bytes int32
		var changes, lines []byte
		if err := rows.Scan(&account, &lsn, &commitTime, &count, &bytes, &changes, &lines); err != nil {
			rows.Close()
			return nil, err
		}
		sl, ok := byLSN[lsn]
		if !ok {
			rows.Close()
			return nil, fmt.Errorf("log entry %d of %s is in no writer's log", lsn, account)
		}
		if account != last {
			entries, size, last = 0, 0, account
		}
		entries, size = entries+1, size+int64(bytes)
		t := &out[sl.writer][sl.index]
		t.entry = []any{account, lsn, commitTime, count, bytes, changes, lines}
		t.head = []any{account, lsn, commitTime, entries, size}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.Pool().Query(ctx, "SELECT "+strings.Join(objectColumns, ", ")+" FROM objects ORDER BY account, id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var account, id, kind, typ, scope string
		var deleted bool
		var from, to *string
		var hash, state []byte
		if err := rows.Scan(&account, &id, &kind, &typ, &scope, &deleted, &from, &to, &hash, &state); err != nil {
			return nil, err
		}
		lsn, ok := byID[[2]string{account, id}]
		if !ok {
			return nil, fmt.Errorf("object %s of %s belongs to no transaction", id, account)
		}
		sl := byLSN[lsn]
		t := &out[sl.writer][sl.index]
		t.objects = append(t.objects, []any{account, id, kind, typ, scope, deleted, from, to, hash, state})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for w, ts := range out {
		for i, t := range ts {
			if t.entry == nil {
				return nil, fmt.Errorf("writer %d, transaction %d: no log entry", w, i)
			}
		}
	}
	return out, nil
}

// writeRawPostgres writes the store's transactions again (see
// pgStoreRows) into s's database, a transaction of PostgreSQL for each,
// each writer its own account's in order: the objects by COPY, the log
// entry and the head in one round trip, no read. It returns the entities
// written.
func writeRawPostgres(ctx context.Context, s *pgstore.Store, txns [][]pgTxn, entities int) (int, error) {
	pool := s.Pool()
	logInsert := "INSERT INTO log (" + strings.Join(logColumns, ", ") + ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
	headUpsert := "INSERT INTO log_heads (" + strings.Join(headColumns, ", ") + `) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (account) DO UPDATE SET lsn = excluded.lsn, last_commit = excluded.last_commit, entries = excluded.entries, bytes = excluded.bytes`
	err := eachWriter(len(txns), func(w int) error {
		for _, t := range txns[w] {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.CopyFrom(ctx, pgx.Identifier{"objects"}, objectColumns, pgx.CopyFromRows(t.objects)); err != nil {
					return fmt.Errorf("copy objects: %w", err)
				}
				b := &pgx.Batch{}
				b.Queue(logInsert, t.entry...)
				b.Queue(headUpsert, t.head...)
				return tx.SendBatch(ctx, b).Close()
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return entities, err
}

// redactURL returns a connection URL without its password, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		if strings.Contains(s, "password") {
			return "(a connection string)"
		}
		return s
	}
	return u.Redacted()
}

// pgCorpus commits the corpus of spec into a graph store on a new
// database, as benchCorpusPhases commits it into Pebble, and settles the
// database as a log written long ago is (VACUUM ANALYZE, CHECKPOINT). It
// checks that the log holds the changes of logs, the corpus in Pebble: the
// same objects and operations in the same order, with records of the same
// size (they differ in commit times only). Closing the store drops the
// database.
func pgCorpus(ctx context.Context, p *pgServer, spec corpusSpec, logs [][]changelog.Entry, progress func(string, ...any)) (*pgstore.Store, func() error, time.Duration, error) {
	progress("corpus: the same %d changes over %d accounts, committed into a graph store on PostgreSQL", spec.Changes, spec.Accounts)
	s, closeStore, err := p.open(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	start := time.Now()
	_, err = fillCorpus(s, spec, 500, func(accounts, changes int) {
		progress("corpus on PostgreSQL: %d of %d accounts, %d changes", accounts, spec.Accounts, changes)
	})
	built := time.Since(start)
	if err == nil {
		err = settle(ctx, s, true)
	}
	if err == nil {
		err = sameCorpus(s, logs)
	}
	if err != nil {
		return nil, nil, 0, errors.Join(err, closeStore())
	}
	progress("corpus on PostgreSQL: built in %.1fs", built.Seconds())
	return s, closeStore, built, nil
}

// sameCorpus checks that s's log holds the changes of logs, account by
// account (see pgCorpus).
func sameCorpus(s changelog.Reader, logs [][]changelog.Entry) error {
	for a, want := range logs {
		got, err := readAccount(s, corpusAccount(a))
		if err != nil {
			return err
		}
		var w, g []changelog.Change
		for _, e := range want {
			w = append(w, e.Changes...)
		}
		for _, e := range got {
			g = append(g, e.Changes...)
		}
		if len(g) != len(w) {
			return fmt.Errorf("account %s: %d changes on PostgreSQL, %d in Pebble", corpusAccount(a), len(g), len(w))
		}
		for i := range w {
			if g[i].Op != w[i].Op || g[i].Kind != w[i].Kind || g[i].ID != w[i].ID || len(g[i].Record) != len(w[i].Record) {
				return fmt.Errorf("account %s, change %d: %v %v %s of %d bytes on PostgreSQL, %v %v %s of %d bytes in Pebble", corpusAccount(a), i,
					g[i].Op, g[i].Kind, g[i].ID, len(g[i].Record), w[i].Op, w[i].Kind, w[i].ID, len(w[i].Record))
			}
		}
	}
	return nil
}

// benchPostgresIngest measures ingest on PostgreSQL as benchIngest does
// on Pebble: the graph store and the sync API against raw PostgreSQL
// writing the store's own rows again (see pgStoreRows), each the best of
// c.rounds() runs on new databases.
func benchPostgresIngest(ctx context.Context, c Config, p *pgServer, r *report, progress func(string, ...any)) error {
	corpus := ingestCorpus(c.Entities)
	rounds := c.rounds()
	capture := func(writers int) ([][]pgTxn, error) {
		progress("ingest: the graph store's transactions on PostgreSQL (%d writers), captured for the raw baseline", writers)
		return pgStoreRows(ctx, p, corpus, c.Batch, writers)
	}
	raw := func(txns [][]pgTxn) func(*pgstore.Store, func(func() (int, error)) error) error {
		return func(s *pgstore.Store, timed func(func() (int, error)) error) error {
			return timed(func() (int, error) { return writeRawPostgres(ctx, s, txns, len(corpus)) })
		}
	}
	store := func(writers int, profile string) func(*pgstore.Store, func(func() (int, error)) error) error {
		return func(s *pgstore.Store, timed func(func() (int, error)) error) error {
			return timed(func() (int, error) {
				stop, err := startCPUProfile(profile)
				if err != nil {
					return 0, err
				}
				defer stop()
				return writeCorpus(s, corpus, c.Batch, writers)
			})
		}
	}
	one, err := capture(1)
	if err != nil {
		return err
	}
	if r.PGRaw, err = pgMeasure(ctx, p, rounds, "raw PostgreSQL, the store's rows (COPY), one transaction each", progress, raw(one)); err != nil {
		return err
	}
	one = nil
	if r.PGIngest, err = pgMeasure(ctx, p, rounds, "graph store on PostgreSQL, transactions", progress, store(1, c.profile("ingest-postgres.pprof"))); err != nil {
		return err
	}
	conc, err := capture(c.Writers)
	if err != nil {
		return err
	}
	if r.PGRawConc, err = pgMeasure(ctx, p, rounds, fmt.Sprintf("raw PostgreSQL, %d writers", c.Writers), progress, raw(conc)); err != nil {
		return err
	}
	conc = nil
	if r.PGIngestConc, err = pgMeasure(ctx, p, rounds, fmt.Sprintf("graph store on PostgreSQL, %d writers", c.Writers), progress, store(c.Writers, "")); err != nil {
		return err
	}
	if r.PGSyncAPI, err = pgMeasure(ctx, p, rounds, "sync API on PostgreSQL, upload + finalize", progress, func(s *pgstore.Store, timed func(func() (int, error)) error) error {
		return timed(func() (int, error) { return syncAPI(ctx, s, s.Accounts(), s.Jobs(), corpus, c.Batch) })
	}); err != nil {
		return err
	}
	r.PGIngestVsRaw, r.PGIngestConcVsRaw, r.PGSyncAPIVsRaw = r.PGIngest/r.PGRaw, r.PGIngestConc/r.PGRawConc, r.PGSyncAPI/r.PGRaw
	r.pgIngestMeasurement = []ingestResult{
		{"raw PostgreSQL, the store's rows (COPY)", r.PGRaw, r.PGRaw},
		{"graph store, transactions", r.PGIngest, r.PGRaw},
		{fmt.Sprintf("raw PostgreSQL, %d writers", c.Writers), r.PGRawConc, r.PGRawConc},
		{fmt.Sprintf("graph store, %d writers", c.Writers), r.PGIngestConc, r.PGRawConc},
		{"sync API, upload + finalize", r.PGSyncAPI, r.PGRaw},
	}
	return nil
}
