//go:build race

package e2e

// raceEnabled reports whether this test binary runs with the race
// detector.
const raceEnabled = true
