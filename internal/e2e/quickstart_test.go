package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/serve"
)

// TestServeAdminRestart runs the quick start: serve (in-process) on a free
// port, create an account and a key with j1ds admin (the binary), use the
// key, stop gracefully, start again on the same data and use the key
// again.
func TestServeAdminRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := serve.DefaultConfig()
	cfg.Data, cfg.Listen = dir, "127.0.0.1:0"
	cfg.PlatformAccountID = "123456789012"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func() (string, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		addr := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- serve.Run(ctx, cfg, log, func(a string) { addr <- a }) }()
		var a string
		select {
		case a = <-addr:
		case err := <-done:
			t.Fatalf("serve: %v", err)
		}
		return "http://" + a, func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve returned %v on shutdown", err)
			}
		}
	}
	url, stop := start()
	adminCmd := func(args ...string) (string, error) {
		code, out, stderr := runJ1ds(t, append(append([]string{"admin"}, args...), "--url", url, "--data", dir)...)
		if code != 0 {
			return out, fmt.Errorf("exit %d: %s", code, stderr)
		}
		return out, nil
	}
	if _, err := adminCmd("create-account", "--id", "acme", "--entitlements", "data-streaming"); err != nil {
		t.Fatal(err)
	}
	if _, err := adminCmd("create-account", "--id", "acme"); err == nil || !strings.Contains(err.Error(), "ACCOUNT_EXISTS") {
		t.Fatalf("duplicate account: %v", err)
	}
	if _, err := adminCmd("create-account", "--id", "a/b"); err == nil || !strings.Contains(err.Error(), `"a/b"`) {
		t.Fatalf("invalid account id: %v", err)
	}
	out, err := adminCmd("create-key", "--account", "acme", "--role", "admin", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var k struct{ Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || !strings.HasPrefix(k.Key, "j1ds_") {
		t.Fatalf("create-key printed %q", out)
	}
	get := func() int {
		req, _ := http.NewRequest("GET", url+"/api/v1/accounts/acme/entities", nil)
		req.Header.Set("Authorization", "Bearer "+k.Key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("GET with the new key: %d", code)
	}
	opKey, err := os.ReadFile(filepath.Join(dir, serve.OperatorKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	stop()

	url, stop = start()
	defer stop()
	if code := get(); code != http.StatusOK {
		t.Fatalf("GET after restart: %d", code)
	}
	again, _ := os.ReadFile(filepath.Join(dir, serve.OperatorKeyFile))
	if !bytes.Equal(opKey, again) {
		t.Fatal("the operator key changed across restarts")
	}
	if out, err := adminCmd("list-keys", "--account", "acme"); err != nil || strings.Contains(out, k.Key) {
		t.Fatalf("list-keys: %v, and it must never show the secret: %s", err, out)
	}
}
