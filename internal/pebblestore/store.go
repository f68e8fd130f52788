package pebblestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
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

// Store is the embedded graph: objects of every account, their indexes and
// the transaction log, all in one Pebble database.
type Store struct {
	db      *pebble.DB
	space   *spaceGuard
	now     func() time.Time
	log     *slog.Logger
	ret     changelog.Retention
	metrics *metrics

	lsn      atomic.Uint64 // last LSN handed out
	logBytes atomic.Int64  // bytes of retained log entries
	truncMax atomic.Uint64 // highest LSN removed by retention

	mu struct {
		sync.Mutex
		accounts map[string]*accountState
		closed   bool
	}

	// subscribers are called after each durable commit that logged
	// changes; the list is replaced, never changed, so the commit path
	// reads it without a lock.
	subscribers atomic.Pointer[[]*subscriber]
	subMu       sync.Mutex // serialises changes to subscribers

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

// txn is one atomic transaction on one account's graph. Reads see the
// transaction's own writes. It is valid only inside the function given to
// Update.
type txn struct {
	s       *Store
	account string
	batch   *pebble.Batch
	micros  int64
	ms      int64
	changes int    // changes logged
	body    []byte // the log entry's changes but their records (see appendChangeMeta)
	lines   []byte // the log entry's record lines
	counts  graph.Counts
	extra   bool
	buf     []byte // scratch: an object's stored value, its content hash input
	kbuf    []byte // scratch: a key (see key)
	// pending holds the objects written by the transaction (stored value),
	// so reads of them need not search the batch.
	pending map[string][]byte
	// adjacent holds the transaction's changes to the relationships
	// attached to entities.
	adjacent adjacency
	// iter reads stored objects for the whole transaction (opened on the
	// first read). Unlike DB.Get it consults the bloom filters of the
	// bottom level too, where most of a settled store lives: the existence
	// check of a create then reads no data block.
	iter *pebble.Iterator
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
		s.metrics.observeCommit(tx, time.Since(start))
		if subs := s.subscribers.Load(); subs != nil {
			ev := changelog.CommitEvent{Account: account, LSN: c.LSN, CommitTime: micros, Changes: tx.changes, Bytes: entrySize}
			for _, sub := range *subs {
				sub.fn(ev)
			}
		}
	}
	return c, nil
}

// subscriber is one registration of Subscribe.
type subscriber struct{ fn func(changelog.CommitEvent) }

// Subscribe calls fn after every durable commit that logged changes, until
// cancel is called. fn runs on the committing goroutine, in no particular
// order across accounts, and must not block: record and return. Commits of
// one account may be reported out of order when they finish concurrently;
// LSN tells them apart.
func (s *Store) Subscribe(fn func(changelog.CommitEvent)) (cancel func()) {
	sub := &subscriber{fn: fn}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	var next []*subscriber
	if cur := s.subscribers.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, sub)
	s.subscribers.Store(&next)
	return func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		cur := s.subscribers.Load()
		if cur == nil {
			return
		}
		kept := make([]*subscriber, 0, len(*cur))
		for _, x := range *cur {
			if x != sub {
				kept = append(kept, x)
			}
		}
		s.subscribers.Store(&kept)
	}
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

// Account returns the account the transaction writes.
func (tx *txn) Account() string { return tx.account }

// CommitTime returns the transaction's commit time.
func (tx *txn) CommitTime() time.Time { return time.UnixMicro(tx.micros) }

// Counts returns the tally of the transaction's changes so far.
func (tx *txn) Counts() graph.Counts { return tx.counts }

// Changes returns how many object changes the transaction holds so far.
func (tx *txn) Changes() int { return tx.changes }

// Set writes an extra key in the same atomic batch. It is for other
// packages' key families (a sync job's progress, say); it must never touch
// the graph's own families.
func (tx *txn) Set(key, value []byte) error {
	if isGraphFamily(key) {
		return fmt.Errorf("txn set: key family %q belongs to the graph", key[0])
	}
	tx.extra = true
	return tx.batch.Set(key, value, nil)
}

// DeleteKey removes an extra key in the same atomic batch; see Set.
func (tx *txn) DeleteKey(key []byte) error {
	if isGraphFamily(key) {
		return fmt.Errorf("txn delete: key family %q belongs to the graph", key[0])
	}
	tx.extra = true
	return tx.batch.Delete(key, nil)
}

func isGraphFamily(key []byte) bool {
	if len(key) == 0 {
		return true
	}
	switch key[0] {
	case famObject, famType, famScope, famAdjacent, famLog, famGlobal, famTrunc, famMeta:
		return true
	}
	return false
}

type stored struct {
	obj  graph.Object
	hash [16]byte
}

func (tx *txn) load(id string) (stored, bool, error) {
	v, ok := tx.pending[id]
	if !ok {
		if tx.iter == nil {
			it, err := tx.s.db.NewIter(&pebble.IterOptions{UseL6Filters: true})
			if err != nil {
				return stored{}, false, fmt.Errorf("read object %s: %w", id, err)
			}
			tx.iter = it
		}
		k := objectKey(tx.account, id)
		if !tx.iter.SeekPrefixGE(k) || !bytes.Equal(tx.iter.Key(), k) {
			if err := tx.iter.Error(); err != nil {
				return stored{}, false, fmt.Errorf("read object %s: %w", id, err)
			}
			return stored{}, false, nil
		}
		raw, err := tx.iter.ValueAndErr()
		if err != nil {
			return stored{}, false, fmt.Errorf("read object %s: %w", id, err)
		}
		// The decoded object refers to its bytes (property values), which
		// Pebble reuses once the iterator moves: copy them.
		v = append([]byte(nil), raw...)
	}
	var st stored
	copy(st.hash[:], v[:16])
	obj, err := graph.DecodeObject(v[16:])
	st.obj = obj
	return st, err == nil, err
}

// Get returns an object as the transaction sees it, deleted objects too.
func (tx *txn) Get(id string) (graph.Object, error) {
	st, ok, err := tx.load(id)
	if err != nil {
		return graph.Object{}, err
	}
	if !ok {
		return graph.Object{}, graph.ErrNotFound
	}
	return st.obj, nil
}

// resolveEnd finds the live entity a relationship end names, by id or by
// key within a scope.
func (tx *txn) resolveEnd(idField, id, keyField, key, scope string) (string, string, error) {
	field, value := idField, id
	if id == "" {
		field, value = keyField, key
		id = graph.ObjectID(tx.account, scope, key)
	}
	st, ok, err := tx.load(id)
	if err != nil {
		return "", "", err
	}
	if !ok || st.obj.Deleted || st.obj.Kind != graph.KindEntity {
		return "", "", &graph.EndpointError{Field: field, Value: value}
	}
	return st.obj.ID, st.obj.Key, nil
}

// Upsert creates the object, or updates it when its content differs, or
// does nothing when the upload matches what is stored (op 0). The object's
// id comes from its scope and key. A deleted object is created again with
// the next version.
func (tx *txn) Upsert(in *graph.Input) (graph.Op, graph.Object, error) {
	if err := in.Validate(); err != nil {
		return 0, graph.Object{}, err
	}
	if in.Scope == "" {
		return 0, graph.Object{}, inputErr("_scope", "is required")
	}
	if in.Source == "" {
		return 0, graph.Object{}, inputErr("_source", "is required")
	}
	o := graph.Object{
		Kind: in.Kind, Key: in.Key, Type: in.Type, Class: in.Class, Scope: in.Scope,
		Source: in.Source, AccountID: tx.account, Props: in.Props,
		ID: graph.ObjectID(tx.account, in.Scope, in.Key),
	}
	if in.Kind == graph.KindRelationship {
		var err error
		fromScope, toScope := in.FromScope, in.ToScope
		if fromScope == "" {
			fromScope = in.Scope
		}
		if toScope == "" {
			toScope = in.Scope
		}
		if o.FromID, o.FromKey, err = tx.resolveEnd("_fromEntityId", in.FromID, "_fromEntityKey", in.FromKey, fromScope); err != nil {
			return 0, graph.Object{}, err
		}
		if o.ToID, o.ToKey, err = tx.resolveEnd("_toEntityId", in.ToID, "_toEntityKey", in.ToKey, toScope); err != nil {
			return 0, graph.Object{}, err
		}
	}
	var hash [16]byte
	hash, tx.buf = graph.ContentHash(tx.buf, &o)
	old, found, err := tx.load(o.ID)
	if err != nil {
		return 0, graph.Object{}, err
	}
	op := graph.OpCreate
	o.Version, o.CreatedOn, o.BeginOn = 1, tx.ms, tx.ms
	if found {
		if old.obj.Kind != o.Kind {
			return 0, graph.Object{}, fmt.Errorf("%w: %s %s exists as %s %s in scope %s", graph.ErrKindConflict, "_key", quote(o.Key), "a", old.obj.Kind, quote(o.Scope))
		}
		if !old.obj.Deleted && old.hash == hash {
			return 0, old.obj, nil
		}
		o.Version = old.obj.Version + 1
		if !old.obj.Deleted {
			op = graph.OpUpdate
			o.CreatedOn = old.obj.CreatedOn
			if err := tx.unindex(&old.obj); err != nil {
				return 0, graph.Object{}, err
			}
		}
	}
	if err := tx.put(op, &o, hash); err != nil {
		return 0, graph.Object{}, err
	}
	if err := tx.index(&o); err != nil {
		return 0, graph.Object{}, err
	}
	return op, o, nil
}

// Delete soft-deletes the object with id: it keeps its properties, gains
// _deleted and _endOn and the next version. Deleting an entity deletes its
// live relationships in the same transaction. It reports false when there
// is no live object with that id.
func (tx *txn) Delete(id string) (bool, error) {
	st, ok, err := tx.load(id)
	if err != nil || !ok || st.obj.Deleted {
		return false, err
	}
	o := st.obj
	if o.Kind == graph.KindEntity {
		// The relationships attached: those stored, as this transaction
		// changed them (the batch is not indexed: it cannot be read).
		var rels []string
		p := adjacentKey(tx.account, o.ID, "")
		it, err := tx.s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: PrefixEnd(p)})
		if err != nil {
			return false, fmt.Errorf("find relationships of %s: %w", o.ID, err)
		}
		for it.First(); it.Valid(); it.Next() {
			if r := string(it.Key()[len(p):]); !tx.adjacent.removed(o.ID, r) {
				rels = append(rels, r)
			}
		}
		if err := it.Close(); err != nil {
			return false, fmt.Errorf("find relationships of %s: %w", o.ID, err)
		}
		rels = append(rels, tx.adjacent.added(o.ID)...)
		slices.Sort(rels)
		rels = slices.Compact(rels)
		for _, r := range rels {
			if _, err := tx.Delete(r); err != nil {
				return false, err
			}
		}
	}
	if err := tx.unindex(&o); err != nil {
		return false, err
	}
	o.Deleted, o.EndOn, o.Version = true, tx.ms, o.Version+1
	return true, tx.put(graph.OpDelete, &o, st.hash)
}

func (tx *txn) put(op graph.Op, o *graph.Object, hash [16]byte) error {
	b := append(tx.buf[:0], hash[:]...)
	b = o.AppendJSON(b)
	if len(b)-16 > graph.MaxObjectBytes {
		return inputErr("", "object %s is %d bytes encoded, more than the limit of %d", o.Key, len(b)-16, graph.MaxObjectBytes)
	}
	if err := tx.batch.Set(tx.key(appendObjectKey(tx.kbuf[:0], tx.account, o.ID)), b, nil); err != nil {
		return fmt.Errorf("write object %s: %w", o.ID, err)
	}
	if tx.pending == nil {
		tx.pending = make(map[string][]byte)
	}
	tx.pending[o.ID] = append([]byte(nil), b...)
	tx.buf = b
	if tx.body == nil {
		tx.body, tx.lines = getBody(), getBody()
	}
	start := len(tx.lines)
	tx.lines = graph.AppendRecord(tx.lines, op, o, b[16:])
	tx.body = appendChangeMeta(tx.body, op, o.Kind, o.ID, len(tx.lines)-start)
	tx.lines = append(tx.lines, '\n')
	tx.changes++
	tx.counts.Note(o.Kind, op)
	return nil
}

// adjacency records, per entity id, the relationship ids a transaction
// attached (true) or detached (false).
type adjacency map[string]map[string]bool

func (a *adjacency) set(entity, rel string, attached bool) {
	if *a == nil {
		*a = make(adjacency)
	}
	m := (*a)[entity]
	if m == nil {
		m = make(map[string]bool)
		(*a)[entity] = m
	}
	m[rel] = attached
}

func (a adjacency) removed(entity, rel string) bool {
	attached, ok := a[entity][rel]
	return ok && !attached
}

func (a adjacency) added(entity string) []string {
	var out []string
	for rel, attached := range a[entity] {
		if attached {
			out = append(out, rel)
		}
	}
	return out
}

// bodies recycles the buffers transactions encode their log entries in;
// buffers above maxPooledBody are left to the collector.
var bodies sync.Pool

const maxPooledBody = 4 << 20

func getBody() []byte {
	if b, ok := bodies.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 64<<10)
}

func (tx *txn) releaseBody() {
	for _, b := range [][]byte{tx.body, tx.lines} {
		if b != nil && cap(b) <= maxPooledBody {
			bodies.Put(&b)
		}
	}
	tx.body, tx.lines = nil, nil
}

// key keeps the grown scratch buffer of a key built in it and returns
// the key.
func (tx *txn) key(k []byte) []byte {
	tx.kbuf = k
	return k
}

func (tx *txn) index(o *graph.Object) error {
	b := tx.batch
	if err := b.Set(tx.key(appendTypeKey(tx.kbuf[:0], tx.account, o.Kind, o.Type, o.ID)), nil, nil); err != nil {
		return err
	}
	if err := b.Set(tx.key(appendScopeKey(tx.kbuf[:0], tx.account, o.Scope, o.Kind, o.ID)), []byte(o.Type), nil); err != nil {
		return err
	}
	if o.Kind == graph.KindRelationship {
		if err := b.Set(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.FromID, o.ID)), nil, nil); err != nil {
			return err
		}
		if err := b.Set(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.ToID, o.ID)), nil, nil); err != nil {
			return err
		}
		tx.adjacent.set(o.FromID, o.ID, true)
		tx.adjacent.set(o.ToID, o.ID, true)
	}
	return nil
}

func (tx *txn) unindex(o *graph.Object) error {
	b := tx.batch
	if err := b.Delete(tx.key(appendTypeKey(tx.kbuf[:0], tx.account, o.Kind, o.Type, o.ID)), nil); err != nil {
		return err
	}
	if err := b.Delete(tx.key(appendScopeKey(tx.kbuf[:0], tx.account, o.Scope, o.Kind, o.ID)), nil); err != nil {
		return err
	}
	if o.Kind == graph.KindRelationship {
		if err := b.Delete(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.FromID, o.ID)), nil); err != nil {
			return err
		}
		if err := b.Delete(tx.key(appendAdjacentKey(tx.kbuf[:0], tx.account, o.ToID, o.ID)), nil); err != nil {
			return err
		}
		tx.adjacent.set(o.FromID, o.ID, false)
		tx.adjacent.set(o.ToID, o.ID, false)
	}
	return nil
}

// Get returns the stored object with id and its JSON state as stored
// (metadata included); deleted objects are returned too.
func (s *Store) Get(account, id string) (graph.Object, []byte, error) {
	v, closer, err := s.db.Get(objectKey(account, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return graph.Object{}, nil, graph.ErrNotFound
	}
	if err != nil {
		return graph.Object{}, nil, fmt.Errorf("read object %s: %w", id, err)
	}
	defer closer.Close()
	raw := append([]byte(nil), v[16:]...)
	o, err := graph.DecodeObject(raw)
	return o, raw, err
}

// List returns up to limit live objects of a kind in an account, optionally
// of one type, in a stable order, as stored JSON. Pass the returned cursor
// to continue; it is empty after the last page.
func (s *Store) List(account string, kind graph.Kind, typ, cursor string, limit int) ([][]byte, string, error) {
	var prefix []byte
	if typ != "" {
		prefix = keyOf(famType, account, string(kind)+typ, "")
	} else {
		prefix = keyOf(famType, account, string(kind))
	}
	lower := prefix
	if cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(c) == 0 {
			return nil, "", graph.ErrBadCursor
		}
		lower = append(append(append([]byte(nil), prefix...), c...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: PrefixEnd(prefix)})
	if err != nil {
		return nil, "", fmt.Errorf("list objects: %w", err)
	}
	defer it.Close()
	var out [][]byte
	var last []byte
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		_, raw, err := s.Get(account, string(k[len(k)-idLen(k):]))
		if err != nil {
			return nil, "", err
		}
		out = append(out, raw)
		last = append(last[:0], k[len(prefix):]...)
	}
	var next string
	if it.Valid() {
		next = base64.RawURLEncoding.EncodeToString(last)
	}
	return out, next, it.Error()
}

// idLen returns the length of the id at the end of an index key: the part
// after the last NUL.
func idLen(k []byte) int {
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == 0 {
			return len(k) - i - 1
		}
	}
	return len(k)
}

// ScanScope calls fn for every live object of a kind in a scope whose id
// sorts after the given one (all when empty), in id order, with its id and
// type, reading a consistent snapshot. Writes made meanwhile are not seen.
// An error from fn stops the scan and is returned.
func (s *Store) ScanScope(account, scope string, kind graph.Kind, after string, fn func(id, typ string) error) error {
	p := keyOf(famScope, account, scope, string(kind))
	lower := p
	if after != "" {
		lower = append(append(append([]byte(nil), p...), after...), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: PrefixEnd(p)})
	if err != nil {
		return fmt.Errorf("scan scope %s: %w", scope, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(string(it.Key()[len(p):]), string(it.Value())); err != nil {
			return err
		}
	}
	return it.Error()
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

func inputErr(field, format string, args ...any) error {
	return &graph.InputError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// quote quotes a user's value for an error message, cut to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
