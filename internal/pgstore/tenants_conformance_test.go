package pgstore_test

import (
	"testing"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/accounts/accountstest"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/settings/settingstest"
	"github.com/j1ds/j1ds/internal/syncjobs"
	"github.com/j1ds/j1ds/internal/syncjobs/syncjobstest"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// The conformance suites of accounts, sync jobs and settings, on
// PostgreSQL: each test case on a fresh database.

func TestAccounts(t *testing.T) {
	accountstest.Run(t, func(t *testing.T) accounts.Store {
		_, url := localpg.Shared(t)
		s, _ := reopenable(t, url, pgstore.Options{})
		return s.Accounts()
	})
}

func TestJobs(t *testing.T) {
	syncjobstest.Run(t, func(t *testing.T) (graph.Graph, syncjobs.Store, syncjobstest.Reopen) {
		_, url := localpg.Shared(t)
		s, reopen := reopenable(t, url, pgstore.Options{})
		return s, s.Jobs(), func() (graph.Graph, syncjobs.Store) {
			s := reopen()
			return s, s.Jobs()
		}
	})
}

func TestSettings(t *testing.T) {
	settingstest.Run(t, func(t *testing.T) settingstest.Backend {
		_, url := localpg.Shared(t)
		s, reopen := reopenable(t, url, pgstore.Options{})
		return settingsBackend(s, reopen)
	})
}

func settingsBackend(s *pgstore.Store, reopen func() *pgstore.Store) settingstest.Backend {
	return settingstest.Backend{
		Settings:   s.Settings(),
		Checkpoint: s.Settings(),
		Reopen:     func() settingstest.Backend { return settingsBackend(reopen(), reopen) },
	}
}
