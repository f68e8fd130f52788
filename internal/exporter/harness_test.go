package exporter_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/settings"
)

// bucketStore is an in-memory object store standing in for S3 in these
// unit tests (the S3 protocol is tested against versitygw elsewhere). It
// records every completed object and can fail uploads.
type bucketStore struct {
	mu      sync.Mutex
	objects map[string][]byte // bucket/key → body
	puts    []string          // every stored key, in order, retries included
	fail    func(key string) error
	// storeThenFail stores the object and then reports an error, as when
	// the answer to a successful upload is lost.
	storeThenFail bool
}

func newBucketStore() *bucketStore { return &bucketStore{objects: map[string][]byte{}} }

// Object stores under the target's bucket (settings.Settings.Target is
// bucket/owner).
func (b *bucketStore) Object(ctx context.Context, target, key string) exporter.Object {
	bucket, _, _ := strings.Cut(target, "/")
	return &memObject{b: b, ctx: ctx, path: bucket + "/" + key, key: key}
}

type memObject struct {
	b         *bucketStore
	ctx       context.Context
	path, key string
	buf       bytes.Buffer
}

func (o *memObject) Write(p []byte) (int, error) { return o.buf.Write(p) }
func (o *memObject) Abort()                      {}
func (o *memObject) Close() error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	o.b.mu.Lock()
	defer o.b.mu.Unlock()
	if o.b.fail != nil {
		if err := o.b.fail(o.key); err != nil {
			if !o.b.storeThenFail {
				return err
			}
			o.b.objects[o.path] = bytes.Clone(o.buf.Bytes())
			o.b.puts = append(o.b.puts, o.path)
			return err
		}
	}
	o.b.objects[o.path] = bytes.Clone(o.buf.Bytes())
	o.b.puts = append(o.b.puts, o.path)
	return nil
}

// putCount is how many objects were stored, rewrites of a key included.
func (b *bucketStore) putCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.puts)
}

func (b *bucketStore) keys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ks []string
	for k := range b.objects {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// lines returns the decompressed record lines of every object of a bucket
// prefix, objects in key order.
func (b *bucketStore) lines(t *testing.T, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range b.keys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		b.mu.Lock()
		body := b.objects[k]
		b.mu.Unlock()
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s is not gzip: %v", k, err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if len(raw) == 0 || raw[len(raw)-1] != '\n' {
			t.Fatalf("%s does not end with a newline", k)
		}
		out = append(out, strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")...)
	}
	return out
}

// env is an exporter over a real store, on a fake clock that the store
// (commit times), the settings (status times) and the exporter share:
// time moves only when a test advances it.
type env struct {
	t     *testing.T
	clock *exporter.FakeClock
	store *pebblestore.Store
	st    *settings.Service
	dest  *bucketStore
	exp   *exporter.Exporter
	cfg   exporter.Config
	// wrap, when set, is the destination the exporter writes to, around
	// dest.
	wrap func(*bucketStore) exporter.Destination
	n    int
}

func newEnv(t *testing.T, cfg exporter.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, nil)
}

// newEnvWith is newEnv with the exporter writing to wrap(the bucket
// store) instead: a fault injector around it, say.
func newEnvWith(t *testing.T, cfg exporter.Config, wrap func(*exporter.FakeClock, *bucketStore) exporter.Destination) *env {
	t.Helper()
	clock := exporter.NewFakeClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	store, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Clock = clock
	e := &env{t: t, clock: clock, store: store, st: settings.New(store.Settings(), clock.Now), dest: newBucketStore(), cfg: cfg}
	if wrap != nil {
		e.wrap = func(b *bucketStore) exporter.Destination { return wrap(clock, b) }
	}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	var dest exporter.Destination = e.dest
	if e.wrap != nil {
		dest = e.wrap(e.dest)
	}
	x, err := exporter.New(e.store, e.store.Settings(), dest, e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := x.Open(); err != nil {
		e.t.Fatal(err)
	}
	e.exp = x
	e.t.Cleanup(func() { e.stop() })
}

func (e *env) stop() {
	if e.exp == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.exp.Close(ctx)
	e.exp = nil
}

// enable turns streaming on for account into bucket, as the settings API
// does after a passing connection test.
func (e *env) enable(account, bucket string) {
	e.t.Helper()
	if _, err := e.st.SaveTest(account, settings.ConnectionTest{OK: true, At: e.clock.Now(), BucketName: bucket, AWSAccountID: "111122223333"}); err != nil {
		e.t.Fatal(err)
	}
	e.apply(account, settings.Settings{Enabled: true, BucketName: bucket, AWSAccountID: "111122223333", RegionConfirmed: true})
}

func (e *env) apply(account string, s settings.Settings) {
	e.t.Helper()
	if _, err := e.st.Apply(account, s, func() (uint64, error) { return e.store.End(account) }); err != nil {
		e.t.Fatal(err)
	}
	if err := e.exp.Reload(account); err != nil {
		e.t.Fatal(err)
	}
}

// write commits one transaction of k entity changes and returns their
// record lines.
func (e *env) write(account string, k int) []string {
	e.t.Helper()
	raws := make([][]byte, k)
	for i := range raws {
		e.n++
		raws[i] = fmt.Appendf(nil, `{"_key":"user-key-%06d","_type":"test_user","_class":"User","n":%d}`, e.n%50, e.n)
	}
	return e.writeObjects(account, raws)
}

// writeObjects commits one transaction upserting the entities raws and
// returns their record lines as the log holds them.
func (e *env) writeObjects(account string, raws [][]byte) []string {
	e.t.Helper()
	_, err := e.store.Update(account, func(tx graph.Txn) error {
		for _, raw := range raws {
			in, err := graph.ParseObject(graph.KindEntity, raw)
			if err != nil {
				return err
			}
			in.Scope, in.Source = "s", "api"
			if _, _, err := tx.Upsert(&in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	end, _ := e.store.End(account)
	es, err := e.store.ReadLog(account, end-1, 1, 1<<30)
	if err != nil || len(es) != 1 {
		e.t.Fatalf("read back: %v", err)
	}
	var recs []string
	for _, c := range es[0].Changes {
		recs = append(recs, string(c.Record))
	}
	return recs
}

// waitFor polls cond until it holds or 20 s pass; the bound only stops a
// broken test, it asserts no timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// advanceTo moves the clock forward to at (not back when at has passed).
func (e *env) advanceTo(at time.Time) {
	if d := at.Sub(e.clock.Now()); d > 0 {
		e.clock.Advance(d)
	}
}

// settle waits until the exporter rests on the clock: no flush handed to
// a worker or running, and the scheduler blocked on its timer, set to when
// the first scheduled account is due (anywhere when none is). From there
// only advancing the clock or a commit starts anything. It returns the
// time the scheduler waits for. The bound only stops a broken test.
func (e *env) settle() time.Time {
	e.t.Helper()
	bound := time.NewTimer(20 * time.Second)
	defer bound.Stop()
	for {
		// The end of a flush wakes the scheduler, which resets its timer:
		// a change of the clock. The poll is a fallback.
		changed := e.clock.Changed()
		timers := e.clock.Timers()
		next, busy := e.exp.Scheduled()
		if !busy && len(timers) == 1 && (next.IsZero() || timers[0].Equal(next)) && slices.Equal(timers, e.clock.Timers()) {
			return timers[0]
		}
		select {
		case <-changed:
		case <-time.After(10 * time.Millisecond):
		case <-bound.C:
			e.t.Fatalf("the exporter does not settle: flushing %v, first account due %v, the clock's timers %v", busy, next, timers)
		}
	}
}

// advanceUntil runs the clock from one wake-up of the scheduler to the
// next until cond holds; it never skips past a scheduled attempt.
func (e *env) advanceUntil(what string, cond func() bool) {
	e.t.Helper()
	for range 100 {
		at := e.settle()
		if cond() {
			return
		}
		e.advanceTo(at)
	}
	e.t.Fatalf("no %s after 100 wake-ups of the scheduler", what)
}

func mustEnd(t *testing.T, s *pebblestore.Store, account string) uint64 {
	t.Helper()
	end, err := s.End(account)
	if err != nil {
		t.Fatal(err)
	}
	return end
}
