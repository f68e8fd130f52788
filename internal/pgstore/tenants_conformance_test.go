package pgstore_test

import (
	"context"
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

// TestJobsCluster runs the suite of jobs shared by the nodes of a cluster:
// each node a Store of its own on one database, a node live or dead as its
// row of cluster_nodes says, written here as a heartbeat would.
func TestJobsCluster(t *testing.T) {
	syncjobstest.RunCluster(t, func(t *testing.T) syncjobstest.Cluster {
		_, url := localpg.Shared(t)
		admin := open(t, url, pgstore.Options{MaxConns: 2})
		return syncjobstest.Cluster{
			Node: func() (graph.Graph, syncjobs.Store) {
				s := open(t, url, pgstore.Options{MaxConns: 4})
				return s, s.Jobs()
			},
			SetLive: func(node string, live bool) { setLive(t, admin, node, live) },
		}
	})
}

// setLive writes a node's row of cluster_nodes: a lease that lasts an
// hour, or one that ended a second ago.
func setLive(t *testing.T, s *pgstore.Store, node string, live bool) {
	t.Helper()
	expires := "now() - interval '1 second'"
	if live {
		expires = "now() + interval '1 hour'"
	}
	_, err := s.Pool().Exec(context.Background(), `INSERT INTO cluster_nodes (node, name, addr, started_at, renewed_at, expires_at)
		VALUES ($1, $1, '127.0.0.1:0', now(), now(), `+expires+`)
		ON CONFLICT (node) DO UPDATE SET renewed_at = now(), expires_at = excluded.expires_at`, node)
	if err != nil {
		t.Fatal(err)
	}
}
