package malloc

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestArenaMax: a cgo build on glibc Linux limits the arenas at start, and
// leaves them to the operator when MALLOC_ARENA_MAX is set (checked in a
// child process, since the limit is applied when the process loads).
func TestArenaMax(t *testing.T) {
	if os.Getenv("J1DS_MALLOC_CHILD") != "" {
		os.Stdout.WriteString(strings.Repeat("x", ArenaMax()))
		return
	}
	run := func(env ...string) int {
		cmd := exec.Command(os.Args[0], "-test.run=^TestArenaMax$")
		cmd.Env = append(os.Environ(), append(env, "J1DS_MALLOC_CHILD=1")...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("child: %v", err)
		}
		return strings.Count(string(out), "x")
	}
	if !limits {
		if got := run(); got != 0 {
			t.Fatalf("ArenaMax() = %d in a build that cannot limit arenas, want 0", got)
		}
		return
	}
	if got := run(); got != 2 {
		t.Errorf("ArenaMax() = %d at start, want 2", got)
	}
	if got := run("MALLOC_ARENA_MAX=4"); got != 0 {
		t.Errorf("ArenaMax() = %d with MALLOC_ARENA_MAX set, want 0 (the operator's value applies)", got)
	}
}
