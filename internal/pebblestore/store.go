package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/storemetrics"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// Retention bounds the transaction log; none when zero.
	Retention changelog.Retention
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Registerer receives the store's metrics; none are registered when nil.
	Registerer prometheus.Registerer
	// Pebble, when set, is used instead of PebbleOptions().
	Pebble *pebble.Options
	// MinFreeBytes is the free space of the data directory below which
	// writes fail with ErrDiskFull; DefaultMinFreeBytes when zero, none
	// when negative.
	MinFreeBytes int64
	// FreeSpace reports a directory's free bytes (tests); statfs when nil.
	FreeSpace func(dir string) (uint64, error)
}

// Store is the embedded backend: the graph of every account, its indexes
// and transaction log, accounts and keys, sync jobs, settings and stream
// states, all in one Pebble database.
type Store struct {
	db      *pebble.DB
	space   *spaceGuard
	now     func() time.Time
	log     *slog.Logger
	ret     changelog.Retention
	metrics *storemetrics.Metrics

	lsn      atomic.Uint64 // last LSN handed out
	logBytes atomic.Int64  // bytes of retained log entries
	truncMax atomic.Uint64 // highest LSN removed by retention

	mu struct {
		sync.Mutex
		accounts map[string]*accountState
		closed   bool
	}

	// Subscribers are called after each durable commit that logged
	// changes (Subscribe).
	changelog.Subscribers

	accounts *Accounts
	jobs     *Jobs
	settings *Settings

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ graph.Graph      = (*Store)(nil)
	_ changelog.Reader = (*Store)(nil)
)

// Settings returns the Data Streaming settings and the exporter's
// checkpoint (stream.Checkpoint) kept in the store.
func (s *Store) Settings() *Settings { return s.settings }

// accountState is the in-memory state of one account's log.
type accountState struct {
	// txn serialises the transactions of the account; it guards lastCommit.
	txn        sync.Mutex
	lastCommit int64 // µs

	mu struct {
		sync.Mutex
		durable   uint64        // highest LSN of the account known synced
		truncated uint64        // highest LSN of the account removed by retention
		changed   chan struct{} // closed when durable advances
	}
}

// PebbleOptions returns the engine options the store opens with (the
// bench measures raw Pebble with them and with Pebble's defaults).
//   - Bloom filters on every level make the existence check of an upserted
//     object cheap when it misses, which is every create.
//   - MinLZ block compression, which needs the newest table format, chosen
//     for its cheaper decompression of the log the exporter reads. Not
//     settled: in some bench runs raw writes with these options were up to
//     a quarter slower than with Pebble's defaults, in others not.
//   - A 64 MiB block cache.
func PebbleOptions() *pebble.Options {
	o := &pebble.Options{FormatMajorVersion: pebble.FormatNewest, CacheSize: 64 << 20}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].Compression = func() *sstable.CompressionProfile { return sstable.MinLZCompression }
	}
	return o
}

// Open opens (creating if needed) the store in dir and starts its
// retention loop. Close stops it.
func Open(dir string, o Options) (*Store, error) {
	popts := o.Pebble
	if popts == nil {
		popts = PebbleOptions()
	}
	if popts.Logger == nil {
		popts.Logger = pebbleLogger{o.Logger}
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		if le := lockedError(dir, err); le != nil {
			return nil, fmt.Errorf("open graph store: %w", le)
		}
		return nil, fmt.Errorf("open graph store %s: %w", dir, err)
	}
	s := &Store{db: db, now: o.Now, log: o.Logger, ret: o.Retention.WithDefaults()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.mu.accounts = make(map[string]*accountState)
	s.metrics = newMetrics(o.Registerer, s)
	if o.MinFreeBytes >= 0 {
		s.space = &spaceGuard{dir: dir, min: uint64(o.MinFreeBytes), free: o.FreeSpace, now: s.now}
		if s.space.min == 0 {
			s.space.min = DefaultMinFreeBytes
		}
		if s.space.free == nil {
			s.space.free = statfsFree
		}
	}
	if err := s.recover(); err != nil {
		db.Close()
		return nil, err
	}
	s.accounts = &Accounts{db: db, now: s.now, locks: newAccountLocks()}
	s.jobs = &Jobs{s: s, db: db}
	s.settings = newSettings(db)
	if err := s.settings.upgrade(); err != nil {
		db.Close()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.ret.MaxAge > 0 || s.ret.MaxBytes > 0 {
		s.wg.Add(1)
		go s.retentionLoop()
	}
	return s, nil
}

// recover restores the LSN counter and the retained log size.
func (s *Store) recover() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famGlobal}, UpperBound: []byte{famGlobal + 1}})
	if err != nil {
		return fmt.Errorf("recover log: %w", err)
	}
	defer it.Close()
	var last uint64
	var bytes int64
	for it.First(); it.Valid(); it.Next() {
		last = binary.BigEndian.Uint64(it.Key()[1:])
		g, err := decodeGlobal(it.Value())
		if err != nil {
			return fmt.Errorf("recover log at lsn %d: %w", last, err)
		}
		bytes += int64(g.size)
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("recover log: %w", err)
	}
	if v, closer, err := s.db.Get(globalTruncKey); err == nil {
		t := binary.BigEndian.Uint64(v)
		s.truncMax.Store(t)
		last = max(last, t)
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("recover log: %w", err)
	}
	s.lsn.Store(last)
	s.logBytes.Store(bytes)
	return nil
}

// Close stops background work and closes the database.
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
	return s.db.Close()
}

// CheckSpace returns a *DiskFullError when the data directory is below its
// free-space reserve; other packages call it before writes of their own.
func (s *Store) CheckSpace() error { return s.space.check() }

// DB returns the underlying database, for what measures or inspects the
// store below its interfaces: the bench's raw Pebble baseline and
// compaction, and tests of the key layout.
func (s *Store) DB() *pebble.DB { return s.db }

// account returns the state of an account, loading it on first use.
func (s *Store) account(id string) (*accountState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, graph.ErrClosed
	}
	if st, ok := s.mu.accounts[id]; ok {
		return st, nil
	}
	st := &accountState{}
	st.mu.changed = make(chan struct{})
	// The last entry gives the end and the last commit time.
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(id, 0), UpperBound: logKey(id, ^uint64(0))})
	if err != nil {
		return nil, fmt.Errorf("load account %s: %w", id, err)
	}
	if it.Last() {
		st.mu.durable = binary.BigEndian.Uint64(it.Key()[len(it.Key())-8:])
		h, err := decodeEntryHeader(it.Value())
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("load account %s: last log entry: %w", id, err)
		}
		st.lastCommit = h.commitTime
	}
	err = it.Close()
	if err != nil {
		return nil, fmt.Errorf("load account %s: %w", id, err)
	}
	if v, closer, err := s.db.Get(truncKey(id)); err == nil {
		st.mu.truncated = binary.BigEndian.Uint64(v[:8])
		if ct := int64(binary.BigEndian.Uint64(v[8:16])); ct > st.lastCommit {
			st.lastCommit = ct
		}
		if st.mu.truncated > st.mu.durable {
			st.mu.durable = st.mu.truncated
		}
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("load account %s: %w", id, err)
	}
	s.mu.accounts[id] = st
	return st, nil
}

// Update runs fn as one transaction on account's graph: every object write
// fn makes, the log entry holding their after-images and any extra keys set
// with txn.Set are committed in one synced, atomic batch. If fn returns an
// error nothing is written. Transactions of one account run one at a time;
// transactions of different accounts run concurrently and share fsyncs.
func (s *Store) Update(account string, fn func(graph.Txn) error) (graph.Commit, error) {
	return s.update(account, func(tx *txn) error { return fn(tx) })
}

// update is Update with the backend's own transaction, whose Set and
// DeleteKey write other families of the store in the same batch (a sync
// job's progress).
func (s *Store) update(account string, fn func(*txn) error) (graph.Commit, error) {
	if err := accounts.ValidateID(account); err != nil {
		return graph.Commit{}, err
	}
	if err := s.space.check(); err != nil {
		return graph.Commit{}, err
	}
	st, err := s.account(account)
	if err != nil {
		return graph.Commit{}, err
	}
	start := time.Now()
	st.txn.Lock()
	locked := true
	defer func() {
		if locked {
			st.txn.Unlock()
		}
	}()
	micros := s.now().UnixMicro()
	if micros <= st.lastCommit {
		micros = st.lastCommit + 1
	}
	tx := &txn{s: s, account: account, batch: s.db.NewBatch(), micros: micros, ms: micros / 1000}
	err = fn(tx)
	defer tx.releaseBody()
	if tx.iter != nil {
		err = errors.Join(err, tx.iter.Close())
		tx.iter = nil
	}
	if err != nil {
		tx.batch.Close()
		return graph.Commit{}, err
	}
	if tx.changes == 0 && !tx.extra {
		tx.batch.Close()
		return graph.Commit{}, nil
	}
	c := graph.Commit{CommitTime: micros, Changes: tx.changes, Counts: tx.counts}
	var entrySize int
	if tx.changes > 0 {
		c.LSN = s.lsn.Add(1)
		// The entry is written into the batch in place: it is the
		// transaction's largest value, and copies of it showed up.
		var hdr [2 + 3*binary.MaxVarintLen64]byte
		h := appendEntryHeader(hdr[:0], micros, tx.changes, len(tx.lines))
		key := logKey(account, c.LSN)
		entrySize = len(h) + len(tx.body) + len(tx.lines)
		op := tx.batch.SetDeferred(len(key), entrySize)
		copy(op.Key, key)
		n := copy(op.Value, h)
		n += copy(op.Value[n:], tx.body)
		copy(op.Value[n:], tx.lines)
		if err := op.Finish(); err != nil {
			tx.batch.Close()
			return graph.Commit{}, fmt.Errorf("write log entry: %w", err)
		}
		if err := tx.batch.Set(globalKey(c.LSN), encodeGlobal(micros, entrySize, account), nil); err != nil {
			tx.batch.Close()
			return graph.Commit{}, fmt.Errorf("write log index: %w", err)
		}
	}
	// Apply makes the batch visible to the next transaction of this account
	// at once; the fsync is awaited after the lock is released, so
	// concurrent transactions, of this account too, share it.
	if err := s.db.ApplyNoSyncWait(tx.batch, pebble.Sync); err != nil {
		tx.batch.Close()
		return graph.Commit{}, fmt.Errorf("commit transaction: %w", err)
	}
	if c.LSN > 0 {
		st.lastCommit = micros
	}
	st.txn.Unlock()
	locked = false
	err = tx.batch.SyncWait()
	tx.batch.Close()
	if err != nil {
		return graph.Commit{}, fmt.Errorf("sync transaction: %w", err)
	}
	if c.LSN > 0 {
		s.logBytes.Add(int64(entrySize))
		st.advance(c.LSN)
		s.metrics.ObserveCommit(tx.counts, time.Since(start))
		s.Notify(changelog.CommitEvent{Account: account, LSN: c.LSN, CommitTime: micros, Changes: tx.changes, Bytes: entrySize})
	}
	return c, nil
}

func (st *accountState) advance(lsn uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if lsn > st.mu.durable {
		st.mu.durable = lsn
		close(st.mu.changed)
		st.mu.changed = make(chan struct{})
	}
}

// pebbleLogger sends the engine's messages to slog, below info for its
// routine chatter.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log != nil {
		l.log.Debug(fmt.Sprintf(format, args...), slog.String("component", "pebble"))
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	if l.log != nil {
		l.log.Error(fmt.Sprintf(format, args...), slog.String("component", "pebble"))
	}
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.log != nil {
		l.log.Error(msg, slog.String("component", "pebble"))
	}
	panic(msg)
}
