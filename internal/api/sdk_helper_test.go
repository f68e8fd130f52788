package api_test

// Helpers that run the real JupiterOne sync client
// (@jupiterone/integration-sdk-runtime 17.4.0, see testdata/sdk) against a
// j1ds server. They need node and npm on PATH and the npm registry the first
// time; a missing tool or a failed install fails the test, never skips it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/npmpkg"
)

const (
	sdkSourceDir      = "testdata/sdk"
	sdkInstallTimeout = 10 * time.Minute
	sdkRunTimeout     = 2 * time.Minute
)

// installSDK installs testdata/sdk with its node_modules into a cache
// outside the repository (npmpkg.Install) and returns that directory (it
// holds sync.js and node_modules). The cache root is $J1DS_SDK_CACHE if
// set, else os.UserCacheDir()/j1ds-sdk-test.
func installSDK(t *testing.T) string {
	t.Helper()
	dir, err := npmpkg.Package{
		Src: sdkSourceDir, CacheEnv: "J1DS_SDK_CACHE", CacheName: "j1ds-sdk-test",
		Module: "@jupiterone/integration-sdk-runtime", Timeout: sdkInstallTimeout,
	}.Install()
	if err != nil {
		t.Fatalf("installSDK: the SDK compatibility test runs JupiterOne's SDK with Node.js 18-20: %v", err)
	}
	return dir
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
		t.Fatalf("runSDKSync: node sync.js timed out after %v\nstdout:\n%s\nstderr:\n%s", sdkRunTimeout, npmpkg.Tail(stdout.Bytes(), 8<<10), npmpkg.Tail(stderr.Bytes(), 16<<10))
	}
	if runErr != nil {
		t.Fatalf("runSDKSync: node sync.js failed: %v\nscenario: %s\nstdout:\n%s\nstderr:\n%s", runErr, npmpkg.Tail(data, 4<<10), npmpkg.Tail(stdout.Bytes(), 8<<10), npmpkg.Tail(stderr.Bytes(), 16<<10))
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
			t.Fatalf("runSDKSync: bad output line %q: %v\nstderr:\n%s", line, err, npmpkg.Tail(stderr.Bytes(), 16<<10))
		}
		results = append(results, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("runSDKSync: reading output: %v", err)
	}
	return results
}
