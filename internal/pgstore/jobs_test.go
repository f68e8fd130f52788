package pgstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// TestOrphansLookup: the look for finalizations no live node runs, which
// every node of a cluster makes every few seconds, is one statement, and
// it reads the partial index of the jobs being finalized, not every job.
func TestOrphansLookup(t *testing.T) {
	_, url := localpg.Shared(t)
	s := open(t, url, pgstore.Options{})
	ctx := context.Background()
	// 5,000 jobs, of which 3 are being finalized: one by a live node, one
	// by a dead one, one by none.
	_, err := s.Pool().Exec(ctx, `INSERT INTO sync_jobs (account, id, finalizing, record)
		SELECT 'acct-' || (i % 50), 'job-' || i, false, '{}' FROM generate_series(1, 5000) i`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pool().Exec(ctx, `UPDATE sync_jobs SET finalizing = true,
		runner = CASE id WHEN 'job-10' THEN 'node-live' WHEN 'job-20' THEN 'node-dead' END
		WHERE id IN ('job-10', 'job-20', 'job-30')`)
	if err != nil {
		t.Fatal(err)
	}
	setLive(t, s, "node-live", true)
	setLive(t, s, "node-dead", false)
	if _, err := s.Pool().Exec(ctx, "ANALYZE sync_jobs"); err != nil {
		t.Fatal(err)
	}

	before := s.Statements()
	orphans, err := s.Jobs().Orphans(100)
	if n := s.Statements() - before; n != 1 {
		t.Errorf("Orphans sent %d statements, want 1", n)
	}
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range orphans {
		got = append(got, o.AccountID+"/"+o.ID+" "+o.Runner)
	}
	if g, want := strings.Join(got, ", "), "acct-20/job-20 node-dead, acct-30/job-30 "; g != want {
		t.Errorf("orphans %q, want %q", g, want)
	}

	rows, err := s.Pool().Query(ctx, "EXPLAIN "+pgstore.OrphansSQL, 100)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if p := strings.Join(plan, "\n"); !strings.Contains(p, "sync_jobs_finalizing") || strings.Contains(p, "Seq Scan on sync_jobs") {
		t.Errorf("the look for orphans does not read the index of the jobs being finalized:\n%s", p)
	}
}
