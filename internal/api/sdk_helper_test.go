package api_test

// Helpers that run the real JupiterOne sync client
// (@jupiterone/integration-sdk-runtime 17.4.0, see testdata/sdk) against a
// j1ds server. They need node and npm on PATH and the npm registry the first
// time; a missing tool or a failed install fails the test, never skips it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	sdkSourceDir      = "testdata/sdk"
	sdkInstallMarker  = ".j1ds-sdk-installed"
	sdkInstallTimeout = 10 * time.Minute
	sdkRunTimeout     = 2 * time.Minute
)

// installSDK makes sure a copy of testdata/sdk with its node_modules exists
// in a cache directory outside the repository and returns that directory
// (it holds sync.js and node_modules). The directory name carries a hash of
// every file of testdata/sdk (node_modules and *.md excluded), so any change to the
// package files or to sync.js gets a fresh install and repeated runs reuse
// the old one. Concurrent installs (parallel test binaries) each install
// into a private temporary directory and rename it into place; the loser of
// the race throws its copy away.
//
// The cache root is $J1DS_SDK_CACHE if set, else os.UserCacheDir()/j1ds-sdk-test,
// else os.TempDir()/j1ds-sdk-test.
func installSDK(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("installSDK: %q not found on PATH (%v): the SDK compatibility test needs Node.js 18-20 and npm; install them (Debian: apt-get install nodejs npm)", tool, err)
		}
	}

	src, err := filepath.Abs(sdkSourceDir)
	if err != nil {
		t.Fatalf("installSDK: %v", err)
	}
	files, sum, err := sdkSourceFiles(src)
	if err != nil {
		t.Fatalf("installSDK: reading %s: %v", src, err)
	}

	root := os.Getenv("J1DS_SDK_CACHE")
	if root == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			root = filepath.Join(dir, "j1ds-sdk-test")
		} else {
			root = filepath.Join(os.TempDir(), "j1ds-sdk-test")
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatalf("installSDK: creating cache dir %s: %v", root, err)
	}
	final := filepath.Join(root, sum[:16])
	if sdkInstalled(final) {
		return final
	}

	tmp, err := os.MkdirTemp(root, sum[:16]+".tmp-")
	if err != nil {
		t.Fatalf("installSDK: %v", err)
	}
	defer os.RemoveAll(tmp) // no-op after a successful rename
	for _, rel := range files {
		if err := sdkCopyFile(filepath.Join(src, rel), filepath.Join(tmp, rel)); err != nil {
			t.Fatalf("installSDK: copying %s: %v", rel, err)
		}
	}

	args := []string{"install", "--no-audit", "--no-fund"}
	if _, err := os.Stat(filepath.Join(tmp, "package-lock.json")); err == nil {
		args = []string{"ci", "--no-audit", "--no-fund"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sdkInstallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_loglevel=warn")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("installSDK: `npm %s` in %s failed: %v\n%s", strings.Join(args, " "), tmp, err, sdkTail(out, 16<<10))
	}
	if _, err := os.Stat(filepath.Join(tmp, "node_modules", "@jupiterone", "integration-sdk-runtime", "package.json")); err != nil {
		t.Fatalf("installSDK: npm %s succeeded but @jupiterone/integration-sdk-runtime is missing: %v\n%s", args[0], err, sdkTail(out, 16<<10))
	}
	if err := os.WriteFile(filepath.Join(tmp, sdkInstallMarker), []byte(sum+"\n"), 0o644); err != nil {
		t.Fatalf("installSDK: %v", err)
	}

	if err := os.Rename(tmp, final); err != nil {
		// Another process may have renamed its copy into place first.
		if sdkInstalled(final) {
			return final
		}
		t.Fatalf("installSDK: moving %s to %s: %v", tmp, final, err)
	}
	return final
}

// runSDKSync writes scenario (see the comment at the top of
// testdata/sdk/sync.js for its schema) to a temporary file, runs
// `node sync.js scenario.json` in dir (from installSDK) against baseURL, and
// returns one decoded object per job in scenario order:
// {"index", "created", "job", "fetched"} or, for jobs with expectError,
// {"index", "created", "error"}.
func runSDKSync(t *testing.T, dir, baseURL, account, apiKey string, scenario any) []map[string]any {
	t.Helper()
	data, err := json.Marshal(scenario)
	if err != nil {
		t.Fatalf("runSDKSync: encoding scenario: %v", err)
	}
	scenarioPath := filepath.Join(t.TempDir(), "scenario.json")
	if err := os.WriteFile(scenarioPath, data, 0o644); err != nil {
		t.Fatalf("runSDKSync: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), sdkRunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "sync.js", scenarioPath)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"J1DS_API_BASE_URL="+baseURL,
		"J1DS_ACCOUNT="+account,
		"J1DS_API_KEY="+apiKey,
		// The SDK also reads a .env file from its working directory and
		// HTTPS_PROXY; keep the run hermetic.
		"HTTPS_PROXY=", "https_proxy=",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("runSDKSync: node sync.js timed out after %v\nstdout:\n%s\nstderr:\n%s", sdkRunTimeout, sdkTail(stdout.Bytes(), 8<<10), sdkTail(stderr.Bytes(), 16<<10))
	}
	if runErr != nil {
		t.Fatalf("runSDKSync: node sync.js failed: %v\nscenario: %s\nstdout:\n%s\nstderr:\n%s", runErr, sdkTail(data, 4<<10), sdkTail(stdout.Bytes(), 8<<10), sdkTail(stderr.Bytes(), 16<<10))
	}

	var results []map[string]any
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("runSDKSync: bad output line %q: %v\nstderr:\n%s", line, err, sdkTail(stderr.Bytes(), 16<<10))
		}
		results = append(results, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("runSDKSync: reading output: %v", err)
	}
	return results
}

// sdkSourceFiles lists the files of testdata/sdk (relative, sorted, without
// node_modules and the *.md docs) and hashes their names and contents.
func sdkSourceFiles(src string) ([]string, string, error) {
	var files []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() && !strings.HasSuffix(d.Name(), ".md") {
			rel, err := filepath.Rel(src, path)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if len(files) == 0 {
		return nil, "", errors.New("no files")
	}
	sort.Strings(files)
	h := sha256.New()
	for _, rel := range files {
		b, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			return nil, "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

func sdkInstalled(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, sdkInstallMarker))
	return err == nil
}

func sdkCopyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// sdkTail returns at most the last n bytes of b as a string.
func sdkTail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "…" + string(b[len(b)-n:])
}
