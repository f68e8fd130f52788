package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// backend is the storage j1ds serve runs on, the embedded store in the
// data directory or PostgreSQL, as the rest of j1ds uses it.
type backend struct {
	graph    graph.Graph
	log      changelog.Reader
	accounts accounts.Store
	jobs     syncjobs.Store
	settings interface {
		settings.Store
		stream.Checkpoint
	}
	// ready reports why the backend cannot serve requests now; nil when
	// it always can.
	ready func() error
	// unavailable reports whether an error of the stores means that their
	// database cannot be reached; nil when there is no database to reach.
	unavailable func(error) bool
	// where names the storage for the log, without secrets.
	where slog.Attr
	close func() error
}

// openPebble opens the embedded store in the data directory.
func openPebble(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*backend, error) {
	store, err := pebblestore.Open(filepath.Join(cfg.Data, "graph"), pebblestore.Options{
		Retention:    cfg.retention(),
		MinFreeBytes: cfg.MinFreeBytes,
		FreeSpace:    cfg.Test.FreeSpace,
		Logger:       log,
		Registerer:   reg,
	})
	var locked *pebblestore.LockedError
	if errors.As(err, &locked) {
		return nil, fmt.Errorf("data directory %s is in use by another j1ds (%s holds the lock of its graph store): stop that j1ds first, or pass another --data to run a second one",
			cfg.Data, locked.Holder())
	}
	if err != nil {
		return nil, err
	}
	return &backend{
		graph: store, log: store, accounts: store.Accounts(), jobs: store.Jobs(), settings: store.Settings(),
		where: slog.String("data", cfg.Data), close: store.Close,
	}, nil
}

func (c *Config) retention() changelog.Retention {
	return changelog.Retention{MaxAge: c.LogRetention, MaxBytes: c.LogRetentionBytes, Interval: c.LogRetentionInterval}
}

// Waits between attempts to reach the database at start-up.
const (
	connectRetryMin = 500 * time.Millisecond
	connectRetryMax = 30 * time.Second
)

// readyTimeout bounds the readiness check's round trip to the database.
const readyTimeout = 2 * time.Second

// errDatabaseUnreachable is the reason /readyz gives while the database
// does not answer.
var errDatabaseUnreachable = errors.New("the database is unreachable: j1ds retries on its own and is ready again as soon as the database answers")

// openPostgres opens the PostgreSQL store at cfg.Store. While the
// database cannot be reached it tries again, backing off, until ctx ends;
// any other failure (a wrong password, a missing database, a schema newer
// than this binary) is returned at once. Errors never hold the password.
func openPostgres(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*pgstore.Store, *backend, error) {
	where := pgstore.RedactURL(cfg.Store)
	wait := connectRetryMin
	for attempt := 1; ; attempt++ {
		octx, cancel := context.WithTimeout(ctx, time.Minute)
		// A failed Open registers no metrics, so the next attempt can.
		store, err := pgstore.Open(octx, cfg.Store, pgstore.Options{Retention: cfg.retention(), Logger: log, Registerer: reg})
		cancel()
		if err == nil {
			b := &backend{
				graph: store, log: store, accounts: store.Accounts(), jobs: store.Jobs(), settings: store.Settings(),
				unavailable: pgstore.Unavailable,
				where:       slog.String("store", where),
				close:       store.Close,
			}
			b.ready = readiness(store, log)
			return store, b, nil
		}
		err = redactError(err, cfg.Store)
		if !pgstore.Unavailable(err) {
			return nil, nil, fmt.Errorf("open the database %s: %w", where, err)
		}
		if attempt&(attempt-1) == 0 { // 1, 2, 4, 8...: bounded log volume
			log.Warn("the database is unreachable; j1ds retries until it answers", slog.String("store", where),
				slog.Any("err", err), slog.Int("attempts", attempt), slog.Duration("retry_in", wait))
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("open the database %s: stopped while it was unreachable: %w", where, err)
		case <-t.C:
		}
		wait = min(2*wait, connectRetryMax)
	}
}

// readiness returns the readiness check of a PostgreSQL store: a round
// trip to the database within readyTimeout. A change between ready and
// not ready is logged, with the cause.
func readiness(store *pgstore.Store, log *slog.Logger) func() error {
	var last struct {
		sync.Mutex
		bad bool
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		err := store.Ping(ctx)
		if err != nil && ctx.Err() == nil {
			// A pooled connection the database closed fails once and is
			// dropped: the second round trip opens a new one.
			err = store.Ping(ctx)
		}
		last.Lock()
		changed := (err != nil) != last.bad
		last.bad = err != nil
		last.Unlock()
		switch {
		case err != nil && changed:
			log.Warn("not ready: the database is unreachable", slog.Any("err", err))
		case err == nil && changed:
			log.Info("ready: the database answers again")
		}
		if err != nil {
			return errDatabaseUnreachable
		}
		return nil
	}
}

// redactedError is an error whose text had a password taken out; it
// unwraps to the original, so errors.Is and errors.As still see it.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactError returns err with every password of the connection URL url
// replaced in its text.
func redactError(err error, url string) error {
	if err == nil {
		return nil
	}
	msg := pgstore.Redact(err.Error(), url)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
