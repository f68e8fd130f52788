package locals3

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill versitygw when the process that started
// it dies, so a test binary killed by its timeout leaves no server behind.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
