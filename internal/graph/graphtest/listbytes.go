package graphtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
)

// byteLister is a backend whose list pages stop at a byte budget.
type byteLister interface {
	ListBytes(account string, kind graph.Kind, typ, cursor string, limit, maxBytes int) ([][]byte, string, error)
}

// testListBytes: ListBytes pages hold the objects List would, in List's
// order, each page as many as fit maxBytes (one at least) and no more
// than limit, and the cursors chain without gaps or repeats.
func testListBytes(t *testing.T, open Opener) {
	b, _ := start(t, open)
	lb, ok := b.(byteLister)
	if !ok {
		t.Fatalf("%T has no ListBytes", b)
	}
	const account = "acct1"
	var ins []*graph.Input
	for i := range 12 {
		pad := strings.Repeat("p", []int{10, 2000, 50, 4000, 300}[i%5])
		ins = append(ins, entity(t, fmt.Sprintf(`{"_key":"sized-thing-%04d","_type":"test_sized","_class":"Thing","pad":%q}`, i, pad)))
	}
	upsert(t, b, account, append(ins, thing(t, "other-type-thing"))...)
	for _, typ := range []string{"test_sized", ""} {
		all, next, err := b.List(account, graph.KindEntity, typ, "", 1000)
		if err != nil || next != "" {
			t.Fatalf("list %q: next %q, %v", typ, next, err)
		}
		for _, maxBytes := range []int{1, 500, 2500, 6000, 1 << 20} {
			for _, limit := range []int{1, 3, 1000} {
				var got [][]byte
				cursor := ""
				for page := 0; ; page++ {
					items, next, err := lb.ListBytes(account, graph.KindEntity, typ, cursor, limit, maxBytes)
					if err != nil {
						t.Fatalf("%q max %d limit %d page %d: %v", typ, maxBytes, limit, page, err)
					}
					size := 0
					for _, it := range items {
						size += len(it)
					}
					switch {
					case len(items) == 0 && len(got) < len(all):
						t.Fatalf("%q max %d limit %d page %d: empty page before the end", typ, maxBytes, limit, page)
					case len(items) > limit:
						t.Fatalf("%q max %d limit %d page %d: %d objects", typ, maxBytes, limit, page, len(items))
					case len(items) > 1 && size > maxBytes:
						t.Fatalf("%q max %d limit %d page %d: %d objects of %d bytes", typ, maxBytes, limit, page, len(items), size)
					}
					got = append(got, items...)
					if next == "" {
						break
					}
					// It stopped only because the next object did not fit.
					if len(items) < limit && len(got) < len(all) && size+len(all[len(got)]) <= maxBytes {
						t.Fatalf("%q max %d limit %d page %d: stopped at %d bytes, before an object of %d", typ, maxBytes, limit, page, size, len(all[len(got)]))
					}
					if page > len(all) {
						t.Fatalf("%q max %d limit %d: paging does not end", typ, maxBytes, limit)
					}
					cursor = next
				}
				if !slices.EqualFunc(got, all, func(a, b []byte) bool { return string(a) == string(b) }) {
					t.Errorf("%q max %d limit %d: %d objects listed, want List's %d in its order", typ, maxBytes, limit, len(got), len(all))
				}
			}
		}
	}
}
