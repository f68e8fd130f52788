package pebblestore_test

import (
	"testing"

	"github.com/j1ds/j1ds/internal/changelog/changelogtest"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

// openConformance opens a store in a fresh directory for the graph and
// change log suites. A restart closes the store and opens its directory
// again.
func openConformance(t *testing.T, o graphtest.Options) (graphtest.Backend, graphtest.Reopen) {
	dir := t.TempDir()
	opts := pebblestore.Options{Now: o.Now, Retention: o.Retention}
	open := func() *pebblestore.Store {
		s, err := pebblestore.Open(dir, opts)
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
	reopen := func() graphtest.Backend {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open()
		return s
	}
	return s, reopen
}

func TestGraph(t *testing.T) { graphtest.Run(t, openConformance) }

func TestChangelog(t *testing.T) { changelogtest.Run(t, openConformance) }
