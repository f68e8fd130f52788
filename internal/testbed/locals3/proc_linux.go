package locals3

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill versitygw when the process that started
// it dies, so a test binary killed by its timeout leaves no server behind,
// and puts versitygw in a process group of its own, so that the Ctrl-C a
// terminal sends to its foreground group does not reach it: the process that
// started it decides when it stops (Close), after what still needs the
// server (j1ds demo's final flush) is done.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
