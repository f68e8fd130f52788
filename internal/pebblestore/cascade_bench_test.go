package pebblestore_test

import (
	"context"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

// BenchmarkDeleteEntity deletes an entity with 200,000 relationships
// (graphtest.BenchDeleteEntity), the store compacted first: run it with
// -benchtime 1x.
func BenchmarkDeleteEntity(b *testing.B) {
	graphtest.BenchDeleteEntity(b, func() (graph.Graph, func()) {
		s, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s, func() {
			if err := s.DB().Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
				b.Fatal(err)
			}
		}
	}, 200_000)
}
