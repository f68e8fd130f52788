package pebblestore

import (
	"sync"
	"syscall"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

// DefaultMinFreeBytes is the free space below which writes are refused.
// Pebble treats a failed WAL write as fatal, so j1ds stops writing while
// there is still room to finish compactions and restart cleanly.
const DefaultMinFreeBytes = 256 << 20

// spaceGuard caches the free space of a directory for a second.
type spaceGuard struct {
	dir     string
	min     uint64
	free    func(dir string) (uint64, error)
	now     func() time.Time
	mu      sync.Mutex
	checked time.Time
	avail   uint64
	err     error
}

// statfsFree returns the bytes available to unprivileged users in dir's
// file system.
func statfsFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// check returns a *DiskFullError when free space is below the reserve.
func (g *spaceGuard) check() error {
	if g == nil || g.min == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := g.now(); now.Sub(g.checked) >= time.Second || g.err != nil {
		g.avail, g.err = g.free(g.dir)
		g.checked = now
	}
	if g.err != nil {
		return nil // cannot tell: let the write decide
	}
	if g.avail < g.min {
		return &graph.DiskFullError{Dir: g.dir, Free: g.avail, Min: g.min}
	}
	return nil
}
