//go:build !linux

package bench

import "os/exec"

// setNodeProcAttr does nothing where there is no parent-death signal; the
// bench still kills its nodes when it ends.
func setNodeProcAttr(cmd *exec.Cmd) {}
