package pebblestore_test

import (
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/syncjobs"
	"github.com/j1ds/j1ds/internal/syncjobs/syncjobstest"
)

// TestJobs runs the sync jobs suite on Pebble. A restart closes the store
// and opens its directory again.
func TestJobs(t *testing.T) {
	syncjobstest.Run(t, func(t *testing.T) (graph.Graph, syncjobs.Store, syncjobstest.Reopen) {
		dir := t.TempDir()
		open := func() *pebblestore.Store {
			s, err := pebblestore.Open(dir, pebblestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		s := open()
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		})
		reopen := func() (graph.Graph, syncjobs.Store) {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open()
			return s, s.Jobs()
		}
		return s, s.Jobs(), reopen
	})
}
