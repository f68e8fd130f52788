package pebblestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
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

type record struct {
	Operation  string         `json:"operation"`
	EventType  string         `json:"eventType"`
	Properties map[string]any `json:"properties"`
	Labels     []string       `json:"labels"`
}

func records(t *testing.T, s *pebblestore.Store, account string, after uint64) []record {
	t.Helper()
	es, err := s.ReadLog(account, after, 1<<20, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []record
	for _, e := range es {
		for _, c := range e.Changes {
			var r record
			if err := json.Unmarshal(c.Record, &r); err != nil {
				t.Fatalf("record %s: %v", c.Record, err)
			}
			out = append(out, r)
		}
	}
	return out
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
const hasUser1 = `{"_key":"team_T1|has|user_U1","_type":"slack_team_has_user","_class":"HAS","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"}`

func TestLifecycleMetadataAndRecords(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
	s := openStore(t, t.TempDir(), pebblestore.Options{Now: clk.Now})

	c1 := upsert(t, s, "j1dev", parse(t, graph.KindEntity, user1), parse(t, graph.KindEntity, team))
	if c1.LSN == 0 || c1.Counts.EntitiesCreated != 2 {
		t.Fatalf("first commit %+v", c1)
	}
	upsert(t, s, "j1dev", parse(t, graph.KindRelationship, hasUser1))

	// The same upload again is a no-op: no commit, no log entry.
	if c := upsert(t, s, "j1dev", parse(t, graph.KindEntity, user1)); c.LSN != 0 || c.Changes != 0 {
		t.Fatalf("no-op upload committed %+v", c)
	}

	clk.Add(time.Second)
	upd := parse(t, graph.KindEntity, `{"_key":"slack-user:team_T1:user_U1","_type":"slack_user","_class":["User"],"username":"some.user","active":false}`)
	if c := upsert(t, s, "j1dev", upd); c.Counts.EntitiesUpdated != 1 {
		t.Fatalf("update %+v", c)
	}

	clk.Add(time.Second)
	userID := graph.ObjectID("j1dev", "scope-a", "slack-user:team_T1:user_U1")
	c, err := s.Update("j1dev", func(tx graph.Txn) error {
		ok, err := tx.Delete(userID)
		if !ok {
			return errors.New("delete found nothing")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Counts.EntitiesDeleted != 1 || c.Counts.RelationshipsDeleted != 1 {
		t.Fatalf("delete should cascade to the relationship: %+v", c.Counts)
	}

	rs := records(t, s, "j1dev", 0)
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s %s %v v%v deleted=%v", r.Operation, r.EventType, r.Labels, r.Properties["_version"], r.Properties["_deleted"]))
	}
	want := []string{
		"c entity [Entity User slack_user] v1 deleted=false",
		"c entity [Entity Account Organization slack_team] v1 deleted=false",
		"c relationship [Relationship HAS slack_team_has_user] v1 deleted=false",
		"u entity [Entity User slack_user] v2 deleted=false",
		"d relationship [Relationship HAS slack_team_has_user] v2 deleted=true",
		"d entity [Entity User slack_user] v3 deleted=true",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records:\n got %q\nwant %q", got, want)
	}

	u := rs[3].Properties
	t0 := clk.t.Add(-2 * time.Second).UnixMilli()
	if u["_id"] != userID || u["_accountId"] != "j1dev" || u["_scope"] != "scope-a" ||
		u["_source"] != "integration-managed" || u["active"] != false ||
		u["_createdOn"] != float64(t0) || u["_beginOn"] != float64(t0+1000) {
		t.Fatalf("update after-image: %v", u)
	}
	d := rs[5].Properties
	if d["_endOn"] != float64(t0+2000) || d["username"] != "some.user" {
		t.Fatalf("delete after-image keeps properties and gains _endOn: %v", d)
	}
	rel := rs[2].Properties
	if rel["_fromEntityId"] != graph.ObjectID("j1dev", "scope-a", "slack-team:team_T1") || rel["_toEntityKey"] != "slack-user:team_T1:user_U1" || rel["_class"] != "HAS" {
		t.Fatalf("relationship after-image: %v", rel)
	}

	// Re-creating a deleted object continues its versions with a create.
	clk.Add(time.Second)
	upsert(t, s, "j1dev", parse(t, graph.KindEntity, user1))
	rs = records(t, s, "j1dev", 0)
	last := rs[len(rs)-1]
	if last.Operation != "c" || last.Properties["_version"] != float64(4) || last.Properties["_deleted"] != false {
		t.Fatalf("re-create: %+v", last)
	}
	if _, ok := last.Properties["_endOn"]; ok {
		t.Fatalf("re-created object still has _endOn: %v", last.Properties)
	}

	// Listing shows live objects only; Get shows deleted ones too.
	items, _, err := s.List("j1dev", graph.KindRelationship, "", "", 10)
	if err != nil || len(items) != 0 {
		t.Fatalf("list relationships: %d %v", len(items), err)
	}
	o, _, err := s.Get("j1dev", rel["_id"].(string))
	if err != nil || !o.Deleted {
		t.Fatalf("get deleted relationship: %+v %v", o, err)
	}
}

func TestCommitTimesStrictlyIncreasePerAccount(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := openStore(t, t.TempDir(), pebblestore.Options{Now: clk.Now})
	var last int64
	for i := range 5 {
		in := parse(t, graph.KindEntity, fmt.Sprintf(`{"_key":"user-key-%04d","_type":"test_user","_class":"User"}`, i))
		c := upsert(t, s, "acct1", in)
		if c.CommitTime <= last {
			t.Fatalf("commit %d time %d not after %d", i, c.CommitTime, last)
		}
		last = c.CommitTime
	}
	clk.Add(-time.Hour) // the clock steps back
	c := upsert(t, s, "acct1", parse(t, graph.KindEntity, `{"_key":"user-key-back","_type":"test_user","_class":"User"}`))
	if c.CommitTime != last+1 {
		t.Fatalf("commit after clock step back: %d, want %d", c.CommitTime, last+1)
	}
}

func TestRejectedTransactionLeavesNoTrace(t *testing.T) {
	s := openStore(t, t.TempDir(), pebblestore.Options{})
	upsert(t, s, "acct1", parse(t, graph.KindEntity, team))
	end, _ := s.End("acct1")
	_, err := s.Update("acct1", func(tx graph.Txn) error {
		if _, _, err := tx.Upsert(parse(t, graph.KindEntity, user1)); err != nil {
			return err
		}
		_, _, err := tx.Upsert(parse(t, graph.KindRelationship, `{"_key":"team_T1|has|nobody","_type":"slack_team_has_user","_class":"HAS","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"no-such-entity-key"}`))
		return err
	})
	var ee *graph.EndpointError
	if !errors.As(err, &ee) || ee.Field != "_toEntityKey" {
		t.Fatalf("want endpoint error naming _toEntityKey, got %v", err)
	}
	if e2, _ := s.End("acct1"); e2 != end {
		t.Fatalf("log moved from %d to %d", end, e2)
	}
	if _, _, err := s.Get("acct1", graph.ObjectID("acct1", "scope-a", "slack-user:team_T1:user_U1")); !errors.Is(err, graph.ErrNotFound) {
		t.Fatalf("entity of the rejected transaction is stored: %v", err)
	}
}

func TestParseObjectErrors(t *testing.T) {
	tests := []struct{ name, kind, js, field string }{
		{"not an object", "e", `[1]`, ""},
		{"missing key", "e", `{"_type":"slack_user","_class":"User"}`, "_key"},
		{"short key", "e", `{"_key":"short","_type":"slack_user","_class":"User"}`, "_key"},
		{"key not string", "e", `{"_key":12345678901,"_type":"slack_user","_class":"User"}`, "_key"},
		{"short type", "e", `{"_key":"long-enough-key","_type":"usr","_class":"User"}`, "_type"},
		{"missing class", "e", `{"_key":"long-enough-key","_type":"slack_user"}`, "_class"},
		{"class object", "e", `{"_key":"long-enough-key","_type":"slack_user","_class":{"a":1}}`, "_class"},
		{"nested", "e", `{"_key":"long-enough-key","_type":"slack_user","_class":"User","tags":{"a":1}}`, `"tags"`},
		{"array of arrays", "e", `{"_key":"long-enough-key","_type":"slack_user","_class":"User","x":[[1]]}`, `"x"`},
		{"control char key", "e", "{\"_key\":\"long-enough\\u0000key\",\"_type\":\"slack_user\",\"_class\":\"User\"}", "_key"},
		{"rel two classes", "r", `{"_key":"long-enough-key","_type":"a_has_b","_class":["HAS","USES"],"_fromEntityKey":"k","_toEntityKey":"l"}`, "_class"},
		{"rel no from", "r", `{"_key":"long-enough-key","_type":"a_has_b","_class":"HAS","_toEntityKey":"l"}`, "_fromEntityId"},
		{"rel bad id", "r", `{"_key":"long-enough-key","_type":"a_has_b","_class":"HAS","_fromEntityId":"../etc","_toEntityKey":"l"}`, "_fromEntityId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := graph.KindEntity
			if tt.kind == "r" {
				kind = graph.KindRelationship
			}
			_, err := graph.ParseObject(kind, []byte(tt.js))
			var ie *graph.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want graph.InputError, got %v", err)
			}
			if ie.Field != tt.field {
				t.Fatalf("field %q, want %q (%v)", ie.Field, tt.field, err)
			}
		})
	}
}

func TestParseDropsRawDataAndStoreOwnedMetadata(t *testing.T) {
	in, err := graph.ParseObject(graph.KindEntity, []byte(`{"_key":"long-enough-key","_type":"slack_user","_class":"User","_rawData":[{"name":"default","rawData":{"a":1}}],"_version":99,"_id":"x","name":"n","email":"a@b.c"}`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range in.Props {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[email name]" {
		t.Fatalf("props %v", names)
	}
}

func TestReadLogWaitAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	woke := make(chan error, 1)
	go func() { woke <- s.Wait(ctx, "acct1", 0) }()
	c := upsert(t, s, "acct1", parse(t, graph.KindEntity, team))
	if err := <-woke; err != nil {
		t.Fatalf("wait: %v", err)
	}
	upsert(t, s, "acct2", parse(t, graph.KindEntity, team))
	if e, _ := s.End("acct1"); e != c.LSN {
		t.Fatalf("end %d want %d", e, c.LSN)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, pebblestore.Options{})
	if e, _ := s.End("acct1"); e != c.LSN {
		t.Fatalf("end after reopen %d want %d", e, c.LSN)
	}
	c2 := upsert(t, s, "acct1", parse(t, graph.KindEntity, user1))
	if c2.LSN <= c.LSN+1 {
		t.Fatalf("LSN after reopen %d, want > %d", c2.LSN, c.LSN+1)
	}
	es, err := s.ReadLog("acct1", c.LSN, 10, 1<<20)
	if err != nil || len(es) != 1 || es[0].LSN != c2.LSN {
		t.Fatalf("read after %d: %+v %v", c.LSN, es, err)
	}
	// Wait returns when the context ends.
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if err := s.Wait(short, "acct1", c2.LSN); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past end: %v", err)
	}
}

func TestRetentionReportsLostRange(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	s, err := pebblestore.Open(dir, pebblestore.Options{Now: clk.Now, Retention: pebblestore.Retention{MaxAge: time.Hour, Interval: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	var lsns []uint64
	for i := range 4 {
		c := upsert(t, s, "acct1", parse(t, graph.KindEntity, fmt.Sprintf(`{"_key":"user-key-%04d","_type":"test_user","_class":"User"}`, i)))
		upsert(t, s, "acct2", parse(t, graph.KindEntity, fmt.Sprintf(`{"_key":"user-key-%04d","_type":"test_user","_class":"User"}`, i)))
		lsns = append(lsns, c.LSN)
		clk.Add(30 * time.Minute)
	}
	// Now is 2h after the first commit: the entries of minutes 0 and 30 are
	// older than an hour; the one at 60 is exactly an hour old and stays.
	n, err := s.Truncate()
	if err != nil || n != 4 {
		t.Fatalf("truncate removed %d (%v), want 4", n, err)
	}
	_, err = s.ReadLog("acct1", 0, 10, 1<<20)
	var te *changelog.TruncatedError
	if !errors.As(err, &te) || te.From != 1 || te.To != lsns[1] || te.Account != "acct1" {
		t.Fatalf("want truncated 1..%d, got %v", lsns[1], err)
	}
	if _, _, err := s.NextCommit("acct1", 0); !errors.As(err, &te) || te.To != lsns[1] {
		t.Fatalf("NextCommit from a truncated position: %v, want truncated 1..%d", err, lsns[1])
	}
	es, err := s.ReadLog("acct1", lsns[1], 10, 1<<20)
	if err != nil || len(es) != 2 || es[0].LSN != lsns[2] {
		t.Fatalf("read from retained position: %+v %v", es, err)
	}
	// NextCommit gives the commit time of the next entry, without reading
	// the rest; nothing after the last one.
	for i, after := range []uint64{lsns[1], lsns[2]} {
		at, ok, err := s.NextCommit("acct1", after)
		if err != nil || !ok || at != es[i].CommitTime {
			t.Errorf("NextCommit after %d = %d %v %v, want %d", after, at, ok, err, es[i].CommitTime)
		}
	}
	if at, ok, err := s.NextCommit("acct1", lsns[3]); ok || err != nil {
		t.Errorf("NextCommit after the last entry = %d %v %v, want none", at, ok, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The marks survive a restart, and LSNs are never reused.
	s = openStore(t, dir, pebblestore.Options{Now: clk.Now})
	if _, err := s.ReadLog("acct1", 0, 10, 1<<20); !errors.As(err, &te) {
		t.Fatalf("after reopen: %v", err)
	}
	c := upsert(t, s, "acct1", parse(t, graph.KindEntity, user1))
	if c.LSN <= lsns[3] {
		t.Fatalf("LSN %d reused", c.LSN)
	}
}

func TestRetentionByBytes(t *testing.T) {
	s := openStore(t, t.TempDir(), pebblestore.Options{Retention: pebblestore.Retention{MaxBytes: 2000, Interval: time.Hour}})
	for i := range 20 {
		upsert(t, s, "acct1", parse(t, graph.KindEntity, fmt.Sprintf(`{"_key":"user-key-%04d","_type":"test_user","_class":"User","pad":"%0200d"}`, i, i)))
	}
	before := s.LogBytes()
	if _, err := s.Truncate(); err != nil {
		t.Fatal(err)
	}
	if s.LogBytes() > 2000 || s.LogBytes() <= 0 || before <= 2000 {
		t.Fatalf("log bytes %d -> %d, want within (0, 2000]", before, s.LogBytes())
	}
}

func TestConcurrentWritersKeepPerAccountOrder(t *testing.T) {
	s := openStore(t, t.TempDir(), pebblestore.Options{})
	const accounts, writers, perWriter = 3, 4, 25
	var wg sync.WaitGroup
	for a := range accounts {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter {
					in, _ := graph.ParseObject(graph.KindEntity, fmt.Appendf(nil, `{"_key":"user-key-%d-%d","_type":"test_user","_class":"User"}`, w, i))
					in.Scope, in.Source = "s", "api"
					if _, err := s.Update(fmt.Sprintf("acct%d", a), func(tx graph.Txn) error {
						_, _, err := tx.Upsert(&in)
						return err
					}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for a := range accounts {
		es, err := s.ReadLog(fmt.Sprintf("acct%d", a), 0, 1<<20, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != writers*perWriter {
			t.Fatalf("acct%d has %d entries, want %d", a, len(es), writers*perWriter)
		}
		for i := 1; i < len(es); i++ {
			if es[i].LSN <= es[i-1].LSN || es[i].CommitTime <= es[i-1].CommitTime {
				t.Fatalf("entry %d out of order: %d@%d after %d@%d", i, es[i].LSN, es[i].CommitTime, es[i-1].LSN, es[i-1].CommitTime)
			}
		}
	}
}

func TestListPages(t *testing.T) {
	s := openStore(t, t.TempDir(), pebblestore.Options{})
	for i := range 7 {
		upsert(t, s, "acct1", parse(t, graph.KindEntity, fmt.Sprintf(`{"_key":"user-key-%04d","_type":"test_user","_class":"User"}`, i)))
	}
	upsert(t, s, "acct1", parse(t, graph.KindEntity, team))
	seen := 0
	cursor := ""
	for page := 0; ; page++ {
		items, next, err := s.List("acct1", graph.KindEntity, "test_user", cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		seen += len(items)
		if next == "" {
			break
		}
		cursor = next
		if page > 5 {
			t.Fatal("paging does not end")
		}
	}
	if seen != 7 {
		t.Fatalf("listed %d test_user entities, want 7", seen)
	}
	all, next, _ := s.List("acct1", graph.KindEntity, "", "", 100)
	if len(all) != 8 || next != "" {
		t.Fatalf("all entities %d next %q", len(all), next)
	}
	if _, _, err := s.List("acct1", graph.KindEntity, "", "!!", 3); !errors.Is(err, graph.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestCanonicalFormIgnoresOrderAndFormatting(t *testing.T) {
	a := `{"_key":"long-enough-key","_type":"slack_user","_class":["User","Person"],"b":[1, "x\u0041"],"a":"é","c":null}`
	b := "{ \"c\" : null, \"a\":\"\\u00e9\", \"_class\":[\"User\",\"Person\"], \"b\":[1,\"xA\"], \"_type\":\"slack_user\", \"_key\":\"long-enough-key\" }"
	var enc [][]byte
	for _, js := range []string{a, b} {
		in, err := graph.ParseObject(graph.KindEntity, []byte(js))
		if err != nil {
			t.Fatal(err)
		}
		c := in.AppendCanonical(nil)
		back, err := graph.ParseObject(graph.KindEntity, c)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", c, err)
		}
		if c2 := back.AppendCanonical(nil); string(c2) != string(c) {
			t.Fatalf("round trip changed the form:\n%s\n%s", c, c2)
		}
		enc = append(enc, c)
	}
	if string(enc[0]) != string(enc[1]) {
		t.Fatalf("equal objects encode differently:\n%s\n%s", enc[0], enc[1])
	}
	rel, err := graph.ParseObject(graph.KindRelationship, []byte(hasUser1))
	if err != nil {
		t.Fatal(err)
	}
	back, err := graph.ParseObject(graph.KindRelationship, rel.AppendCanonical(nil))
	if err != nil || back.FromKey != rel.FromKey || back.ToKey != rel.ToKey || back.Class[0] != "HAS" {
		t.Fatalf("relationship round trip: %+v %v", back, err)
	}
}

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

// TestDeleteCascadeSeesTransaction: deleting an entity deletes the
// relationships attached to it as the transaction left them: one created
// earlier in the same transaction too, and not one the transaction already
// deleted.
func TestDeleteCascadeSeesTransaction(t *testing.T) {
	s := openStore(t, t.TempDir(), pebblestore.Options{})
	rel := func(key string) *graph.Input {
		return parse(t, graph.KindRelationship, `{"_key":"`+key+`","_type":"slack_team_has_user","_class":"HAS","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"}`)
	}
	upsert(t, s, "j1dev", parse(t, graph.KindEntity, user1), parse(t, graph.KindEntity, team), rel("team_T1|has|user_U1|stored"))
	c0, _ := s.End("j1dev")
	id := func(key string) string { return graph.ObjectID("j1dev", "scope-a", key) }
	c, err := s.Update("j1dev", func(tx graph.Txn) error {
		if _, _, err := tx.Upsert(rel("team_T1|has|user_U1|new")); err != nil {
			return err
		}
		if ok, err := tx.Delete(id("team_T1|has|user_U1|stored")); !ok || err != nil {
			return fmt.Errorf("delete stored relationship: %v %v", ok, err)
		}
		if ok, err := tx.Delete(id("slack-team:team_T1")); !ok || err != nil {
			return fmt.Errorf("delete team: %v %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Counts.RelationshipsCreated != 1 || c.Counts.RelationshipsDeleted != 2 || c.Counts.EntitiesDeleted != 1 {
		t.Fatalf("counts %+v, want 1 relationship created, 2 deleted (each once), 1 entity deleted", c.Counts)
	}
	var got []string
	for _, r := range records(t, s, "j1dev", c0) {
		got = append(got, fmt.Sprintf("%s %s %v v%v", r.Operation, r.EventType, r.Properties["_key"], r.Properties["_version"]))
	}
	want := []string{
		"c relationship team_T1|has|user_U1|new v1",
		"d relationship team_T1|has|user_U1|stored v2",
		"d relationship team_T1|has|user_U1|new v2",
		"d entity slack-team:team_T1 v2",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("records\n got %q\nwant %q", got, want)
	}
	// The user's relationships are gone from the index too: deleting it
	// now cascades to nothing.
	c, err = s.Update("j1dev", func(tx graph.Txn) error {
		_, err := tx.Delete(id("slack-user:team_T1:user_U1"))
		return err
	})
	if err != nil || c.Counts.RelationshipsDeleted != 0 || c.Counts.EntitiesDeleted != 1 {
		t.Fatalf("delete user after: %+v %v, want only the user deleted", c.Counts, err)
	}
}
