//go:build linux || darwin

package pebblestore

import (
	"io"
	"os"
	"syscall"
)

// lockHolder returns the pid of the process holding a write lock on the
// file at path (fcntl F_GETLK), or 0 when it cannot tell. Call it only
// when this process holds no lock on the file: closing the descriptor it
// opens releases this process's fcntl locks on the file.
func lockHolder(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil || lk.Type == syscall.F_UNLCK {
		return 0
	}
	return int(lk.Pid)
}
