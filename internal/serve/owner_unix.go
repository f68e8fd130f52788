//go:build unix

package serve

import (
	"os"
	"syscall"
)

// ownedByMe reports whether this process's user owns the file of fi.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
