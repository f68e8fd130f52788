//go:build unix

package serve

import (
	"strings"
	"syscall"
	"testing"
)

// TestFDLimit: serve refuses a --max-connections that the process's file
// descriptor limit cannot hold with the overflow slots and the reserve,
// saying how to fix it, and takes one it can.
func TestFDLimit(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	limit := int(min(rl.Cur, 1<<30))
	t.Logf("file descriptor limit %d; the default --max-connections %d needs %d", limit, DefaultMaxConnections, DefaultMaxConnections+overflowSlots(DefaultMaxConnections)+fdReserve)
	over := limit - fdReserve - 8 + 1
	err := checkFDLimit(over, 8)
	if err == nil || !strings.Contains(err.Error(), "ulimit -n") || !strings.Contains(err.Error(), "lower --max-connections") {
		t.Errorf("--max-connections %d with a limit of %d: %v", over, limit, err)
	}
	if err := checkFDLimit(over-1, 8); err != nil {
		t.Errorf("--max-connections %d with a limit of %d: %v", over-1, limit, err)
	}
}
