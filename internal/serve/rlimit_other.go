//go:build !unix

package serve

// checkFDLimit has no file descriptor limit to check on this system.
func checkFDLimit(maxConns, overflow int) error { return nil }
