package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

// runVerifyCLI runs j1ds verify as the binary would and returns its exit
// code, stdout and stderr.
func runVerifyCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := verifyCmd(ctx, args, &stdout, &stderr)
	return exitCode(err), stdout.String(), stderr.String() + errText(err)
}

// exitCode is main's mapping of an error to the process's exit code.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestVerifyUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--bucket", "b"}, "--account is required"},
		{[]string{"--account", "acme"}, "exactly one of --bucket"},
		{[]string{"--account", "acme", "--bucket", "b", "--dir", dir}, "exactly one of --bucket"},
		{[]string{"--account", "acme", "--dir", dir, "--compare"}, "--compare needs --url and --key"},
		{[]string{"--account", "acme", "--dir", dir, "--url", "http://127.0.0.1:1"}, "--url needs --key"},
		{[]string{"--account", "acme", "--dir", dir, "--object-suffix", ".json"}, `suffix ".json"`},
		{[]string{"--account", "../x", "--dir", dir}, "account"},
		{[]string{"--account", "acme", "--bucket", "b", "--s3-endpoint", "http://127.0.0.1:9"}, "plain HTTP"},
		{[]string{"--account", "acme", "--dir", dir, "stray"}, "unexpected argument"},
	} {
		code, _, stderr := runVerifyCLI(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("verify %q: exit %d, %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	code, _, stderr := runVerifyCLI(t, "-h")
	if code != 0 || !strings.Contains(stderr, "Usage: j1ds verify") || !strings.Contains(stderr, "-compare") {
		t.Errorf("-h: exit %d, %q", code, stderr)
	}
}
