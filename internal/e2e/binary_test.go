package e2e

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// TestMain keeps the AWS SDK off the network (no instance metadata lookups
// from a test, ever), gives the binaries the tests build a directory that
// outlives each test, and stops the PostgreSQL server the tests share
// (localpg.Shared) after them.
func TestMain(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	dir, err := os.MkdirTemp("", "j1ds-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binaries.dir = dir
	code := localpg.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// binaryKind is a build of ./cmd/j1ds.
type binaryKind struct {
	// race builds with the race detector.
	race bool
	// failpoints builds with the failpoints tag: J1DS_FAILPOINT kills the
	// process at the named point (internal/failpoint).
	failpoints bool
}

// The builds the tests use: the operator's binary, the binary of the
// commands the tests run, and the crash tests' binary, with failpoints
// (both with the race detector when this test binary has it).
var (
	operatorBuild = binaryKind{}
	commandBuild  = binaryKind{race: raceEnabled}
	crashBuild    = binaryKind{race: raceEnabled, failpoints: true}
)

// binaries are the builds made so far, each built once per test process.
var binaries struct {
	dir string
	mu  sync.Mutex
	m   map[binaryKind]*builtBinary
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// j1dsBinary builds ./cmd/j1ds as kind with the go command on PATH, once
// per test process (Go's build cache makes it quick after the first time),
// whatever flags this test binary was built with, and returns the
// binary's path.
func j1dsBinary(t *testing.T, kind binaryKind) string {
	t.Helper()
	binaries.mu.Lock()
	if binaries.m == nil {
		binaries.m = map[binaryKind]*builtBinary{}
	}
	b := binaries.m[kind]
	if b == nil {
		b = &builtBinary{}
		binaries.m[kind] = b
	}
	binaries.mu.Unlock()
	b.once.Do(func() { b.path, b.err = buildJ1ds(kind) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func buildJ1ds(kind binaryKind) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building j1ds needs the go command on PATH: %v", err)
	}
	name, args := "j1ds", []string{"build"}
	if kind.race {
		name, args = name+"-race", append(args, "-race")
	}
	if kind.failpoints {
		name, args = name+"-failpoints", append(args, "-tags", "failpoints")
	}
	bin := filepath.Join(binaries.dir, name)
	cmd := exec.Command(goCmd, append(args, "-o", bin, "github.com/j1ds/j1ds/cmd/j1ds")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v: %v\n%s", cmd.Args[1:], err, out)
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", err
	}
	race, tags := false, ""
	for _, s := range info.Settings {
		switch s.Key {
		case "-race":
			race = s.Value == "true"
		case "-tags":
			tags = s.Value
		}
	}
	if race != kind.race || slices.Contains(strings.Split(tags, ","), "failpoints") != kind.failpoints {
		return "", fmt.Errorf("%s was built with -race=%v -tags=%q, want %+v (GOFLAGS=%q?)", bin, race, tags, kind, os.Getenv("GOFLAGS"))
	}
	return bin, nil
}

// runJ1ds runs a j1ds command from the commands' binary (commandBuild)
// with this process's environment, and returns its exit code, stdout and
// stderr. A command that runs over a minute, or does not exit, fails the
// test.
func runJ1ds(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, j1dsBinary(t, commandBuild), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("j1ds %q: %v\n%s", args, err, stderr.String())
	return 0, "", ""
}

// TestFailpointsOnlyInCrashBuild: the operator's j1ds holds no failpoint,
// not even the name of the variable that arms one; the crash tests' build
// does.
func TestFailpointsOnlyInCrashBuild(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		kind binaryKind
		want bool
	}{{"operator", operatorBuild, false}, {"crash", crashBuild, true}} {
		b, err := os.ReadFile(j1dsBinary(t, tt.kind))
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(b, []byte("J1DS_FAILPOINT")); got != tt.want {
			t.Errorf("the %s build (%+v) holds J1DS_FAILPOINT: %v, want %v", tt.name, tt.kind, got, tt.want)
		}
	}
}
