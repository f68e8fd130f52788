//go:build failpoints

package failpoint_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/j1ds/j1ds/internal/failpoint"
)

// TestMain doubles as the process that hits failpoints.
func TestMain(m *testing.M) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		for i := 0; i < 5; i++ {
			failpoint.Hit("other")
			failpoint.Hit("point")
			os.Stdout.WriteString("survived\n")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(t *testing.T, env string) (string, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", "J1DS_FAILPOINT="+env)
	out, err := cmd.Output()
	return string(out), err
}

func TestFailpointKillsAtTheArmedHit(t *testing.T) {
	for _, tt := range []struct {
		env      string
		survived int
		killed   bool
	}{
		{"", 5, false},
		{"point", 0, true},
		{"point:3", 2, true},
		{"nowhere", 5, false},
	} {
		out, err := child(t, tt.env)
		var ee *exec.ExitError
		killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		if n := strings.Count(out, "survived"); n != tt.survived || killed != tt.killed {
			t.Errorf("J1DS_FAILPOINT=%q: survived %d hits (want %d), killed %v (want %v), err %v", tt.env, n, tt.survived, killed, tt.killed, err)
		}
	}
}
