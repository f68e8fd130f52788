package pebblestore

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// LockedError is the error of Open when another store holds the
// directory: Pebble's lock on the directory's LOCK file is taken, by
// another process or by a store this process opened and has not closed.
type LockedError struct {
	// Dir is the store's directory.
	Dir string
	// PID is the process holding the lock when it could be read (a
	// fcntl lock held by another process), else 0.
	PID int
	// ThisProcess is true when the holder is this process.
	ThisProcess bool
	// Err is Pebble's error.
	Err error
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("graph store %s is in use by %s: %v", e.Dir, e.Holder(), e.Err)
}

func (e *LockedError) Unwrap() error { return e.Err }

// Holder names the holder of the lock: "this process", "process <pid>" or
// "another process".
func (e *LockedError) Holder() string {
	switch {
	case e.ThisProcess:
		return "this process"
	case e.PID > 0:
		return fmt.Sprintf("process %d", e.PID)
	default:
		return "another process"
	}
}

// lockFile is the name of the file Pebble locks in the store's directory.
const lockFile = "LOCK"

// lockedError returns a *LockedError when err, from pebble.Open of dir,
// says the directory lock is held; nil otherwise.
//
// Pebble's default filesystem returns the bare errno of fcntl(F_SETLK)
// (EAGAIN or EACCES) when another process holds the lock, and an error
// reading "lock held by current process" when this process does; a
// failure to create the LOCK file is an *fs.PathError and not a held lock.
func lockedError(dir string, err error) *LockedError {
	var pathErr *fs.PathError
	switch {
	case errors.As(err, &pathErr):
		return nil
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES):
		return &LockedError{Dir: dir, PID: lockHolder(filepath.Join(dir, lockFile)), Err: err}
	case strings.Contains(err.Error(), "lock held by current process"):
		return &LockedError{Dir: dir, ThisProcess: true, Err: err}
	}
	return nil
}
