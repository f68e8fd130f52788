package graphtest

import (
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// Options configure a backend opened for the suites.
type Options struct {
	// Now is the backend's clock: commit times and the metadata times come
	// from it, and retention measures age by it. The suites move it.
	Now func() time.Time
	// Retention bounds the log; zero keeps everything. The suites that set
	// it give an Interval longer than any test and run passes with
	// Truncate.
	Retention changelog.Retention
}

// Backend is one open instance of a backend: its graph and the log its
// transactions append to, over the same storage.
type Backend interface {
	graph.Graph
	changelog.Reader
}

// Reopen closes the instance last opened and opens the same storage again
// with the same Options, as a restarted process does, and returns the new
// instance; the old one is not used again.
type Reopen func() Backend

// Opener opens a new, empty backend for one test. The backend is closed
// when the test ends (t.Cleanup), whichever instance reopen last returned.
type Opener func(t *testing.T, o Options) (Backend, Reopen)

// Clock is a clock the suites move; a backend reads it through
// Options.Now.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Add moves the clock by d (back when d is negative).
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
