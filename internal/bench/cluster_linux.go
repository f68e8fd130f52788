package bench

import (
	"os/exec"
	"syscall"
)

// setNodeProcAttr makes the kernel kill a node when the bench dies, so
// that a bench killed or crashed leaves no j1ds serve behind.
func setNodeProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
