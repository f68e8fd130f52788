package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog/changelogtest"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// The conformance suites of the graph and the change log, on PostgreSQL.

func TestGraph(t *testing.T) { graphtest.Run(t, openConformance) }

func TestChangelog(t *testing.T) { changelogtest.Run(t, openConformance) }

// openConformance opens a store on a fresh database for the graph and
// change log suites.
func openConformance(t *testing.T, o graphtest.Options) (graphtest.Backend, graphtest.Reopen) {
	_, url := localpg.Shared(t)
	s, reopen := reopenable(t, url, pgstore.Options{Now: o.Now, Retention: o.Retention})
	return s, func() graphtest.Backend { return reopen() }
}

// reopenable opens a store on the database at url, and returns it with a
// function that closes the store open last and opens the database again,
// as a restart does. The store open last is closed with the test.
func reopenable(t *testing.T, url string, o pgstore.Options) (*pgstore.Store, func() *pgstore.Store) {
	t.Helper()
	open := func() *pgstore.Store {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := pgstore.Open(ctx, url, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s, func() *pgstore.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open()
		return s
	}
}
