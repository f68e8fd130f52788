package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// TestDemoCtrlCKeepsEveryCommittedChange runs `j1ds demo --dir` (the
// binary) with a flush interval longer than the test, so that nothing is
// exported while it runs, lets the synthetic integration commit a few
// syncs, then sends SIGINT to the demo's whole process group, as a
// terminal's Ctrl-C does. The demo must stop the integration, let j1ds
// flush, and only then stop the S3 server: every change it reports
// committed is then in the kept bucket, read here straight from
// versitygw's posix directory.
func TestDemoCtrlCKeepsEveryCommittedChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	vgw, err := locals3.Build(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, j1dsBinary(t, commandBuild), "demo", "--dir", dir, "--listen", "127.0.0.1:0",
		"--flush-interval", "1h", "--sync-every", "1s", "--entities", "50")
	cmd.Env = append(os.Environ(), locals3.EnvBinary+"="+vgw)
	// A process group of its own, which the test signals as a terminal
	// signals its foreground group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out strings.Builder
	syncs := 0
	for syncs < 3 {
		l, ok := <-lines
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("the demo ended before its third sync:\n%s\nstderr:\n%s", out.String(), stderr.String())
		}
		out.WriteString(l + "\n")
		if strings.HasPrefix(l, "object ") {
			t.Fatalf("an object was exported before Ctrl-C, with a flush interval of 1h:\n%s", out.String())
		}
		if strings.Contains(l, "changes committed so far") {
			syncs++
		}
	}
	// Changes are committed and none is exported: Ctrl-C now.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		out.WriteString(l + "\n")
	}
	// The bucket is checked before the exit status, so that a failure says
	// what is missing from it.
	exitErr := cmd.Wait()
	t.Logf("demo output:\n%s\nstderr:\n%s", out.String(), stderr.String())

	m := regexp.MustCompile(`Integration stopped: (\d+) changes committed while streaming was on`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("the demo did not report the changes committed:\n%s", out.String())
	}
	committed, _ := strconv.Atoi(m[1])
	if committed == 0 {
		t.Fatalf("the integration committed no change before Ctrl-C:\n%s", out.String())
	}
	defer func() {
		if exitErr != nil {
			t.Errorf("demo after Ctrl-C: %v", exitErr)
		}
	}()
	for _, want := range []string{"Summary: ", "all of them are in the bucket", "s3 ls --recursive s3://acme-security-lake/", "AWS_CA_BUNDLE=", "--endpoint-url https://127.0.0.1:7070"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "inspect-bucket.txt")); err != nil {
		t.Errorf("the kept directory has no inspect-bucket.txt: %v", err)
	}

	// The bucket as versitygw's posix backend keeps it: a file per object.
	objects, records := 0, 0
	root := filepath.Join(dir, "s3", "data", "acme-security-lake", "jupiterone", "graph", "cdc")
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return err
		}
		objects++
		records += bytes.Count(b, []byte("\n"))
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) { // no directory: no object
		t.Fatalf("read the kept bucket: %v", err)
	}
	if records != committed {
		t.Fatalf("the kept bucket holds %d records in %d objects; the demo reported %d changes committed", records, objects, committed)
	}
	t.Logf("%d committed changes, all in %d objects of the kept bucket", committed, objects)
}
