package serve

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MinOperatorKeyLen is the shortest operator key j1ds accepts, from
// --operator-key or from the data directory's operator-key file.
const MinOperatorKeyLen = 16

// checkDataDir refuses a data directory that group or others may read,
// write or enter: it holds every tenant's graph and the operator key. A
// directory inside a private one (a parent of this user's that group and
// others cannot enter, as t.TempDir's) is out of their reach whatever its
// own mode, and accepted.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("--data %s is not a directory", dir)
	}
	if open := groupOrOthers(fi.Mode()); open != "" && !insidePrivateDir(dir) {
		return fmt.Errorf("data directory %s is %s by group or others (mode %04o): it holds every account's graph and the operator key; run `chmod 700 %s` and start j1ds again",
			dir, open, fi.Mode().Perm(), dir)
	}
	return nil
}

// insidePrivateDir reports whether a parent directory of dir is owned by
// this process's user and closed to group and others (no execute bit for
// them): then only this user (and root) can reach dir.
func insidePrivateDir(dir string) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && ownedByMe(fi) && fi.Mode().Perm()&0o011 == 0 {
			return true
		}
		if filepath.Dir(p) == p {
			return false
		}
	}
}

// readOperatorKeyFile returns the operator key kept in path, refusing a
// file that group or others may read or write, or a key shorter than
// MinOperatorKeyLen.
func readOperatorKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read operator key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read operator key: %w", err)
	}
	if open := groupOrOthers(fi.Mode()); open != "" {
		return "", fmt.Errorf("operator key file %s is %s by group or others (mode %04o): anyone who reads it runs the operator API; run `chmod 600 %s` and start j1ds again",
			path, open, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read operator key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < MinOperatorKeyLen {
		return "", fmt.Errorf("the operator key in %s is %d characters; at least %d are required (as for --operator-key): write a longer one there, or delete the file and start j1ds again to generate one",
			path, len(key), MinOperatorKeyLen)
	}
	return key, nil
}

// groupOrOthers says whether group or others may read or write a file of
// mode m ("readable", "writable", "readable and writable", or for a
// directory they may only enter, "accessible"), or "". Windows has no
// such bits: always "".
func groupOrOthers(m os.FileMode) string {
	if runtime.GOOS == "windows" {
		return ""
	}
	p := m.Perm()
	r, w := p&0o044 != 0, p&0o022 != 0
	switch {
	case r && w:
		return "readable and writable"
	case r:
		return "readable"
	case w:
		return "writable"
	case m.IsDir() && p&0o011 != 0:
		// Entering a directory reaches the files it names.
		return "accessible"
	}
	return ""
}
