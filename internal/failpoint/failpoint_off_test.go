//go:build !failpoints

package failpoint_test

import (
	"testing"

	"github.com/j1ds/j1ds/internal/failpoint"
)

// TestNoFailpointsByDefault: a build without the failpoints tag has none,
// whatever the environment arms.
func TestNoFailpointsByDefault(t *testing.T) {
	t.Setenv("J1DS_FAILPOINT", "point")
	if failpoint.Enabled() {
		t.Fatal("Enabled in a build without the failpoints tag")
	}
	for range 3 {
		failpoint.Hit("point") // the test would die here
	}
}
