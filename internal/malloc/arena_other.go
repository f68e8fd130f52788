//go:build !cgo || !linux || android

package malloc

// limits reports whether this build can limit the arenas.
const limits = false

// ArenaMax returns the arena limit this package set when the process
// started: none in a build without cgo.
func ArenaMax() int { return 0 }
