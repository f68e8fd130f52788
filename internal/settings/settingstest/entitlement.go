package settingstest

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
)

// entitlements is the accounts side of the entitlement cases: which
// accounts have the data-streaming entitlement.
type entitlements struct {
	mu       sync.Mutex
	entitled map[string]bool
}

func (e *entitlements) set(account string, entitled bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.entitled[account] = entitled
}

func (e *entitlements) Account(id string) (accounts.Account, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ok, found := e.entitled[id]
	if !found {
		return accounts.Account{}, accounts.AccountNotFoundError(id)
	}
	a := accounts.Account{ID: id, Entitlements: []string{}}
	if ok {
		a.Entitlements = []string{accounts.EntitlementDataStreaming}
	}
	return a, nil
}

func (e *entitlements) Accounts() ([]accounts.Account, error) {
	e.mu.Lock()
	ids := make([]string, 0, len(e.entitled))
	for id := range e.entitled {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	slices.Sort(ids)
	var out []accounts.Account
	for _, id := range ids {
		a, _ := e.Account(id)
		out = append(out, a)
	}
	return out, nil
}

// stops records the streams stopped (Entitlement.Stopped) as
// "account by".
type stops struct {
	mu  sync.Mutex
	got []string
}

func (s *stops) add(rec settings.Record, by string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, rec.Account+" "+by)
}

func (s *stops) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// entitledService is a Service of b enforcing the entitlement, with
// accounts "a" and "b" entitled.
func entitledService(b Backend) (*settings.Service, *entitlements, *stops) {
	ents := &entitlements{entitled: map[string]bool{"a": true, "b": true}}
	st := &stops{}
	s := settings.New(b.Settings, clock).RequireEntitlement(settings.Entitlement{Accounts: ents, Stopped: st.add})
	return s, ents, st
}

// enableNeedsEntitlement: an enable of an account without the
// entitlement is refused and writes nothing; a disable needs none.
func enableNeedsEntitlement(t *testing.T, b Backend) {
	s, ents, _ := entitledService(b)
	end := func() (uint64, error) { return 42, nil }
	ents.set("a", false)
	if _, err := s.SaveTest("a", settings.ConnectionTest{OK: true, At: now, BucketName: on.BucketName, AWSAccountID: owner}); err != nil {
		t.Fatal(err)
	}
	before, _ := b.Settings.Get("a")
	if _, err := s.Apply("a", on, end); !errors.Is(err, settings.ErrNotEntitled) {
		t.Fatalf("enable without the entitlement: %v, want ErrNotEntitled", err)
	}
	if after, _ := b.Settings.Get("a"); !Same(t, after, before) {
		t.Fatalf("a refused enable changed the record: %+v -> %+v", before, after)
	}
	ents.set("a", true)
	enable(t, s, "a", on.BucketName, 42)
	ents.set("a", false)
	off := on
	off.Enabled = false
	if r, err := s.Apply("a", off, end); err != nil || r.Stream.Enabled {
		t.Fatalf("disable without the entitlement: %+v, %v", r.Stream, err)
	}
}

// stopUnentitled: the stream of an account whose entitlement is gone
// stops as a disable does, with the reason on its period and status;
// an entitled or disabled account is left alone, without a write.
func stopUnentitled(t *testing.T, b Backend) {
	s, ents, stopped := entitledService(b)
	enable(t, s, "a", "bkt-one", 42)
	enable(t, s, "b", "bkt-one", 7)
	if err := b.Checkpoint.Advance("a", 1, 50, 3, "k1", now, 0); err != nil {
		t.Fatal(err)
	}
	end := func() (uint64, error) { return 60, nil }
	if ok, err := s.StopUnentitled("a", "operator", end); ok || err != nil {
		t.Fatalf("stop of an entitled account: %v, %v", ok, err)
	}
	ents.set("a", false)
	ok, err := s.StopUnentitled("a", "operator", end)
	if !ok || err != nil {
		t.Fatalf("stop of an account without the entitlement: %v, %v", ok, err)
	}
	r, err := b.Settings.Get("a")
	if err != nil {
		t.Fatal(err)
	}
	p := r.Periods[len(r.Periods)-1]
	switch {
	case r.Settings.Enabled || r.Stream.Enabled || r.Stream.Generation != 2:
		t.Fatalf("stopped stream: %+v %+v, want disabled in a new generation", r.Settings, r.Stream)
	case r.Settings.BucketName != "bkt-one" || r.Stream.Cursor != 50 || r.Stream.ObjectsExported != 1:
		t.Fatalf("stopped stream %+v: keeps its bucket and counters", r)
	case p.EndLSN != 60 || p.EndAt.IsZero() || p.EndReason != settings.ReasonEntitlementRemoved:
		t.Fatalf("stopped period %+v: ends at the log's end with the reason", p)
	case r.Stream.LastError == nil || r.Stream.LastError.Code != settings.CodeEntitlementRemoved:
		t.Fatalf("stopped status: last error %+v, want %s", r.Stream.LastError, settings.CodeEntitlementRemoved)
	}
	if err := b.Checkpoint.Advance("a", 1, 55, 1, "k2", now, 0); !errors.Is(err, stream.ErrStale) {
		t.Fatalf("the old generation moved the cursor after the stop: %v", err)
	}
	again, err := s.StopUnentitled("a", "operator", end)
	if again || err != nil {
		t.Fatalf("second stop: %v, %v; want nothing done", again, err)
	}
	if after, _ := b.Settings.Get("a"); !Same(t, after, r) {
		t.Fatalf("a second stop wrote: %+v -> %+v", r, after)
	}
	if got := stopped.list(); !slices.Equal(got, []string{"a operator"}) {
		t.Fatalf("stops told: %q, want [a operator]", got)
	}
	if st, _ := b.Checkpoint.Load("b"); !st.Enabled {
		t.Fatalf("the stop of a stopped b: %+v", st)
	}
	// Entitled again, the stream stays off until enabled.
	ents.set("a", true)
	if st, _ := b.Checkpoint.Load("a"); st.Enabled {
		t.Fatalf("re-adding the entitlement re-enabled the stream: %+v", st)
	}
	r = enable(t, s, "a", "bkt-one", 70)
	if !r.Stream.Enabled || r.Stream.LastError != nil || r.Stream.Cursor != 70 {
		t.Fatalf("re-enabled stream %+v: starts at the log's end, error cleared", r.Stream)
	}
}

// gateRefusesUnentitled: the gated checkpoint neither lists, loads as
// enabled, nor lets upload an account streaming without the entitlement
// (the stop after its removal never ran), and stops it.
func gateRefusesUnentitled(t *testing.T, b Backend) {
	s, ents, stopped := entitledService(b)
	ents.set("c", true)
	for _, a := range []string{"a", "b", "c"} {
		enable(t, s, a, "bkt-one", 10)
	}
	ends := func(string) (uint64, error) { return 20, nil }
	cp := s.Gate(b.Checkpoint, ends)

	ents.set("a", false) // removed; the process died before the stop
	all, err := cp.Enabled()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, st := range all {
		ids = append(ids, st.Account)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"b", "c"}) {
		t.Fatalf("gated enabled streams: %q, want [b c]", ids)
	}
	if st, _ := b.Checkpoint.Load("a"); st.Enabled {
		t.Fatalf("a not stopped by the gate's list: %+v", st)
	}

	ents.set("b", false)
	if st, err := cp.Load("b"); err != nil || st.Enabled {
		t.Fatalf("gated load of b: %+v, %v; want not enabled", st, err)
	}

	ents.set("c", false)
	if err := cp.SaveAttempt("c", 1, 10, 15, ""); !errors.Is(err, stream.ErrStale) {
		t.Fatalf("gated save of c's batch: %v, want ErrStale", err)
	}
	r, _ := b.Settings.Get("c")
	if r.Stream.Enabled || r.Stream.Attempt != nil || r.Periods[len(r.Periods)-1].EndReason != settings.ReasonEntitlementRemoved {
		t.Fatalf("c after its refused batch: %+v", r)
	}
	if got := stopped.list(); !slices.Equal(got, []string{"a exporter", "b exporter", "c exporter"}) {
		t.Fatalf("stops told: %q", got)
	}
	// Without RequireEntitlement the checkpoint is not wrapped.
	if settings.New(b.Settings, clock).Gate(b.Checkpoint, ends) != b.Checkpoint {
		t.Fatal("Gate without RequireEntitlement wrapped the checkpoint")
	}
}

// enableRacingRemoval: an enable racing with the entitlement's removal
// (and the stop that follows it) never leaves the stream on: either the
// enable comes first and is stopped, or it sees the removal and is
// refused.
func enableRacingRemoval(t *testing.T, b Backend) {
	s, ents, _ := entitledService(b)
	end := func() (uint64, error) { return 42, nil }
	if _, err := s.SaveTest("a", settings.ConnectionTest{OK: true, At: now, BucketName: on.BucketName, AWSAccountID: owner}); err != nil {
		t.Fatal(err)
	}
	off := on
	off.Enabled = false
	refused := 0
	for round := range 30 {
		ents.set("a", true)
		if _, err := s.Apply("a", off, end); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var enableErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, enableErr = s.Apply("a", on, end)
		}()
		go func() {
			defer wg.Done()
			ents.set("a", false)
			if _, err := s.StopUnentitled("a", "operator", end); err != nil {
				t.Error(err)
			}
		}()
		wg.Wait()
		if enableErr != nil && !errors.Is(enableErr, settings.ErrNotEntitled) {
			t.Fatalf("round %d: enable: %v", round, enableErr)
		}
		if enableErr != nil {
			refused++
		}
		if r, _ := b.Settings.Get("a"); r.Settings.Enabled || r.Stream.Enabled {
			t.Fatalf("round %d: the stream is on without the entitlement (enable: %v)", round, enableErr)
		}
	}
	t.Logf("%d of 30 enables refused, the others stopped", refused)
}
