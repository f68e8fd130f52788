//go:build !linux

package locals3

import "os/exec"

// setProcAttr does nothing where there is no parent-death signal; Close
// still stops the server.
func setProcAttr(cmd *exec.Cmd) {}
