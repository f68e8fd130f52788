package locals3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// Version is the versitygw release that Build compiles; tools/versitygw/go.mod
// requires exactly this version.
const Version = "v1.8.0"

// EnvBinary names an environment variable that, when set, gives the path of
// a versitygw binary for Build to return instead of building one.
const EnvBinary = "J1DS_VERSITYGW"

const versitygwPkg = "github.com/versity/versitygw/cmd/versitygw"

// Build returns the path of a versitygw binary, building it once with
// `go build` from the tools module tools/versitygw (which requires
// github.com/versity/versitygw v1.8.0) into
// os.UserCacheDir()/j1ds/versitygw-v1.8.0/versitygw (os.TempDir() stands in
// for the cache dir where there is none).
//
// The binary is written to a temporary name and renamed into place, under an
// exclusive lock on a file beside it, so concurrent processes (parallel test
// binaries, a demo started during a test run) build it once and never see a
// half-written file. A cold build takes a few minutes on two cores; Build
// writes a line about it to progress (which may be nil) before it starts and
// another when it is done. Later calls return the cached binary at once, and
// Go's build cache makes a rebuild after the cache dir was cleared fast.
//
// The tools module is found beside this source file (go test, go run from a
// checkout) or by walking up from the working directory. When the
// environment variable J1DS_VERSITYGW is set, Build returns its value and
// builds nothing.
func Build(ctx context.Context, progress io.Writer) (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("versitygw from %s: %w", EnvBinary, err)
		}
		return p, nil
	}
	if progress == nil {
		progress = io.Discard
	}
	cache, err := os.UserCacheDir()
	if err != nil { // no $HOME nor $XDG_CACHE_HOME, as in some CI sandboxes
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "j1ds", "versitygw-"+Version)
	bin := filepath.Join(dir, "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(dir, "build.lock"), progress)
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // another process built it while we waited
		return bin, nil
	}

	mod, err := toolsModule()
	if err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("versitygw: building it needs the go command on PATH: %w", err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	defer os.Remove(tmp)

	fmt.Fprintf(progress, "building versitygw %s (first time, ~3 min)...\n", Version)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", tmp,
		"-ldflags", "-X main.Version="+Version, versitygwPkg)
	cmd.Dir = mod
	// The tools module is self-contained: no workspace, no vendoring, and
	// GOFLAGS of the caller (say -mod=vendor for the main module) must not
	// leak in.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("versitygw: go build in %s: %w\n%s", mod, err, out.Bytes())
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("versitygw: %w", err)
	}
	fmt.Fprintf(progress, "built versitygw in %s: %s\n", time.Since(start).Round(time.Second), bin)
	return bin, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// toolsModule finds the directory of the tools/versitygw module.
func toolsModule() (string, error) {
	var tried []string
	try := func(root string) (string, bool) {
		d := filepath.Join(root, "tools", "versitygw")
		tried = append(tried, d)
		_, err := os.Stat(filepath.Join(d, "go.mod"))
		return d, err == nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		// file is .../internal/testbed/locals3/build.go in the source tree.
		if d, ok := try(filepath.Join(filepath.Dir(file), "..", "..", "..")); ok {
			return d, nil
		}
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if m, ok := try(d); ok {
				return m, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("versitygw: tools module not found (tried %v); run from a j1ds checkout or set %s to a versitygw binary", tried, EnvBinary)
}

// lockFile takes an exclusive flock on path, polling so that ctx can end the
// wait, and returns the function that releases it. The lock dies with the
// process, so a crashed build never leaves a stale lock behind.
func lockFile(ctx context.Context, path string, progress io.Writer) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("versitygw: lock: %w", err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("versitygw: lock %s: %w", path, err)
		}
		if !told {
			fmt.Fprintln(progress, "waiting for another process that is building versitygw...")
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("versitygw: waiting for build lock: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
