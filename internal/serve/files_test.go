package serve

// Files and keys: serve refuses a data directory or an operator-key file
// that group or others may read or write, and an operator key in the file
// shorter than --operator-key's minimum, saying how to fix it, and then
// touches nothing; a fresh data directory is created 0700 with its key
// 0600, and starts again.

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// exposed opens the parents of dir that t.TempDir made private (0700),
// so that only dir's own mode keeps others out.
func exposed(t *testing.T, dir string) string {
	t.Helper()
	for p := filepath.Dir(dir); p != os.TempDir() && p != filepath.Dir(p); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if insidePrivateDir(dir) {
		t.Fatalf("%s is still inside a private directory", dir)
	}
	return dir
}

func TestDataDirOpenToOthersRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o755, 0o750, 0o705, 0o770, 0o707, 0o701, 0o710} {
		t.Run(fmt.Sprintf("%04o", mode), func(t *testing.T) {
			cfg := pebbleConfig(t)
			cfg.Data = exposed(t, cfg.Data)
			if err := os.Mkdir(cfg.Data, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cfg.Data, mode); err != nil {
				t.Fatal(err)
			}
			err := runRefused(t, cfg).Error()
			for _, want := range []string{"data directory " + cfg.Data, "by group or others", fmt.Sprintf("(mode %04o)", mode), "run `chmod 700 " + cfg.Data + "`"} {
				if !strings.Contains(err, want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if names := entries(t, cfg.Data); len(names) != 0 {
				t.Errorf("the refused data directory holds %v", names)
			}
		})
	}
}

func TestOperatorKeyFileRefused(t *testing.T) {
	const key = "j1op_a-key-long-enough-for-the-flag"
	for _, tc := range []struct {
		name string
		mode os.FileMode
		key  string
		want []string
	}{
		{"readable by others", 0o604, key, []string{"is readable by group or others (mode 0604)", "run `chmod 600 FILE`"}},
		{"readable by group", 0o640, key, []string{"is readable by group or others (mode 0640)", "run `chmod 600 FILE`"}},
		{"writable by group", 0o620, key, []string{"is writable by group or others (mode 0620)", "run `chmod 600 FILE`"}},
		{"open to all", 0o666, key, []string{"is readable and writable by group or others (mode 0666)", "run `chmod 600 FILE`"}},
		{"short key", 0o600, "j1op_short\n", []string{"the operator key in FILE is 10 characters; at least 16 are required", "delete the file"}},
		{"empty", 0o600, "\n", []string{"the operator key in FILE is 0 characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pebbleConfig(t)
			if err := os.Mkdir(cfg.Data, 0o700); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(cfg.Data, OperatorKeyFile)
			if err := os.WriteFile(file, []byte(tc.key), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(file, tc.mode); err != nil {
				t.Fatal(err)
			}
			err := runRefused(t, cfg).Error()
			for _, want := range tc.want {
				if want = strings.ReplaceAll(want, "FILE", file); !strings.Contains(err, want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if names := entries(t, cfg.Data); !slices.Equal(names, []string{OperatorKeyFile}) {
				t.Errorf("the refused data directory holds %v", names)
			}
			if b, _ := os.ReadFile(file); string(b) != tc.key {
				t.Errorf("the operator key file changed: %q", b)
			}
		})
	}
}

// TestDataDirInsidePrivateDir: a data directory open to others by its
// mode (0755, as t.TempDir makes them) inside a parent of this user's
// that others cannot enter (0700) is out of their reach, and serve starts.
func TestDataDirInsidePrivateDir(t *testing.T) {
	cfg := pebbleConfig(t)
	parent := filepath.Dir(cfg.Data)
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(cfg.Data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfg.Data, 0o755); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, cfg, slog.LevelInfo)
	if code, _, body := call(t, "GET", r.url+"/healthz", "", nil); code != http.StatusOK {
		t.Errorf("GET /healthz: HTTP %d %s", code, body)
	}
}

// TestDataDirPrivate: a fresh data directory is created 0700, its
// operator key 0600, and serve starts again on it; a key written by the
// operator (0600, long enough) is the key.
func TestDataDirPrivate(t *testing.T) {
	cfg := pebbleConfig(t)
	for i := range 2 {
		r := startRun(t, cfg, slog.LevelInfo)
		fi, err := os.Stat(cfg.Data)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(cfg.Data, OperatorKeyFile)
		ki, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 || ki.Mode().Perm() != 0o600 {
			t.Errorf("start %d: data directory %04o, operator key %04o; want 0700 and 0600", i+1, fi.Mode().Perm(), ki.Mode().Perm())
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if code, _, body := call(t, "GET", r.url+"/operator/v1/accounts", strings.TrimSpace(string(b)), nil); code != http.StatusOK {
			t.Errorf("start %d: the generated key: HTTP %d %s", i+1, code, body)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}

	mine := "an-operator-key-of-my-own"
	if err := os.WriteFile(filepath.Join(cfg.Data, OperatorKeyFile), []byte(mine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, cfg, slog.LevelInfo)
	if code, _, body := call(t, "GET", r.url+"/operator/v1/accounts", mine, nil); code != http.StatusOK {
		t.Errorf("the operator's own key: HTTP %d %s", code, body)
	}
}
