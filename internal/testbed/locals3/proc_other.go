//go:build !linux

package locals3

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts versitygw in a process group of its own, so that a
// terminal's Ctrl-C does not reach it (see proc_linux.go). There is no
// parent-death signal here; Close still stops the server.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
