// Package failpoint lets crash tests kill j1ds at exact points of its work,
// where a signal sent from outside could not land reliably.
//
// A failpoint is armed by the environment variable J1DS_FAILPOINT=name or
// name:N (fire at the N-th hit, default the first). When the armed point is
// reached the process kills itself with SIGKILL: no deferred function, no
// flush, no graceful shutdown runs, exactly as in a crash. When the
// variable is unset, Hit is a single atomic load.
//
// The points j1ds has:
//
//	sync-after-chunk        a sync job finalize chunk committed, before the next
//	export-after-upload     an object stored, before its cursor is saved
//	export-after-part       a multipart part uploaded, before the next part
//	settings-after-save     Data Streaming settings saved, before the exporter applies them
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
	armed     string
	fireAt    int64 = 1
	hits      atomic.Int64
	isEnabled atomic.Bool
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
	isEnabled.Store(true)
}

// Hit marks that the named point was reached; if it is armed and this is
// the hit it waits for, the process dies at once.
func Hit(name string) {
	if !isEnabled.Load() || name != armed {
		return
	}
	if hits.Add(1) != fireAt {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s: killing the process\n", name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
