//go:build !failpoints

package failpoint

// Enabled reports whether this build has failpoints: false.
func Enabled() bool { return false }

// Hit does nothing: this build has no failpoints.
func Hit(string) {}
