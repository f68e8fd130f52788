package pebblestore_test

import (
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

// BenchmarkDeleteEntity deletes an entity with 200,000 relationships
// (graphtest.BenchDeleteEntity): run it with -benchtime 1x.
func BenchmarkDeleteEntity(b *testing.B) {
	graphtest.BenchDeleteEntity(b, func() graph.Graph {
		s, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}, 200_000)
}
