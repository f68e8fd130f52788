package pebblestore_test

import (
	"testing"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/accounts/accountstest"
	"github.com/j1ds/j1ds/internal/changelog/changelogtest"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/settings/settingstest"
	"github.com/j1ds/j1ds/internal/syncjobs"
	"github.com/j1ds/j1ds/internal/syncjobs/syncjobstest"
)

// The conformance suite of every interface the store implements, on
// Pebble.

func TestGraph(t *testing.T) { graphtest.Run(t, openConformance) }

func TestChangelog(t *testing.T) { changelogtest.Run(t, openConformance) }

func TestAccounts(t *testing.T) {
	accountstest.Run(t, func(t *testing.T) accounts.Store {
		s, _ := reopenable(t, t.TempDir(), pebblestore.Options{})
		return s.Accounts()
	})
}

func TestJobs(t *testing.T) {
	syncjobstest.Run(t, func(t *testing.T) (graph.Graph, syncjobs.Store, syncjobstest.Reopen) {
		s, reopen := reopenable(t, t.TempDir(), pebblestore.Options{})
		return s, s.Jobs(), func() (graph.Graph, syncjobs.Store) {
			s := reopen()
			return s, s.Jobs()
		}
	})
}

func TestSettings(t *testing.T) {
	settingstest.Run(t, func(t *testing.T) settingstest.Backend {
		return openSettings(t, t.TempDir())
	})
}

// openConformance opens a store in a fresh directory for the graph and
// change log suites.
func openConformance(t *testing.T, o graphtest.Options) (graphtest.Backend, graphtest.Reopen) {
	s, reopen := reopenable(t, t.TempDir(), pebblestore.Options{Now: o.Now, Retention: o.Retention})
	return s, func() graphtest.Backend { return reopen() }
}

// openSettings opens the store in dir for the settings suite.
func openSettings(t *testing.T, dir string) settingstest.Backend {
	s, reopen := reopenable(t, dir, pebblestore.Options{})
	return settingsBackend(s, reopen)
}

func settingsBackend(s *pebblestore.Store, reopen func() *pebblestore.Store) settingstest.Backend {
	return settingstest.Backend{
		Settings:   s.Settings(),
		Checkpoint: s.Settings(),
		Reopen:     func() settingstest.Backend { return settingsBackend(reopen(), reopen) },
	}
}

// reopenable opens a store in dir, and returns it with a function that
// closes the store open last and opens dir again, as a restart does. The
// store open last is closed with the test.
func reopenable(t *testing.T, dir string, o pebblestore.Options) (*pebblestore.Store, func() *pebblestore.Store) {
	t.Helper()
	open := func() *pebblestore.Store {
		s, err := pebblestore.Open(dir, o)
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
	return s, func() *pebblestore.Store {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open()
		return s
	}
}
