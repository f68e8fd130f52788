package pgstore_test

import (
	"context"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/graph/graphtest"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// BenchmarkDeleteEntity deletes an entity with 200,000 relationships
// (graphtest.BenchDeleteEntity): run it with -benchtime 1x. The resident
// memory is j1ds's, not the database server's.
func BenchmarkDeleteEntity(b *testing.B) {
	graphtest.BenchDeleteEntity(b, func() (graph.Graph, func()) {
		_, url := localpg.Shared(b)
		s, err := pgstore.Open(context.Background(), url, pgstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s, nil
	}, 200_000)
}
