package pebblestore_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
)

// TestOpenLockedInProcess opens a store twice in this process: the second
// Open fails with a *LockedError naming the directory and this process,
// and the first store keeps working.
func TestOpenLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	first := openStore(t, dir, pebblestore.Options{})

	_, err := pebblestore.Open(dir, pebblestore.Options{})
	var locked *pebblestore.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second Open: %v, want a *LockedError", err)
	}
	if locked.Dir != dir || !locked.ThisProcess {
		t.Errorf("LockedError = %+v, want Dir %s held by this process", locked, dir)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "in use by this process") {
		t.Errorf("error %q does not name the directory and its holder", msg)
	}

	c := upsert(t, first, "acct", parse(t, graph.KindEntity, user1))
	if end, err := first.End("acct"); err != nil || end != c.LSN {
		t.Fatalf("first store after the second Open: End = %d, %v; want %d", end, err, c.LSN)
	}
}

// holdEnv names the directory the helper process opens a store in.
const holdEnv = "J1DS_TEST_HOLD_STORE"

// TestHoldStoreHelper is the helper process of TestOpenLockedByOtherProcess:
// it opens the store in $J1DS_TEST_HOLD_STORE, prints "ready", then for
// each line of its stdin writes an object and prints "ok <lsn>", until its
// stdin closes. It does nothing when the variable is not set.
func TestHoldStoreHelper(t *testing.T) {
	dir := os.Getenv(holdEnv)
	if dir == "" {
		t.Skip("helper process of TestOpenLockedByOtherProcess")
	}
	s, err := pebblestore.Open(dir, pebblestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Println("ready")
	for sc := bufio.NewScanner(os.Stdin); sc.Scan(); {
		c := upsert(t, s, "acct", parse(t, graph.KindEntity, user1))
		fmt.Println("ok", c.LSN)
	}
}

// TestOpenLockedByOtherProcess opens a store in a helper process, then in
// this one: Open fails with a *LockedError naming the directory and the
// helper's pid; the helper's store keeps taking writes.
func TestOpenLockedByOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldStoreHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_, _ = io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
	}
	if sc.Err() != nil || sc.Text() != "ready" {
		t.Fatalf("helper process did not open the store: %v", sc.Err())
	}

	_, err = pebblestore.Open(dir, pebblestore.Options{})
	var locked *pebblestore.LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("Open while another process holds the store: %v, want a *LockedError", err)
	}
	if locked.Dir != dir || locked.ThisProcess {
		t.Errorf("LockedError = %+v, want Dir %s held by another process", locked, dir)
	}
	if want := fmt.Sprintf("in use by process %d", cmd.Process.Pid); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory and %q", err, want)
	}

	if _, err := io.WriteString(stdin, "write\n"); err != nil {
		t.Fatal(err)
	}
	if !sc.Scan() || sc.Text() != "ok 1" {
		t.Fatalf("helper's write after the failed Open: %q, %v; want \"ok 1\"", sc.Text(), sc.Err())
	}
}
