package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Retention bounds the transaction log; none when zero.
	Retention changelog.Retention
	// PartitionPeriod is how long one partition of the log takes commits
	// before the next opens; DefaultPartitionPeriod when zero. Retention
	// drops a partition whole once all of it is past MaxAge.
	PartitionPeriod time.Duration
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer receives the store's metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// MaxConns bounds the connection pool; DefaultMaxConns when zero.
	MaxConns int32
}

// DefaultPartitionPeriod is the time one log partition takes commits.
const DefaultPartitionPeriod = time.Hour

// DefaultMaxConns is the size of the connection pool when Options.MaxConns
// is zero.
const DefaultMaxConns = 16

// Store is the PostgreSQL backend: the graph of every account, its
// transaction log, accounts and keys, sync jobs, settings and stream
// states, all in one database.
type Store struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	log    *slog.Logger
	ret    changelog.Retention
	period time.Duration

	metrics *metrics
	lastLSN atomic.Uint64 // the last LSN this process committed
	// bcast sends this process's commits to the other nodes; nil until
	// Listen.
	bcast atomic.Pointer[broadcaster]
	// statements counts what this process sends to the database.
	statements *statementCounter

	// updateSlots bounds the settings updates running at once to half the
	// pool: an update holds a connection while its function may read the
	// store on another (settings.Service.Apply reads the log's end), so
	// updates alone must never take every connection.
	updateSlots chan struct{}

	mu struct {
		sync.Mutex
		accounts map[string]*accountState
		// doubtful holds, per account, the end of its log before a
		// commit that failed in a way that may have committed.
		doubtful map[string]uint64
		closed   bool
	}

	// Subscribers are called after each commit of this process that
	// logged changes (Subscribe).
	changelog.Subscribers

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ graph.Graph      = (*Store)(nil)
	_ changelog.Reader = (*Store)(nil)
)

// accountState is what this process knows of an account's log, for Wait.
type accountState struct {
	mu      sync.Mutex
	durable uint64        // highest LSN known committed
	changed chan struct{} // closed when durable advances
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string), creates or upgrades its schema, and starts the
// retention loop. Close stops it.
func Open(ctx context.Context, url string, o Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL connection string: %w (expected postgres://USER@HOST:PORT/DATABASE?sslmode=...)", err)
	}
	cfg.MaxConns = o.MaxConns
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "j1ds"
	counter := &statementCounter{}
	cfg.ConnConfig.Tracer = counter
	// pgxpool's health check (pgx's default: a connection idle for more
	// than a second is pinged when acquired) goes below the tracer: it is
	// counted here.
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool {
		if p.IdleDuration > time.Second {
			counter.n.Add(1)
			return true
		}
		return false
	}
	// Statements are prepared once per connection and described from the
	// cache afterwards.
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	s := &Store{pool: pool, statements: counter, now: o.Now, log: o.Logger, ret: o.Retention.WithDefaults(), period: o.PartitionPeriod}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.period <= 0 {
		s.period = DefaultPartitionPeriod
	}
	s.mu.accounts = make(map[string]*accountState)
	s.mu.doubtful = make(map[string]uint64)
	s.updateSlots = make(chan struct{}, max(1, cfg.MaxConns/2))
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	if err := migrate(ctx, pool, s.log); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.rollPartition(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	// Registered once open, so a failed Open can be tried again on the
	// same registry.
	s.metrics = newMetrics(o.Registerer, s)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go s.retentionLoop()
	go s.watchDoubtful()
	return s, nil
}

// Close stops background work and closes the connections.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.pool.Close()
	return nil
}

// Ping makes a round trip to the database (counted with the statements).
func (s *Store) Ping(ctx context.Context) error {
	s.statements.n.Add(1)
	return s.pool.Ping(ctx)
}

// Pool returns the store's connection pool, for what measures or inspects
// the database below the store's interfaces (the bench's raw baseline,
// tests of the schema).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// CheckSpace returns nil: the database, not a local disk, holds the data,
// and a full database answers the write itself with an error.
func (s *Store) CheckSpace() error { return nil }

// opCtx returns the context of one store operation: the interfaces take
// none, so an operation is bounded by the store's life and a timeout.
func (s *Store) opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, opTimeout)
}

// opTimeout bounds one operation on the database (a transaction included),
// so a database that stops answering fails calls instead of hanging them.
const opTimeout = 2 * time.Minute

func (s *Store) closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.closed
}

// account returns what this process knows of an account's log.
func (s *Store) account(id string) *accountState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.mu.accounts[id]
	if !ok {
		st = &accountState{changed: make(chan struct{})}
		s.mu.accounts[id] = st
	}
	return st
}

func (st *accountState) advance(lsn uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if lsn > st.durable {
		st.durable = lsn
		close(st.changed)
		st.changed = make(chan struct{})
	}
}

func (s *Store) notify(ev changelog.CommitEvent) {
	s.account(ev.Account).advance(ev.LSN)
	s.Notify(ev)
}

// wrap names the operation in a database error and maps a closed store.
func (s *Store) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed() && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", what, graph.ErrClosed)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// doubt records that a commit of account failed in a way that may have
// committed, its log having ended at before.
func (s *Store) doubt(account string, before uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.mu.doubtful[account]; !ok || before < b {
		s.mu.doubtful[account] = before
	}
}

// doubtPoll is how often watchDoubtful looks at the accounts in doubt.
const doubtPoll = time.Second

// watchDoubtful settles the commits in doubt: once the database answers,
// an entry that did commit is reported to subscribers like any other, so
// the exporter does not leave it waiting for the account's next commit.
func (s *Store) watchDoubtful() {
	defer s.wg.Done()
	t := time.NewTicker(doubtPoll)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		doubtful := maps.Clone(s.mu.doubtful)
		s.mu.Unlock()
		for account, before := range doubtful {
			ev, ok, err := s.since(account, before)
			if err != nil {
				continue // still unreachable: next time
			}
			s.mu.Lock()
			if s.mu.doubtful[account] == before {
				delete(s.mu.doubtful, account)
			}
			s.mu.Unlock()
			if ok {
				s.log.Info("a commit whose answer was lost did commit; its entries are exported", slog.String("account", account), slog.Uint64("lsn", ev.LSN))
				s.notify(ev)
				s.publish(ev)
			}
		}
	}
}

// since returns one event for all of an account's entries after an LSN:
// the last LSN, the first commit time, and their changes and bytes.
func (s *Store) since(account string, after uint64) (changelog.CommitEvent, bool, error) {
	ctx, cancel := s.opCtx()
	defer cancel()
	var last, first, changes, size *int64
	err := s.pool.QueryRow(ctx, `SELECT max(lsn), min(commit_time), sum(count)::bigint, sum(bytes)::bigint FROM log
		WHERE account = $1 AND lsn > $2`, account, int64(after)).Scan(&last, &first, &changes, &size)
	if err != nil || last == nil {
		return changelog.CommitEvent{}, false, err
	}
	return changelog.CommitEvent{Account: account, LSN: uint64(*last), CommitTime: *first, Changes: int(*changes), Bytes: int(*size)}, true, nil
}
