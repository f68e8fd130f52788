package verify

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/graph"
)

const account = "acme"

// memSource is a bucket in memory.
type memSource map[string][]byte

func (m memSource) List(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}

func (m memSource) Read(_ context.Context, key string) ([]byte, error) {
	b, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("no object %s", key)
	}
	return b, nil
}

func (m memSource) String() string { return "memory" }

// t0 is the commit time of the first change of a fixture, in ms.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC).UnixMilli()

// fixture writes a stream as j1ds would: each change is one transaction
// committed a millisecond after the previous one, and flush writes the
// pending records as one object keyed by its first commit time.
type fixture struct {
	t       *testing.T
	src     memSource
	objs    map[string]*graph.Object // by name
	ms      int64
	pending [][]byte
	firstMs int64
}

func newFixture(t *testing.T) *fixture {
	return &fixture{t: t, src: memSource{}, objs: map[string]*graph.Object{}, ms: t0}
}

func (f *fixture) record(op graph.Op, o *graph.Object) []byte {
	if len(f.pending) == 0 {
		f.firstMs = f.ms
	}
	rec := graph.AppendRecord(nil, op, o, o.AppendJSON(nil))
	f.pending = append(f.pending, rec)
	f.ms++
	return rec
}

// entity creates an entity named name.
func (f *fixture) entity(name string) []byte {
	o := &graph.Object{Kind: graph.KindEntity, ID: graph.ObjectID(account, "s", name), Key: name + "-key",
		Type: "test_user", Class: []string{"User", "Person"}, Scope: "s", Source: "api", AccountID: account,
		Version: 1, CreatedOn: f.ms, BeginOn: f.ms, Props: []graph.Prop{{Name: "name", Value: json.RawMessage(`"` + name + `"`)}}}
	f.objs[name] = o
	return f.record(graph.OpCreate, o)
}

// relationship creates a relationship named name between two entities.
func (f *fixture) relationship(name, from, to string) []byte {
	a, b := f.objs[from], f.objs[to]
	o := &graph.Object{Kind: graph.KindRelationship, ID: graph.ObjectID(account, "s", name), Key: name + "-key",
		Type: "test_has", Class: []string{"HAS"}, Scope: "s", Source: "api", AccountID: account,
		Version: 1, CreatedOn: f.ms, BeginOn: f.ms, FromID: a.ID, ToID: b.ID, FromKey: a.Key, ToKey: b.Key}
	f.objs[name] = o
	return f.record(graph.OpCreate, o)
}

// update sets a property of name.
func (f *fixture) update(name, value string) []byte {
	o := f.objs[name]
	o.Version++
	o.BeginOn = f.ms
	o.Props = []graph.Prop{{Name: "name", Value: json.RawMessage(`"` + value + `"`)}}
	return f.record(graph.OpUpdate, o)
}

func (f *fixture) del(name string) []byte {
	o := f.objs[name]
	o.Version++
	o.Deleted, o.EndOn = true, f.ms
	return f.record(graph.OpDelete, o)
}

// skip leaves a gap in the commit clock (a quiet while).
func (f *fixture) skip(d time.Duration) { f.ms += d.Milliseconds() }

// flush writes the pending records as one object and returns its key.
func (f *fixture) flush() string {
	var body bytes.Buffer
	for _, l := range f.pending {
		body.Write(l)
		body.WriteByte('\n')
	}
	key := exporter.ObjectKey(account, f.firstMs*1000+123, ".jsonl")
	f.src[key] = gz(f.t, body.Bytes())
	f.pending = nil
	return key
}

func gz(t *testing.T, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func gunzip(t *testing.T, b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// rename moves the object at key to another key.
func (f *fixture) rename(key, to string) {
	f.src[to] = f.src[key]
	delete(f.src, key)
}

// rewrite replaces the lines of the object at key with edit's result.
func (f *fixture) rewrite(key string, edit func(lines [][]byte) [][]byte) {
	data := gunzip(f.t, f.src[key])
	lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
	lines = edit(lines)
	var body bytes.Buffer
	for _, l := range lines {
		body.Write(l)
		body.WriteByte('\n')
	}
	f.src[key] = gz(f.t, body.Bytes())
}

// base writes a clean stream of three objects: entities, a relationship,
// updates and an entity delete cascading to its relationship. It returns
// the keys.
func (f *fixture) base() []string {
	f.entity("alice")
	f.entity("bob")
	f.relationship("alice-has-bob", "alice", "bob")
	k1 := f.flush()
	f.skip(time.Minute)
	f.update("alice", "Alice")
	f.update("bob", "Bob")
	f.update("alice", "Alice A.")
	k2 := f.flush()
	f.skip(time.Minute)
	f.del("alice-has-bob") // the cascade, in the entity delete's transaction
	f.ms--
	f.del("alice")
	f.entity("carol")
	k3 := f.flush()
	return []string{k1, k2, k3}
}

func run(t *testing.T, cfg Config) *Report {
	t.Helper()
	if cfg.Account == "" {
		cfg.Account = account
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// wantKinds checks the violation counts by kind.
func wantKinds(t *testing.T, rep *Report, want map[Kind]int) {
	t.Helper()
	if want == nil {
		want = map[Kind]int{}
	}
	if !maps.Equal(rep.ByKind, want) {
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		t.Errorf("violations %v, want %v\n%s", rep.ByKind, want, b.String())
	}
}

func TestCleanStream(t *testing.T) {
	f := newFixture(t)
	f.base()
	rep := run(t, Config{Source: f.src})
	wantKinds(t, rep, nil)
	if !rep.Clean() || rep.Objects != 3 || rep.IDs != 4 || rep.PredateStreaming != 0 {
		t.Errorf("report %+v", rep)
	}
	want := RecordCounts{Total: 9, Create: 4, Update: 3, Delete: 2, Entities: 7, Relationships: 2}
	if rep.Records != want {
		t.Errorf("records %+v, want %+v", rep.Records, want)
	}
	if rep.PeriodsFromJ1ds || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "one period") {
		t.Errorf("without periods the report must say the stream counts as one period: %q", rep.Notes)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "result:    OK, no violations") {
		t.Errorf("text report:\n%s", text.String())
	}
}

// TestViolations tampers with a clean stream, one way per case, and
// checks exactly the expected violations are found, at the right place.
func TestViolations(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(f *fixture, keys []string)
		want   map[Kind]int
		// where, when set, is the key:line the first violation names.
		where func(keys []string) string
	}{
		// The renamed keys still sort last, so only the key is wrong.
		{"key without zero padding", func(f *fixture, keys []string) {
			f.rename(keys[2], strings.Replace(keys[2], "month=03", "month=3", 1))
		}, map[Kind]int{KindBadKey: 1}, nil},
		{"key with a colon", func(f *fixture, keys []string) {
			f.rename(keys[2], strings.Replace(keys[2], "time=05", "time=05:", 1))
		}, map[Kind]int{KindBadKey: 1}, nil},
		{"impossible date", func(f *fixture, keys []string) {
			f.rename(keys[2], strings.Replace(keys[2], "day=04", "day=34", 1))
		}, map[Kind]int{KindBadKey: 1}, nil},
		{"other suffix", func(f *fixture, keys []string) {
			f.rename(keys[0], keys[0]+".txt")
		}, map[Kind]int{KindBadKey: 1}, nil},
		{"stray file", func(f *fixture, keys []string) {
			f.src[Prefix(account)+"notes.txt"] = gz(f.t, nil)
		}, map[Kind]int{KindBadKey: 1, KindEmptyObject: 1}, nil},
		{"key time is not the first commit", func(f *fixture, keys []string) {
			f.rename(keys[0], exporter.ObjectKey(account, (t0-1000)*1000, ".jsonl"))
		}, map[Kind]int{KindKeyTime: 1}, nil},
		{"not gzip", func(f *fixture, keys []string) {
			f.src[keys[1]] = gunzip(f.t, f.src[keys[1]])
		}, map[Kind]int{KindBadGzip: 1, KindVersionGap: 1}, func(keys []string) string { return keys[1] }},
		{"truncated gzip", func(f *fixture, keys []string) {
			b := f.src[keys[2]]
			f.src[keys[2]] = b[:len(b)-10]
		}, map[Kind]int{KindBadGzip: 1}, func(keys []string) string { return keys[2] + ":4" }},
		{"garbage after the gzip stream", func(f *fixture, keys []string) {
			f.src[keys[2]] = append(f.src[keys[2]], "junk"...)
		}, map[Kind]int{KindBadGzip: 1}, nil},
		{"empty object", func(f *fixture, keys []string) {
			f.src[exporter.ObjectKey(account, (t0+10*60_000)*1000, ".jsonl")] = gz(f.t, nil)
		}, map[Kind]int{KindEmptyObject: 1}, nil},
		{"extra top-level member", func(f *fixture, keys []string) {
			f.rewrite(keys[1], func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`{"operation"`), []byte(`{"lsn":7,"operation"`), 1)
				return l
			})
		}, map[Kind]int{KindBadRecord: 1}, func(keys []string) string { return keys[1] + ":2" }},
		{"repeated top-level member", func(f *fixture, keys []string) {
			f.rewrite(keys[1], func(l [][]byte) [][]byte {
				l[0] = bytes.Replace(l[0], []byte(`{"operation":"u"`), []byte(`{"operation":"c","operation":"u"`), 1)
				return l
			})
		}, map[Kind]int{KindBadRecord: 1, KindVersionGap: 1}, func(keys []string) string { return keys[1] + ":1" }},
		{"not JSON", func(f *fixture, keys []string) {
			f.rewrite(keys[0], func(l [][]byte) [][]byte { return append(l, []byte(`{"operation":`)) })
		}, map[Kind]int{KindBadRecord: 1}, func(keys []string) string { return keys[0] + ":4" }},
		{"empty line", func(f *fixture, keys []string) {
			f.rewrite(keys[0], func(l [][]byte) [][]byte { return append(l, nil) })
		}, map[Kind]int{KindBadRecord: 1}, nil},
		{"no final newline", func(f *fixture, keys []string) {
			data := gunzip(f.t, f.src[keys[2]])
			f.src[keys[2]] = gz(f.t, bytes.TrimSuffix(data, []byte{'\n'}))
		}, map[Kind]int{KindBadRecord: 1}, func(keys []string) string { return keys[2] + ":3" }},
		{"missing metadata", func(f *fixture, keys []string) {
			f.rewrite(keys[0], func(l [][]byte) [][]byte {
				l[0] = bytes.Replace(l[0], []byte(`"_version":1,`), nil, 1)
				return l
			})
		}, map[Kind]int{KindBadRecord: 1}, nil},
		{"unknown operation", func(f *fixture, keys []string) {
			f.rewrite(keys[0], func(l [][]byte) [][]byte {
				l[0] = bytes.Replace(l[0], []byte(`"operation":"c"`), []byte(`"operation":"x"`), 1)
				return l
			})
		}, map[Kind]int{KindBadRecord: 1}, nil},
		{"wrong labels", func(f *fixture, keys []string) {
			f.rewrite(keys[0], func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"labels":["Entity","User","Person","test_user"]`), []byte(`"labels":["Entity","Person","User","test_user"]`), 1)
				l[2] = bytes.Replace(l[2], []byte(`"labels":["Relationship","HAS","test_has"]`), []byte(`"labels":["Entity","HAS","test_has"]`), 1)
				return l
			})
		}, map[Kind]int{KindWrongLabels: 2}, func(keys []string) string { return keys[0] + ":2" }},
		{"another account", func(f *fixture, keys []string) {
			f.rewrite(keys[1], func(l [][]byte) [][]byte {
				l[2] = bytes.Replace(l[2], []byte(`"_accountId":"acme"`), []byte(`"_accountId":"globex"`), 1)
				return l
			})
		}, map[Kind]int{KindWrongAccount: 1}, func(keys []string) string { return keys[1] + ":3" }},
		{"delete without _deleted", func(f *fixture, keys []string) {
			f.rewrite(keys[2], func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"_deleted":true`), []byte(`"_deleted":false`), 1)
				return l
			})
		}, map[Kind]int{KindDeleteFlags: 1}, func(keys []string) string { return keys[2] + ":2" }},
		{"update with _endOn", func(f *fixture, keys []string) {
			f.rewrite(keys[1], func(l [][]byte) [][]byte {
				l[0] = bytes.Replace(l[0], []byte(`"_beginOn":`), []byte(`"_endOn":1,"_beginOn":`), 1)
				return l
			})
		}, map[Kind]int{KindDeleteFlags: 1}, nil},
		{"keys out of commit order", func(f *fixture, keys []string) {
			// The second object also holds a change committed after the
			// third object's first one.
			f.rewrite(keys[1], func(l [][]byte) [][]byte {
				late := bytes.Replace(l[1], []byte(`"name":"Bob"`), []byte(`"name":"Bob, late"`), 1)
				late = bytes.Replace(late, []byte(fmt.Sprintf(`"_beginOn":%d`, t0+60_000+4)), []byte(fmt.Sprintf(`"_beginOn":%d`, t0+3*60_000)), 1)
				late = bytes.Replace(late, []byte(`"_version":2`), []byte(`"_version":3`), 1)
				return append(l, late)
			})
		}, map[Kind]int{KindOutOfOrder: 3}, func(keys []string) string { return keys[2] + ":1" }},
		{"dropped record", func(f *fixture, keys []string) {
			f.rewrite(keys[1], func(l [][]byte) [][]byte { return slices.Delete(l, 0, 1) })
		}, map[Kind]int{KindVersionGap: 1, KindKeyTime: 1}, func(keys []string) string { return keys[1] + ":1" }},
		{"duplicated record", func(f *fixture, keys []string) {
			f.rewrite(keys[1], func(l [][]byte) [][]byte { return slices.Insert(l, 1, l[0]) })
		}, map[Kind]int{KindVersionDup: 1}, func(keys []string) string { return keys[1] + ":2" }},
		{"object written twice", func(f *fixture, keys []string) {
			// A retried batch under another key: every change twice.
			f.src[exporter.ObjectKey(account, (t0+10*60_000)*1000, ".jsonl")] = f.src[keys[1]]
		}, map[Kind]int{KindKeyTime: 1, KindOutOfOrder: 3, KindVersionDup: 3}, nil},
		{"create of a live object", func(f *fixture, keys []string) {
			f.rewrite(keys[1], func(l [][]byte) [][]byte {
				l[1] = bytes.Replace(l[1], []byte(`"operation":"u"`), []byte(`"operation":"c"`), 1)
				return l
			})
		}, map[Kind]int{KindBadSequence: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			keys := f.base()
			tt.tamper(f, keys)
			rep := run(t, Config{Source: f.src})
			want := map[Kind]int{}
			for k, n := range tt.want {
				if n > 0 {
					want[k] = n
				}
			}
			wantKinds(t, rep, want)
			if rep.Clean() {
				return
			}
			if tt.where != nil {
				v := rep.List[0]
				loc := v.Key
				if v.Line > 0 {
					loc = fmt.Sprintf("%s:%d", v.Key, v.Line)
				}
				if w := tt.where(keys); loc != w {
					t.Errorf("the first violation is at %s, want %s: %s", loc, w, v)
				}
			}
		})
	}
}

// TestPeriods: a version jump between two enabled periods is allowed; the
// same jump without periods, or inside one period, is a gap, and a gap in
// a period with retention gaps names them.
func TestPeriods(t *testing.T) {
	f := newFixture(t)
	f.entity("alice")
	f.entity("bob")
	f.flush()
	disabledAt := f.ms
	f.skip(time.Hour)
	// Changed while disabled: not exported.
	f.update("alice", "while disabled")
	f.pending = nil
	f.skip(time.Hour)
	enabledAt := f.ms
	f.update("alice", "after re-enabling")
	f.update("bob", "after re-enabling")
	f.flush()

	at := func(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
	two := []Period{
		{StartLSN: 10, StartAt: at(t0 - 5), EndLSN: 12, EndAt: at(disabledAt + 5)},
		{StartLSN: 20, StartAt: at(enabledAt - 5)},
	}
	t.Run("jump across periods", func(t *testing.T) {
		rep := run(t, Config{Source: f.src, Periods: two})
		wantKinds(t, rep, nil)
		if rep.Periods[0].Records != 2 || rep.Periods[1].Records != 2 || !rep.PeriodsFromJ1ds {
			t.Errorf("periods %+v", rep.Periods)
		}
	})
	t.Run("one assumed period", func(t *testing.T) {
		rep := run(t, Config{Source: f.src})
		wantKinds(t, rep, map[Kind]int{KindVersionGap: 1})
	})
	t.Run("gap inside a period with retention gaps", func(t *testing.T) {
		one := []Period{{StartLSN: 10, StartAt: at(t0 - 5)}}
		rep := run(t, Config{Source: f.src, Periods: one, Gaps: []Gap{{FromLSN: 14, ToLSN: 15, At: at(enabledAt)}}})
		wantKinds(t, rep, map[Kind]int{KindVersionGap: 1})
		if d := rep.List[0].Detail; !strings.Contains(d, "retention gaps") || !strings.Contains(d, "LSN 14-15") {
			t.Errorf("the gap violation does not name the retention gap: %s", d)
		}
	})
	t.Run("disabled for a moment", func(t *testing.T) {
		f := newFixture(t)
		f.entity("alice")
		f.flush()
		f.update("alice", "while disabled")
		f.pending = nil
		f.update("alice", "after")
		f.flush()
		// Disabled a millisecond after alice's create, re-enabled just
		// before her last update.
		rep := run(t, Config{Source: f.src, Periods: []Period{
			{StartLSN: 1, StartAt: at(t0 - 5), EndLSN: 2, EndAt: at(t0).Add(500 * time.Microsecond)},
			{StartLSN: 3, StartAt: at(t0 + 2).Add(-100 * time.Microsecond)},
		}})
		wantKinds(t, rep, nil)
		// Committed between reading the log's end and the clock when
		// re-enabling: a moment before the period's start, in it.
		rep = run(t, Config{Source: f.src, Periods: []Period{
			{StartLSN: 1, StartAt: at(t0 - 5), EndLSN: 2, EndAt: at(t0).Add(500 * time.Microsecond)},
			{StartLSN: 3, StartAt: at(t0 + 2).Add(3 * time.Millisecond)},
		}})
		wantKinds(t, rep, nil)
		if rep.Periods[1].Records != 1 {
			t.Errorf("periods %+v", rep.Periods)
		}
	})
	t.Run("record while disabled", func(t *testing.T) {
		short := []Period{two[0], {StartLSN: 20, StartAt: at(enabledAt + 60_000)}}
		rep := run(t, Config{Source: f.src, Periods: short})
		wantKinds(t, rep, map[Kind]int{KindOutsidePeriod: 2})
	})
}

func TestPredateStreaming(t *testing.T) {
	f := newFixture(t)
	f.entity("alice")
	f.update("alice", "v2")
	f.pending = nil // before streaming was enabled
	f.update("alice", "v3")
	f.entity("bob")
	f.flush()
	rep := run(t, Config{Source: f.src})
	wantKinds(t, rep, nil)
	if rep.PredateStreaming != 1 || !strings.Contains(strings.Join(rep.Notes, "\n"), "objects that predate streaming: 1") {
		t.Errorf("predate %d, notes %q", rep.PredateStreaming, rep.Notes)
	}
}

// fakeStore is j1ds's graph in memory: stored JSON by id.
type fakeStore map[string]*graph.Object

func (s fakeStore) List(_ context.Context, kind graph.Kind, fn func([]byte) error) error {
	for _, id := range slices.Sorted(maps.Keys(s)) {
		if o := s[id]; o.Kind == kind && !o.Deleted {
			if err := fn(o.AppendJSON(nil)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s fakeStore) Get(_ context.Context, kind graph.Kind, id string) ([]byte, bool, error) {
	o, ok := s[id]
	if !ok || o.Kind != kind {
		return nil, false, nil
	}
	return o.AppendJSON(nil), true, nil
}

func TestCompare(t *testing.T) {
	f := newFixture(t)
	f.base()
	store := func() fakeStore {
		s := fakeStore{}
		for _, o := range f.objs {
			c := *o
			s[o.ID] = &c
		}
		return s
	}
	t.Run("same", func(t *testing.T) {
		rep := run(t, Config{Source: f.src, Store: store()})
		wantKinds(t, rep, nil)
		want := CompareReport{StoreEntities: 2, StoreRelationships: 0, Live: 2, Matching: 2}
		if *rep.Compare != want {
			t.Errorf("compare %+v, want %+v", *rep.Compare, want)
		}
	})
	t.Run("differences", func(t *testing.T) {
		s := store()
		dave := &graph.Object{Kind: graph.KindEntity, ID: graph.ObjectID(account, "s", "dave"), Key: "dave-key", Type: "test_user", Class: []string{"User"}, AccountID: account, Version: 1}
		s[dave.ID] = dave                                                                   // missing from the bucket
		s[f.objs["bob"].ID].Props = nil                                                     // differs
		s[f.objs["alice"].ID].Deleted = false                                               // deleted in the bucket, live in j1ds
		delete(s, f.objs["carol"].ID)                                                       // extra in the bucket
		s[f.objs["alice-has-bob"].ID].Props = []graph.Prop{{Name: "x", Value: []byte("1")}} // deleted in both: not compared
		rep := run(t, Config{Source: f.src, Store: s})
		wantKinds(t, rep, map[Kind]int{KindMissing: 1, KindDiffers: 2, KindExtra: 1})
		want := CompareReport{StoreEntities: 3, Live: 2, Missing: 1, Differ: 2, Extra: 1}
		if *rep.Compare != want {
			t.Errorf("compare %+v, want %+v", *rep.Compare, want)
		}
		var text bytes.Buffer
		_ = rep.WriteText(&text)
		for _, s := range []string{`name (bucket "Bob", j1ds absent)`, "deleted in the bucket, live in j1ds", "j1ds has no such object", "the bucket has no record of it"} {
			if !strings.Contains(text.String(), s) {
				t.Errorf("report lacks %q:\n%s", s, text.String())
			}
		}
	})
}

// TestCompareFindsDroppedLastChange: a dropped change that no later
// version reveals is found only by comparing with j1ds.
func TestCompareFindsDroppedLastChange(t *testing.T) {
	f := newFixture(t)
	keys := f.base()
	f.rewrite(keys[1], func(l [][]byte) [][]byte { return slices.Delete(l, 1, 2) }) // bob's update
	wantKinds(t, run(t, Config{Source: f.src}), nil)
	s := fakeStore{}
	for _, o := range f.objs {
		s[o.ID] = o
	}
	rep := run(t, Config{Source: f.src, Store: s})
	wantKinds(t, rep, map[Kind]int{KindDiffers: 1})
	if d := rep.List[0].Detail; !strings.Contains(d, `_version (bucket 1, j1ds 2)`) || rep.List[0].Key != keys[0] || rep.List[0].Line != 2 {
		t.Errorf("violation %s", rep.List[0])
	}
}

func TestDirSource(t *testing.T) {
	f := newFixture(t)
	f.base()
	root := t.TempDir()
	for k, b := range f.src {
		p := filepath.Join(root, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep := run(t, Config{Source: Dir{Root: root}})
	wantKinds(t, rep, nil)
	if rep.Objects != 3 || rep.Records.Total != 9 {
		t.Errorf("report %+v", rep)
	}
	// Another account's directory holds nothing: no objects, no error.
	rep = run(t, Config{Account: "globex", Source: Dir{Root: root}})
	if rep.Objects != 0 || !rep.Clean() {
		t.Errorf("report %+v", rep)
	}
	if _, err := Run(context.Background(), Config{Account: account, Source: Dir{Root: filepath.Join(root, "nope")}}); err == nil {
		t.Error("a missing directory is not an error")
	}
}

func TestParseKey(t *testing.T) {
	good := exporter.ObjectKey(account, time.Date(2025, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro(), ".jsonl.gz")
	if _, err := parseKey(good, account, ""); err != nil {
		t.Errorf("%s: %v", good, err)
	}
	if _, err := parseKey(good, account, ".jsonl"); err == nil {
		t.Errorf("%s accepted with suffix .jsonl configured", good)
	}
	for _, bad := range []string{
		strings.Replace(good, "accountId=acme", "accountId=globex", 1),
		strings.Replace(good, "time=235959", "time=245959", 1),
		strings.Replace(good, "year=2025", "year=25", 1),
		strings.Replace(good, "/day=31/", "/day=31/x/", 1),
		strings.Replace(good, ".999999Z", ".99999Z", 1),
		strings.Replace(good, "Z.jsonl.gz", ".jsonl.gz", 1),
	} {
		if _, err := parseKey(bad, account, ""); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
