// Package npmpkg installs, for tests, an npm package the repository holds
// (a package.json, its package-lock.json and the scripts beside them) with
// its node_modules, once per content, in a cache outside the repository.
// The tests that run JupiterOne's SDK and DuckDB's Node.js client use it.
package npmpkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// marker is the file an installed copy holds once npm succeeded.
const marker = ".j1ds-npm-installed"

// Package is an npm package in the repository to install.
type Package struct {
	// Src is the package's directory (relative to the test's directory,
	// or absolute).
	Src string
	// CacheEnv names the environment variable that sets the cache root;
	// when unset the root is os.UserCacheDir()/CacheName, else
	// os.TempDir()/CacheName.
	CacheEnv, CacheName string
	// Module is a module of node_modules the install must hold
	// ("@duckdb/node-api"): npm succeeding without it is an error.
	Module string
	// Timeout bounds npm.
	Timeout time.Duration
}

// Install makes sure a copy of the package with its node_modules exists in
// the cache and returns its directory. The directory's name carries a hash
// of every file of Src (node_modules and *.md excluded), so a change to the
// package gets a fresh install and repeated runs reuse the old one.
// Concurrent installs (parallel test binaries) each install into a private
// temporary directory and rename it into place; the loser throws its copy
// away. It runs `npm ci` when Src has a package-lock.json, else `npm
// install`. A missing node or npm is an error that says what to install.
func (p Package) Install() (string, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%q not found on PATH (%v): install Node.js and npm (Debian: apt-get install nodejs npm; tools/install-test-deps installs what the tests need)", tool, err)
		}
	}
	src, err := filepath.Abs(p.Src)
	if err != nil {
		return "", err
	}
	files, sum, err := sourceFiles(src)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", src, err)
	}
	root := os.Getenv(p.CacheEnv)
	if root == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			root = filepath.Join(dir, p.CacheName)
		} else {
			root = filepath.Join(os.TempDir(), p.CacheName)
		}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create the cache directory %s: %w", root, err)
	}
	final := filepath.Join(root, sum[:16])
	if installed(final) {
		return final, nil
	}

	tmp, err := os.MkdirTemp(root, sum[:16]+".tmp-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // nothing left after a successful rename
	for _, rel := range files {
		if err := copyFile(filepath.Join(src, rel), filepath.Join(tmp, rel)); err != nil {
			return "", fmt.Errorf("copy %s: %w", rel, err)
		}
	}
	args := []string{"install", "--no-audit", "--no-fund"}
	if _, err := os.Stat(filepath.Join(tmp, "package-lock.json")); err == nil {
		args[0] = "ci"
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_loglevel=warn")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("`npm %s` in %s failed: %v\n%s", strings.Join(args, " "), tmp, err, Tail(out, 16<<10))
	}
	if _, err := os.Stat(filepath.Join(tmp, "node_modules", filepath.FromSlash(p.Module), "package.json")); err != nil {
		return "", fmt.Errorf("`npm %s` succeeded but %s is missing: %v\n%s", args[0], p.Module, err, Tail(out, 16<<10))
	}
	if err := os.WriteFile(filepath.Join(tmp, marker), []byte(sum+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		if installed(final) {
			return final, nil // another process renamed its copy into place first
		}
		// A copy without the marker: an install that stopped half way,
		// or one of an older version of this package. Replace it.
		if rmErr := os.RemoveAll(final); rmErr != nil {
			return "", fmt.Errorf("move %s to %s: %w (and the copy there cannot be removed: %v)", tmp, final, err, rmErr)
		}
		if err := os.Rename(tmp, final); err != nil && !installed(final) {
			return "", fmt.Errorf("move %s to %s: %w", tmp, final, err)
		}
	}
	return final, nil
}

func installed(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, marker))
	return err == nil
}

// sourceFiles lists the files of src (relative, sorted, without
// node_modules and the *.md docs) and hashes their names and contents.
func sourceFiles(src string) ([]string, string, error) {
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

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// Tail returns at most the last n bytes of b as a string.
func Tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "…" + string(b[len(b)-n:])
}
