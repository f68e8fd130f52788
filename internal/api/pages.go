package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/j1ds/j1ds/internal/graph"
)

// DefaultMaxPageBytes is the default budget of the objects of one list
// page: a page stops before its objects would pass it, and gives
// nextCursor.
const DefaultMaxPageBytes = 4 << 20

// listChunk is the most bytes of objects read from the store at a time
// while a page is written.
const listChunk = 512 << 10

// byteLister is a graph.Graph whose list pages stop at a byte budget
// (pebblestore and pgstore).
type byteLister interface {
	// ListBytes is graph.Graph's List whose page also stops before its
	// objects' bytes would pass maxBytes; it holds one object at least.
	ListBytes(account string, kind graph.Kind, typ, cursor string, limit, maxBytes int) ([][]byte, string, error)
}

// listBytes reads up to limit objects of about maxBytes (one at least)
// from g: with ListBytes when g has it, else with pages of List small
// enough that objects of the largest size fit maxBytes.
func listBytes(g graph.Graph, account string, kind graph.Kind, typ, cursor string, limit, maxBytes int) ([][]byte, string, error) {
	if bl, ok := g.(byteLister); ok {
		return bl.ListBytes(account, kind, typ, cursor, limit, maxBytes)
	}
	return g.List(account, kind, typ, cursor, max(1, min(limit, maxBytes/graph.MaxObjectBytes)))
}

// writeObjectPage answers a page of up to limit objects from cursor as
// {"items": [...], "nextCursor": "..."}, writing each object as it is read
// from the store, a chunk at a time: the page stops before its objects
// would pass the page budget (a page holds one object at least, whatever
// its size), and then gives the cursor of the rest.
func (s *Server) writeObjectPage(w http.ResponseWriter, r *http.Request, account string, kind graph.Kind, typ, cursor string, limit int) {
	budget := int(s.cfg.MaxPageBytes)
	items, next, err := listBytes(s.cfg.Graph, account, kind, typ, cursor, limit, min(listChunk, budget))
	if err != nil {
		// Nothing was written yet: the error has its own answer.
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString(`{"items":[`)
	written, count := 0, 0
	for full := false; ; {
		for i, it := range items {
			if i == 0 && count > 0 && written+len(it) > budget {
				// The first object of a chunk that does not fit: the page
				// ends before it, at the cursor that read it.
				next, full = cursor, true
				break
			}
			if count > 0 {
				_ = bw.WriteByte(',')
			}
			_, _ = bw.Write(it)
			written += len(it)
			count++
		}
		if next == "" || full || count >= limit || written >= budget {
			break
		}
		cursor = next
		items, next, err = listBytes(s.cfg.Graph, account, kind, typ, cursor, limit-count, min(listChunk, budget-written))
		if err != nil {
			// The answer has begun: cut it, so that the client sees a
			// broken page and not a short one.
			s.log.Error("list page failed after its answer began", slog.String("path", r.URL.Path), slog.Any("err", err))
			_ = bw.Flush()
			panic(http.ErrAbortHandler)
		}
	}
	_, _ = bw.WriteString(`]`)
	if next != "" {
		c, _ := json.Marshal(next)
		_, _ = bw.WriteString(`,"nextCursor":`)
		_, _ = bw.Write(c)
	}
	_, _ = bw.WriteString("}\n")
	_ = bw.Flush()
}

// writeList answers {"<field>": [items...]} with each item encoded as it
// is written, so the answer is never built whole beside the items.
func writeList[T any](w http.ResponseWriter, field string, items []T) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	name, _ := json.Marshal(field)
	_, _ = bw.WriteString("{")
	_, _ = bw.Write(name)
	_, _ = bw.WriteString(":[")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range items {
		buf.Reset()
		if err := enc.Encode(&items[i]); err != nil {
			// The answer has begun: cut it rather than send a short list.
			_ = bw.Flush()
			panic(http.ErrAbortHandler)
		}
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_, _ = bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	_, _ = bw.WriteString("]}\n")
	_ = bw.Flush()
}
