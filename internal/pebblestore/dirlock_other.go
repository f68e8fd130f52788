//go:build !(linux || darwin)

package pebblestore

// lockHolder returns 0: the holder of a lock is not read on this system.
func lockHolder(string) int { return 0 }
