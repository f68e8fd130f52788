package e2e

// The storage backends j1ds runs on in these tests: the embedded Pebble
// store in the data directory, and PostgreSQL (j1ds serve --store), each
// test on a fresh database of the test binary's shared server
// (internal/testbed/localpg). The stream, crash and fault tests run on
// both; what they check of the store (the bucket against the log, the
// stream state) they read through the same interfaces j1ds uses.

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/serve"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// backend is the store a j1ds under test runs on.
type backend string

const (
	pebbleBackend   backend = "pebble"
	postgresBackend backend = "postgres"
)

// onBackends runs test once per backend, as parallel subtests named after
// the backend.
func onBackends(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range []backend{pebbleBackend, postgresBackend} {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			test(t, b)
		})
	}
}

// config is streamConfig on backend b: for PostgreSQL, a fresh database
// (--store) and a data directory that must never be created, which the
// test checks when it ends.
func (b backend) config(t *testing.T, e *s3Env) serve.Config {
	t.Helper()
	cfg := streamConfig(t, e)
	if b == postgresBackend {
		_, dbURL := localpg.Shared(t)
		usePostgres(t, &cfg, dbURL)
	}
	return cfg
}

// usePostgres points cfg at the database at dbURL, with a data directory
// that must never be created, which the test checks when it ends.
func usePostgres(t *testing.T, cfg *serve.Config, dbURL string) {
	t.Helper()
	cfg.Store = dbURL
	cfg.Data = filepath.Join(t.TempDir(), "never-created")
	data := cfg.Data
	t.Cleanup(func() {
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("j1ds on PostgreSQL created the data directory %s (stat: %v)", data, err)
		}
	})
}

// storeView is the store of a j1ds, opened by a test: its log, accounts
// and settings, through the interfaces j1ds uses.
type storeView struct {
	log      changelog.Reader
	accounts accounts.Store
	settings settings.Store
	close    func() error
}

// openStore opens the store cfg names: the embedded store in its data
// directory, only while no j1ds runs on it, or the PostgreSQL database,
// also while one does. It is closed when the test ends, or by close.
func openStore(t *testing.T, cfg serve.Config) *storeView {
	t.Helper()
	var v *storeView
	if cfg.Store == "" {
		s, err := pebblestore.Open(filepath.Join(cfg.Data, "graph"), pebblestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v = &storeView{log: s, accounts: s.Accounts(), settings: s.Settings(), close: s.Close}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := pgstore.Open(ctx, cfg.Store, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		v = &storeView{log: s, accounts: s.Accounts(), settings: s.Settings(), close: s.Close}
	}
	closed := false
	closeOnce := v.close
	v.close = func() error {
		if closed {
			return nil
		}
		closed = true
		return closeOnce()
	}
	t.Cleanup(func() {
		if err := v.close(); err != nil {
			t.Error(err)
		}
	})
	return v
}
