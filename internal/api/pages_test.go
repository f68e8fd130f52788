package api_test

// List pages within a byte budget: objects of about 1 MiB listed with a
// large limit come in pages that stop at the budget with a nextCursor,
// the cursors give every object exactly once, and the server never reads
// more than a chunk of them from the store at a time.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
)

// recordingGraph is a graph.Graph that records the most bytes of objects
// one List or ListBytes call returned.
type recordingGraph struct {
	graph.Graph
	mu       sync.Mutex
	maxBytes int
	calls    int
}

func (g *recordingGraph) record(items [][]byte) {
	n := 0
	for _, it := range items {
		n += len(it)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maxBytes = max(g.maxBytes, n)
	g.calls++
}

func (g *recordingGraph) List(account string, kind graph.Kind, typ, cursor string, limit int) ([][]byte, string, error) {
	items, next, err := g.Graph.List(account, kind, typ, cursor, limit)
	g.record(items)
	return items, next, err
}

// recordingByteGraph is a recordingGraph of a store with ListBytes.
type recordingByteGraph struct{ *recordingGraph }

func (g recordingByteGraph) ListBytes(account string, kind graph.Kind, typ, cursor string, limit, maxBytes int) ([][]byte, string, error) {
	items, next, err := g.Graph.(interface {
		ListBytes(string, graph.Kind, string, string, int, int) ([][]byte, string, error)
	}).ListBytes(account, kind, typ, cursor, limit, maxBytes)
	g.record(items)
	return items, next, err
}

// recordingGraph, without ListBytes, makes the API fall back on List.

func TestListPageBudget(t *testing.T) {
	const objects = 11
	for _, backend := range backends {
		for _, store := range []string{"ListBytes", "List"} {
			t.Run(backend+"/"+store, func(t *testing.T) {
				rec := &recordingGraph{}
				e := newEnvOn(t, backend, func(c *api.Config) {
					rec.Graph = c.Graph
					c.Graph = rec
					if store == "ListBytes" {
						c.Graph = recordingByteGraph{rec}
					}
				})
				key := e.newAccount(t, acct)
				base := "/api/v1/accounts/" + acct + "/entities"
				pad := strings.Repeat("p", graph.MaxObjectBytes-1000)
				for i := range objects {
					r := e.rest(t, key, "POST", base, map[string]any{"_key": fmt.Sprintf("big-object-%02d", i), "_type": "big_thing", "_class": "Thing", "pad": pad})
					wantStatus(t, r, http.StatusCreated)
				}
				rec.mu.Lock()
				rec.maxBytes, rec.calls = 0, 0
				rec.mu.Unlock()

				seen := map[string]int{}
				cursor := ""
				for page := 0; ; page++ {
					p := base + "?limit=1000"
					if cursor != "" {
						p += "&cursor=" + cursor
					}
					r := e.rest(t, key, "GET", p, nil)
					wantStatus(t, r, http.StatusOK)
					m := decode(t, r)
					items, _ := m["items"].([]any)
					next, _ := m["nextCursor"].(string)
					// The page holds as many objects as fit 4 MiB.
					if len(items) == 0 {
						t.Fatalf("page %d is empty", page)
					}
					size, _ := json.Marshal(items[0])
					if want := min(api.DefaultMaxPageBytes/len(size), objects-len(seen)); len(items) != want {
						t.Fatalf("page %d: %d objects (%d bytes), want %d of %d bytes", page, len(items), len(r.Body), want, len(size))
					}
					if len(r.Body) > api.DefaultMaxPageBytes+200 {
						t.Errorf("page %d is %d bytes, more than the 4 MiB budget", page, len(r.Body))
					}
					for _, it := range items {
						seen[it.(map[string]any)["_key"].(string)]++
					}
					if (next == "") != (len(seen) == objects) {
						t.Fatalf("page %d: nextCursor %q after %d of %d objects", page, next, len(seen), objects)
					}
					if next == "" {
						break
					}
					cursor = next
				}
				for i := range objects {
					if k := fmt.Sprintf("big-object-%02d", i); seen[k] != 1 {
						t.Errorf("%s listed %d times", k, seen[k])
					}
				}
				// The server read the pages from the store a chunk at a
				// time: never the whole page, let alone every object.
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if rec.maxBytes > 2*graph.MaxObjectBytes {
					t.Errorf("one read from the store returned %d bytes of objects, want at most about one object", rec.maxBytes)
				}
			})
		}
	}
}

func TestListPageHoldsOneObjectAtLeast(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.MaxPageBytes = 1000 })
	key := e.newAccount(t, acct)
	base := "/api/v1/accounts/" + acct + "/entities"
	for i := range 3 {
		r := e.rest(t, key, "POST", base, map[string]any{"_key": fmt.Sprintf("wide-object-%02d", i), "_type": "wide_thing", "_class": "Thing", "pad": strings.Repeat("w", 5000)})
		wantStatus(t, r, http.StatusCreated)
	}
	r := e.rest(t, key, "GET", base+"?limit=10", nil)
	wantStatus(t, r, http.StatusOK)
	m := decode(t, r)
	if items, _ := m["items"].([]any); len(items) != 1 || m["nextCursor"] == nil {
		t.Fatalf("a page of objects each larger than the budget: %d objects, nextCursor %v; want 1 and a cursor", len(items), m["nextCursor"])
	}
	if got := keysOf(e.listAll(t, key, base+"?limit=10")); len(got) != 3 {
		t.Errorf("listed %v, want the 3 objects", got)
	}
}
