package verify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/j1ds/j1ds/internal/graph"
)

// compare diffs the graph rebuilt from the records (the last record of
// each id) against the store: every object the store lists must be in the
// bucket with the same properties, and every object live in the bucket but
// not listed must be deleted in the store too.
func (c *checker) compare(ctx context.Context) error {
	cr := c.rep.Compare
	for _, kind := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
		err := c.cfg.Store.List(ctx, kind, func(props []byte) error {
			if kind == graph.KindEntity {
				cr.StoreEntities++
			} else {
				cr.StoreRelationships++
			}
			var m struct {
				ID   string `json:"_id"`
				Type string `json:"_type"`
				Key  string `json:"_key"`
			}
			_ = json.Unmarshal(props, &m)
			uid, err := uuid.Parse(m.ID)
			if err != nil {
				return fmt.Errorf("j1ds listed a %s without a valid _id: %s", kind, short(props))
			}
			s := c.ids[uid]
			if s == nil {
				cr.Missing++
				c.violate(KindMissing, -1, 0, m.ID, "%s %s (%s %q) is live in j1ds; the bucket has no record of it", kind, m.ID, m.Type, m.Key)
				return nil
			}
			s.listed = true
			c.diff(s, m.ID, props)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list %s in j1ds: %w", kind, err)
		}
	}
	// Objects live in the bucket that j1ds did not list: deleted since, or
	// unknown to it. In the order of their last record, for a stable report.
	type unlisted struct {
		uid [16]byte
		s   *idState
	}
	var rest []unlisted
	for uid, s := range c.ids {
		if !s.deleted {
			cr.Live++
			if !s.listed {
				rest = append(rest, unlisted{uid, s})
			}
		}
	}
	slices.SortFunc(rest, func(a, b unlisted) int {
		return cmp.Or(cmp.Compare(a.s.obj, b.s.obj), cmp.Compare(a.s.line, b.s.line))
	})
	for _, u := range rest {
		id := uuid.UUID(u.uid).String()
		props, found, err := c.cfg.Store.Get(ctx, u.s.kind, id)
		if err != nil {
			return fmt.Errorf("get %s %s from j1ds: %w", u.s.kind, id, err)
		}
		if !found {
			cr.Extra++
			c.violate(KindExtra, int(u.s.obj), int(u.s.line), id, "%s %s is live in the bucket; j1ds has no such object", u.s.kind, id)
			continue
		}
		c.diff(u.s, id, props)
	}
	return nil
}

// diff compares the last record's properties of an id with the store's.
func (c *checker) diff(s *idState, id string, store []byte) {
	cr := c.rep.Compare
	var b, st map[string]any
	if err := decodeNumbers(s.props, &b); err != nil {
		// The record was checked; this cannot happen.
		panic(fmt.Sprintf("verify: decode checked record of %s: %v", id, err))
	}
	if err := decodeNumbers(store, &st); err != nil {
		cr.Differ++
		c.violate(KindDiffers, int(s.obj), int(s.line), id, "j1ds answered %s for %s, not a JSON object", short(store), id)
		return
	}
	if reflect.DeepEqual(b, st) {
		cr.Matching++
		return
	}
	cr.Differ++
	var names []string
	for n := range b {
		if _, ok := st[n]; !ok || !reflect.DeepEqual(b[n], st[n]) {
			names = append(names, n)
		}
	}
	for n := range st {
		if _, ok := b[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	const shown = 4
	var parts []string
	for _, n := range names[:min(len(names), shown)] {
		parts = append(parts, fmt.Sprintf("%s (bucket %s, j1ds %s)", n, value(b, n), value(st, n)))
	}
	if len(names) > shown {
		parts = append(parts, fmt.Sprintf("and %d more", len(names)-shown))
	}
	state := ""
	if bd, sd := b["_deleted"] == true, st["_deleted"] == true; bd != sd {
		state = map[bool]string{true: "deleted in the bucket, live in j1ds; ", false: "live in the bucket, deleted in j1ds; "}[bd]
	}
	c.violate(KindDiffers, int(s.obj), int(s.line), id, "%s %s: %sthe last record differs from j1ds's state: %s", s.kind, id, state, strings.Join(parts, ", "))
}

func value(m map[string]any, name string) string {
	v, ok := m[name]
	if !ok {
		return "absent"
	}
	b, _ := json.Marshal(v)
	return short(b)
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
