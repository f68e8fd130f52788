package pebblestore_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

func openStore(t *testing.T, dir string, o pebblestore.Options) *pebblestore.Store {
	t.Helper()
	s, err := pebblestore.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func parse(t *testing.T, kind graph.Kind, js string) *graph.Input {
	t.Helper()
	in, err := graph.ParseObject(kind, []byte(js))
	if err != nil {
		t.Fatalf("parse %s: %v", js, err)
	}
	in.Scope, in.Source = "scope-a", "integration-managed"
	return &in
}

func upsert(t *testing.T, s *pebblestore.Store, account string, ins ...*graph.Input) graph.Commit {
	t.Helper()
	c, err := s.Update(account, func(tx graph.Txn) error {
		for _, in := range ins {
			if _, _, err := tx.Upsert(in); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clock is a controllable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const user1 = `{"_key":"slack-user:team_T1:user_U1","_type":"slack_user","_class":["User"],"username":"some.user","active":true}`
const team = `{"_key":"slack-team:team_T1","_type":"slack_team","_class":["Account","Organization"],"name":"T1"}`

// TestWritesStopWhenTheDiskIsAlmostFull: below its free-space reserve the
// store refuses writes with a *DiskFullError and logs nothing, and takes
// them again once space is freed. The graph's contract is in graphtest
// (conformance_test.go); free space is this backend's own.
func TestWritesStopWhenTheDiskIsAlmostFull(t *testing.T) {
	var mu sync.Mutex
	free := uint64(1 << 30)
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := openStore(t, t.TempDir(), pebblestore.Options{Now: clk.Now, MinFreeBytes: 100 << 20, FreeSpace: func(string) (uint64, error) {
		mu.Lock()
		defer mu.Unlock()
		return free, nil
	}})
	upsert(t, s, "acct1", parse(t, graph.KindEntity, team))
	end, _ := s.End("acct1")
	mu.Lock()
	free = 10 << 20
	mu.Unlock()
	clk.Add(2 * time.Second)
	_, err := s.Update("acct1", func(tx graph.Txn) error {
		_, _, err := tx.Upsert(parse(t, graph.KindEntity, user1))
		return err
	})
	var de *graph.DiskFullError
	if !errors.As(err, &de) || !errors.Is(err, graph.ErrDiskFull) || de.Free != 10<<20 {
		t.Fatalf("write with 10 MiB free: %v", err)
	}
	if e, _ := s.End("acct1"); e != end {
		t.Fatal("a refused write reached the log")
	}
	mu.Lock()
	free = 1 << 30
	mu.Unlock()
	clk.Add(2 * time.Second)
	upsert(t, s, "acct1", parse(t, graph.KindEntity, user1)) // writes resume
}
