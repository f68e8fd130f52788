package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/j1ds/j1ds/internal/serve"
)

// startServe runs j1ds serve in-process on the embedded store in a temp
// data directory and returns its URL and data directory; it stops with
// the test.
func startServe(t *testing.T) (url, data string) {
	t.Helper()
	cfg := serve.DefaultConfig()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.PlatformAccountID = "123456789012"
	cfg.S3.Endpoint = "https://127.0.0.1:1"
	cfg.S3.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "example-secret-key", "")
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(a string) { addr <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + a, cfg.Data
	case err := <-done:
		t.Fatalf("serve did not start: %v", err)
	}
	return "", ""
}

// adminOut runs j1ds admin against url, with the operator key read from
// data, and returns what it printed.
func adminOut(t *testing.T, url, data string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	args = append(args, "--url", url, "--data", data)
	if err := admin(ctx, args, &out); err != nil {
		t.Fatalf("admin %q: %v", args, err)
	}
	if s := out.String(); s != "" && !strings.HasSuffix(s, "\n") {
		t.Errorf("admin %q: output does not end with a newline: %q", args, s)
	}
	return out.String()
}

// fields splits each line of a table or of key: value lines into its
// whitespace-separated fields.
func fields(s string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func TestAdminHumanOutput(t *testing.T) {
	url, data := startServe(t)

	if got := adminOut(t, url, data, "list-accounts"); !strings.HasPrefix(got, "no accounts: create one") {
		t.Errorf("list-accounts with none: %q", got)
	}
	got := adminOut(t, url, data, "create-account", "--id", "acme", "--entitlements", "data-streaming")
	rows := fields(got)
	if len(rows) != 3 || strings.Join(rows[0], " ") != "account: acme" || strings.Join(rows[1], " ") != "entitlements: data-streaming" || rows[2][0] != "created:" {
		t.Errorf("create-account:\n%s", got)
	}
	adminOut(t, url, data, "create-account", "--id", "beta")
	got = adminOut(t, url, data, "list-accounts")
	rows = fields(got)
	if len(rows) != 3 || strings.Join(rows[0], " ") != "ACCOUNT ENTITLEMENTS CREATED" ||
		strings.Join(rows[1][:2], " ") != "acme data-streaming" || strings.Join(rows[2][:2], " ") != "beta none" {
		t.Errorf("list-accounts:\n%s", got)
	}
	// The table's columns are aligned: CREATED starts at the same offset on every line.
	lines := strings.Split(got, "\n")
	col := strings.Index(lines[0], "CREATED")
	for _, l := range lines[1:] {
		if l != "" && (col < 1 || len(l) <= col || l[col-1] != ' ' || l[col] == ' ') {
			t.Errorf("list-accounts: column CREATED not aligned:\n%s", got)
			break
		}
	}
	got = adminOut(t, url, data, "set-entitlements", "--account", "acme", "--entitlements", "")
	if rows = fields(got); len(rows) != 3 || strings.Join(rows[1], " ") != "entitlements: none" {
		t.Errorf("set-entitlements:\n%s", got)
	}

	if got := adminOut(t, url, data, "list-keys", "--account", "acme"); !strings.HasPrefix(got, "no keys for account acme") {
		t.Errorf("list-keys with none: %q", got)
	}
	got = adminOut(t, url, data, "create-key", "--account", "acme", "--role", "admin")
	var secret, keyID string
	for _, l := range strings.Split(got, "\n") {
		if strings.HasPrefix(l, "j1ds_") {
			secret = l
		}
		if f := strings.Fields(l); len(f) == 3 && f[0] == "key" && f[1] == "id:" {
			keyID = f[2]
		}
	}
	if secret == "" || keyID == "" || !strings.Contains(got, "role:     admin\n") || !strings.Contains(got, "shown only once") {
		t.Fatalf("create-key: want the key id, the role, the secret on its own line and that it is shown only once:\n%s", got)
	}
	got = adminOut(t, url, data, "list-keys", "--account", "acme")
	rows = fields(got)
	if len(rows) != 2 || strings.Join(rows[0], " ") != "KEY ID ROLE CREATED" || strings.Join(rows[1][:2], " ") != keyID+" admin" {
		t.Errorf("list-keys:\n%s", got)
	}
	if strings.Contains(got, secret) {
		t.Errorf("list-keys shows the secret:\n%s", got)
	}
	if got := adminOut(t, url, data, "revoke-key", "--account", "acme", "--key", keyID); got != "revoked key "+keyID+" of account acme\n" {
		t.Errorf("revoke-key: %q", got)
	}
}

func TestAdminJSONOutput(t *testing.T) {
	url, data := startServe(t)
	for _, tt := range []struct {
		args  []string
		check func(map[string]any) bool
	}{
		{[]string{"create-account", "--id", "acme", "--entitlements", "data-streaming"}, func(m map[string]any) bool { return m["id"] == "acme" }},
		{[]string{"list-accounts"}, func(m map[string]any) bool { return len(m["accounts"].([]any)) == 1 }},
		{[]string{"set-entitlements", "--account", "acme", "--entitlements", ""}, func(m map[string]any) bool { return len(m["entitlements"].([]any)) == 0 }},
		{[]string{"create-key", "--account", "acme", "--role", "member"}, func(m map[string]any) bool {
			return strings.HasPrefix(m["key"].(string), "j1ds_") && m["role"] == "member"
		}},
		{[]string{"list-keys", "--account", "acme"}, func(m map[string]any) bool { return len(m["keys"].([]any)) == 1 }},
	} {
		got := adminOut(t, url, data, append(tt.args, "--json")...)
		if !strings.HasSuffix(got, "}\n") {
			t.Errorf("%q --json: not one JSON document ending with a newline: %q", tt.args, got)
			continue
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(got))
		if err := dec.Decode(&m); err != nil || dec.More() {
			t.Errorf("%q --json: %v: %q", tt.args, err, got)
			continue
		}
		if !tt.check(m) {
			t.Errorf("%q --json: unexpected answer %q", tt.args, got)
		}
	}
}
