//go:build unix

package serve

import (
	"fmt"
	"syscall"
)

// fdReserve is the file descriptors j1ds needs beside the API's
// connections: the store's files, the connections to PostgreSQL and S3.
const fdReserve = 256

// checkFDLimit refuses a --max-connections that the process's file
// descriptor limit (ulimit -n, which Go raises to the hard limit) cannot
// hold beside the store's files and outbound connections.
func checkFDLimit(maxConns, overflow int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return nil // unknown: nothing to check against
	}
	need := uint64(maxConns+overflow) + fdReserve
	if uint64(rl.Cur) < need {
		return fmt.Errorf("--max-connections %d needs about %d file descriptors (with %d health-probe connections and %d for the store and outbound connections), but this process may open %d: raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) or lower --max-connections",
			maxConns, need, overflow, fdReserve, rl.Cur)
	}
	return nil
}
