//go:build failpoints

package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

var (
	armed   string
	fireAt  int64 = 1
	hits    atomic.Int64
	isArmed atomic.Bool
)

func init() {
	v := os.Getenv("J1DS_FAILPOINT")
	if v == "" {
		return
	}
	name, n, ok := strings.Cut(v, ":")
	if ok {
		if k, err := strconv.ParseInt(n, 10, 64); err == nil && k > 0 {
			fireAt = k
		}
	}
	armed = name
	isArmed.Store(true)
}

// Enabled reports whether this build has failpoints: true.
func Enabled() bool { return true }

// Hit marks that the named point was reached; if it is armed and this is
// the hit it waits for, the process dies at once.
func Hit(name string) {
	if !isArmed.Load() || name != armed {
		return
	}
	if hits.Add(1) != fireAt {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s: killing the process\n", name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
