package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

func open(t *testing.T, url string, o pgstore.Options) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgstore.Open(ctx, url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func thing(key string) func(graph.Txn) error {
	return func(tx graph.Txn) error {
		in, err := graph.ParseObject(graph.KindEntity, []byte(fmt.Sprintf(`{"_key":"thing-key-%s","_type":"thing","_class":"Thing","_scope":"s","_source":"api"}`, key)))
		if err != nil {
			return err
		}
		in.Scope, in.Source = "s", "api"
		_, _, err = tx.Upsert(&in)
		return err
	}
}

// TestConcurrentMigrations: several processes starting at once against an
// empty database: one migrates, the others wait, all open, and every
// migration is applied once.
func TestConcurrentMigrations(t *testing.T) {
	_, url := localpg.Shared(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := pgstore.Open(ctx, url, pgstore.Options{MaxConns: 2})
			if err == nil {
				_, err = s.Update("acct-a", thing(fmt.Sprintf("k%d", i)))
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	s := open(t, url, pgstore.Options{})
	rows, err := s.Pool().Query(context.Background(), "SELECT version FROM j1ds_schema ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	var want []int32
	for v := range pgstore.SchemaVersion() {
		want = append(want, int32(v+1))
	}
	if !slices.Equal(versions, want) {
		t.Errorf("applied versions %v, want %v", versions, want)
	}
	if end, err := s.End("acct-a"); err != nil || end == 0 {
		t.Errorf("End after %d writers: %d, %v", n, end, err)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer binary is refused
// with a message that says so, and left as it is.
func TestNewerSchemaRefused(t *testing.T) {
	_, url := localpg.Shared(t)
	s := open(t, url, pgstore.Options{})
	next := pgstore.SchemaVersion() + 1
	if _, err := s.Pool().Exec(context.Background(), "INSERT INTO j1ds_schema (version, name) VALUES ($1, 'from the future')", next); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := pgstore.Open(context.Background(), url, pgstore.Options{})
	var newer *pgstore.NewerSchemaError
	if !errors.As(err, &newer) || newer.Database != next || newer.Binary != next-1 {
		t.Fatalf("open: %v; want a NewerSchemaError %d > %d", err, next, next-1)
	}
	if msg := err.Error(); !strings.Contains(msg, "newer than") || !strings.Contains(msg, fmt.Sprint(next)) {
		t.Errorf("message %q does not say the database is newer", msg)
	}
}

// TestBadURL: a malformed connection string and an unreachable server are
// named in the error, and an Open that failed can be tried again with the
// same metrics registry.
func TestBadURL(t *testing.T) {
	_, err := pgstore.Open(context.Background(), "postgres://j1ds@127.0.0.1:notaport/x", pgstore.Options{})
	if err == nil || !strings.Contains(err.Error(), "connection string") {
		t.Errorf("malformed URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	_, err = pgstore.Open(ctx, "postgres://j1ds@127.0.0.1:1/x?connect_timeout=2", pgstore.Options{Registerer: reg})
	if err == nil || !strings.Contains(err.Error(), "connect to PostgreSQL") {
		t.Errorf("unreachable server: %v", err)
	}
	// The failed attempt registered nothing: the next one, on the same
	// registry, registers the metrics.
	_, url := localpg.Shared(t)
	s := open(t, url, pgstore.Options{Registerer: reg})
	if _, err := s.Update("acct-a", thing("metered")); err != nil {
		t.Fatal(err)
	}
	if n := gathered(t, reg, "j1ds_graph_commits_total"); n != 1 {
		t.Errorf("j1ds_graph_commits_total %v, want 1", n)
	}
}

// gathered returns the value of the counter registered with name.
func gathered(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// tables returns the log partitions that exist.
func logPartitions(t *testing.T, s *pgstore.Store) []string {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'log'::regclass ORDER BY c.relname`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestPartitionsDroppedWhole: each partition period opens a partition;
// retention by age drops a partition whose entries are all past the limit
// whole, deletes entries one by one only in the one that straddles it, and
// readers get the same truncation errors as with entry-by-entry removal.
func TestPartitionsDroppedWhole(t *testing.T) {
	_, url := localpg.Shared(t)
	clk := graphtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, url, pgstore.Options{Now: clk.Now, PartitionPeriod: time.Hour,
		Retention: changelog.Retention{MaxAge: 150 * time.Minute, Interval: time.Hour}})
	var lsns []uint64
	commit := func(account, key string) {
		t.Helper()
		c, err := s.Update(account, thing(key))
		if err != nil {
			t.Fatal(err)
		}
		lsns = append(lsns, c.LSN)
	}
	// Partition 0: a1 b1 at 0:00; partition 1 (opened 1:00): a2 at 1:00,
	// b2 at 1:40; partition 2 (opened 2:00): a3 at 2:00.
	commit("acct-a", "a1")
	commit("acct-b", "b1")
	clk.Add(time.Hour)
	if n, err := s.Truncate(); err != nil || n != 0 {
		t.Fatalf("pass at 1:00: %d, %v", n, err)
	}
	commit("acct-a", "a2")
	clk.Add(40 * time.Minute)
	commit("acct-b", "b2")
	clk.Add(20 * time.Minute)
	if n, err := s.Truncate(); err != nil || n != 0 {
		t.Fatalf("pass at 2:00: %d, %v", n, err)
	}
	commit("acct-a", "a3")
	if got := logPartitions(t, s); len(got) != 3 {
		t.Fatalf("partitions %v, want 3", got)
	}
	// Every partition compresses the records as the log does.
	rows, err := s.Pool().Query(context.Background(), `SELECT c.relname, a.attcompression::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE a.attname = 'lines' AND (c.oid = 'log'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'log'::regclass))`)
	if err != nil {
		t.Fatal(err)
	}
	compression := map[string]string{}
	for rows.Next() {
		var table, method string
		if err := rows.Scan(&table, &method); err != nil {
			t.Fatal(err)
		}
		compression[table] = method
	}
	if len(compression) != 4 || compression["log"] != "l" {
		t.Errorf("compression of lines by table %v: want lz4 (l) on log and its 3 partitions", compression)
	}
	for table, method := range compression {
		if method != compression["log"] {
			t.Errorf("%s compresses lines with %q, the log with %q", table, method, compression["log"])
		}
	}
	if lsns[2]>>40 != 1 || lsns[4]>>40 != 2 {
		t.Errorf("LSNs %v: want a2 in partition 1 and a3 in partition 2", lsns)
	}
	// At 4:10 the limit is 1:40: partition 0 goes whole; a2 (1:00) goes
	// from partition 1, b2 (1:40, exactly 150 minutes old) stays.
	clk.Add(130 * time.Minute)
	before := logPartitions(t, s)
	if n, err := s.Truncate(); err != nil || n != 3 {
		t.Fatalf("pass at 4:10 removed %d, %v; want 3", n, err)
	}
	after := logPartitions(t, s)
	if slices.Contains(after, before[0]) || len(after) != len(before) {
		// One dropped, one opened at 4:10.
		t.Errorf("partitions before %v, after %v: want the first dropped and a new one opened", before, after)
	}
	var te *changelog.TruncatedError
	if _, err := s.ReadLog("acct-a", 0, 10, 1<<20); !errors.As(err, &te) || te.To != lsns[2] {
		t.Errorf("acct-a from 0: %v; want truncated through a2 (%d)", err, lsns[2])
	}
	if _, err := s.ReadLog("acct-b", 0, 10, 1<<20); !errors.As(err, &te) || te.To != lsns[1] {
		t.Errorf("acct-b from 0: %v; want truncated through b1 (%d)", err, lsns[1])
	}
	if es, err := s.ReadLog("acct-b", lsns[1], 10, 1<<20); err != nil || len(es) != 1 || es[0].LSN != lsns[3] {
		t.Errorf("acct-b after b1: %v, %v; want b2", es, err)
	}
	if es, err := s.ReadLog("acct-a", lsns[2], 10, 1<<20); err != nil || len(es) != 1 || es[0].LSN != lsns[4] {
		t.Errorf("acct-a after a2: %v, %v; want a3", es, err)
	}
	if end, err := s.End("acct-a"); err != nil || end != lsns[4] {
		t.Errorf("End(acct-a) %d, %v; want %d", end, err, lsns[4])
	}
}

// TestWritersOnSeveralConnections: several stores (as several processes
// would) write one account at once while a reader follows it; the reader
// sees LSNs and commit times strictly increase, and never, later, an entry
// at or before a position it had passed: at the end what it read is the
// whole log.
func TestWritersOnSeveralConnections(t *testing.T) {
	_, url := localpg.Shared(t)
	const writers, each = 4, 40
	stores := make([]*pgstore.Store, writers)
	for i := range stores {
		stores[i] = open(t, url, pgstore.Options{MaxConns: 4})
	}
	reader := open(t, url, pgstore.Options{})
	done := make(chan struct{})
	var read []changelog.Entry
	readErr := make(chan error, 1)
	go func() {
		var after uint64
		for {
			es, err := reader.ReadLog("acct-a", after, 100, 1<<20)
			if err != nil {
				readErr <- err
				return
			}
			read = append(read, es...)
			if len(es) > 0 {
				after = es[len(es)-1].LSN
				continue
			}
			select {
			case <-done:
				es, err := reader.ReadLog("acct-a", after, 1000, 1<<30)
				read = append(read, es...)
				readErr <- err
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				if _, err := s.Update("acct-a", thing(fmt.Sprintf("w%d-%d", i, j))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	all, err := reader.ReadLog("acct-a", 0, 10*writers*each, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != writers*each || len(read) != len(all) {
		t.Fatalf("%d entries in the log, the follower read %d; want %d", len(all), len(read), writers*each)
	}
	for i := range all {
		if read[i].LSN != all[i].LSN {
			t.Fatalf("entry %d: the follower read LSN %d, the log has %d: an entry appeared behind its position", i, read[i].LSN, all[i].LSN)
		}
		if i > 0 && (all[i].LSN <= all[i-1].LSN || all[i].CommitTime <= all[i-1].CommitTime) {
			t.Fatalf("entry %d: LSN %d commit time %d after LSN %d commit time %d", i, all[i].LSN, all[i].CommitTime, all[i-1].LSN, all[i-1].CommitTime)
		}
	}
}

// TestIndexesStartWithAccount: every primary key and index of a table
// holding account data starts with the account id, so the schema can be
// distributed by account; the metadata tables named here are the
// exceptions.
func TestIndexesStartWithAccount(t *testing.T) {
	_, url := localpg.Shared(t)
	s := open(t, url, pgstore.Options{})
	// Metadata of the whole database, not of an account.
	metadata := map[string]bool{"j1ds_schema": true, "log_partitions": true, "operator_key": true, "cluster_nodes": true, "export_groups": true}
	// Lookups by something other than the account, named with why.
	exceptions := map[string]bool{
		"api_key_hashes_pkey": true, // Authenticate: a secret's hash → its account and key
	}
	rows, err := s.Pool().Query(context.Background(), `SELECT t.relname, i.relname, a.attname
		FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_class t ON t.oid = x.indrelid
		JOIN pg_namespace n ON n.oid = t.relnamespace
		LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
		WHERE n.nspname = current_schema()
		AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = t.oid)
		ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var table, index string
		var first *string
		if err := rows.Scan(&table, &index, &first); err != nil {
			t.Fatal(err)
		}
		n++
		if metadata[table] || exceptions[index] {
			continue
		}
		if first == nil || *first != "account" {
			t.Errorf("index %s on %s starts with %s, not the account id", index, table, deref(first))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("%d indexes found: the query is wrong", n)
	}
}

func deref(s *string) string {
	if s == nil {
		return "an expression"
	}
	return *s
}

// TestPartitionsDroppedForBytes: retention by bytes drops the oldest
// partitions whole while they fit in the excess, then deletes the oldest
// entries of the next, in LSN order, until the log fits.
func TestPartitionsDroppedForBytes(t *testing.T) {
	_, url := localpg.Shared(t)
	clk := graphtest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, url, pgstore.Options{Now: clk.Now, PartitionPeriod: time.Hour})
	type entry struct {
		account string
		lsn     uint64
		size    int64
	}
	var log []entry
	rec := make(chan changelog.CommitEvent, 64)
	defer s.Subscribe(func(ev changelog.CommitEvent) { rec <- ev })()
	commit := func(account, key string) {
		t.Helper()
		if _, err := s.Update(account, thing(key)); err != nil {
			t.Fatal(err)
		}
		ev := <-rec
		log = append(log, entry{account, ev.LSN, int64(ev.Bytes)})
	}
	// Three partitions of two entries each (one per account).
	for p := range 3 {
		commit("acct-a", fmt.Sprintf("a%d", p))
		commit("acct-b", fmt.Sprintf("b%d", p))
		clk.Add(time.Hour)
		if _, err := s.Truncate(); err != nil {
			t.Fatal(err)
		}
	}
	parts := logPartitions(t, s)
	if len(parts) != 4 {
		t.Fatalf("partitions %v, want 4", parts)
	}
	var total int64
	for _, e := range log {
		total += e.size
	}
	// Keep the last three entries: the first partition goes whole, and the
	// first entry of the second one by one.
	limit := log[3].size + log[4].size + log[5].size
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.Close()
	s, err := pgstore.Open(ctx, url, pgstore.Options{Now: clk.Now, PartitionPeriod: time.Hour,
		Retention: changelog.Retention{MaxBytes: limit, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.LogBytes(); got != total {
		t.Fatalf("LogBytes %d, the entries add up to %d", got, total)
	}
	if n, err := s.Truncate(); err != nil || n != 3 {
		t.Fatalf("Truncate removed %d, %v; want 3", n, err)
	}
	if got := s.LogBytes(); got != limit {
		t.Errorf("LogBytes after the pass %d, want %d", got, limit)
	}
	if after := logPartitions(t, s); slices.Contains(after, parts[0]) || !slices.Contains(after, parts[1]) {
		t.Errorf("partitions after the pass %v: want %s dropped, %s kept", after, parts[0], parts[1])
	}
	var te *changelog.TruncatedError
	if _, err := s.ReadLog("acct-a", 0, 10, 1<<20); !errors.As(err, &te) || te.To != log[2].lsn {
		t.Errorf("acct-a from 0: %v; want truncated through LSN %d", err, log[2].lsn)
	}
	if _, err := s.ReadLog("acct-b", 0, 10, 1<<20); !errors.As(err, &te) || te.To != log[1].lsn {
		t.Errorf("acct-b from 0: %v; want truncated through LSN %d", err, log[1].lsn)
	}
	if es, err := s.ReadLog("acct-b", log[1].lsn, 10, 1<<20); err != nil || len(es) != 2 || es[0].LSN != log[3].lsn {
		t.Errorf("acct-b after its first entry: %d entries, %v; want 2 from LSN %d", len(es), err, log[3].lsn)
	}
}

// TestCommitInDoubtReported: an entry that committed although its writer
// saw the commit fail (here: written by another process, the writer's
// failure recorded by hand) is reported to subscribers once the database
// answers, with the LSN and bytes of what committed.
func TestCommitInDoubtReported(t *testing.T) {
	_, url := localpg.Shared(t)
	s := open(t, url, pgstore.Options{})
	other := open(t, url, pgstore.Options{})
	heard := make(chan changelog.CommitEvent, 4)
	defer s.Subscribe(func(ev changelog.CommitEvent) { heard <- ev })()
	end, err := s.End("acct-a")
	if err != nil {
		t.Fatal(err)
	}
	var want changelog.CommitEvent
	defer other.Subscribe(func(ev changelog.CommitEvent) { want = ev })()
	if _, err := other.Update("acct-a", thing("in-doubt")); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-heard:
		t.Fatalf("heard %+v before the commit was in doubt", ev)
	case <-time.After(1500 * time.Millisecond):
	}
	s.Doubt("acct-a", end)
	select {
	case ev := <-heard:
		if ev != want {
			t.Errorf("heard %+v, want %+v", ev, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the commit in doubt was never reported")
	}
}

// TestSettingsUpdatesReadingTheLog: many settings updates at once whose
// function reads the log, as settings.Service.Apply does, all finish:
// updates never hold every connection of the pool.
func TestSettingsUpdatesReadingTheLog(t *testing.T) {
	_, url := localpg.Shared(t)
	s := open(t, url, pgstore.Options{MaxConns: 4})
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			account := fmt.Sprintf("acct-%02d", i)
			_, err := s.Settings().Update(account, func(r *settings.Record) error {
				// Long enough that every update is running at once.
				time.Sleep(50 * time.Millisecond)
				_, err := s.End(account)
				return err
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
