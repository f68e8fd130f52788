package serve

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

// pebbleConfig is a configuration on the embedded store in a data
// directory Run creates, with an S3 side that is never called (no
// account streams).
func pebbleConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Data = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.PlatformAccountID = "123456789012"
	cfg.S3.Endpoint = "https://127.0.0.1:1"
	cfg.S3.Credentials = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "example-secret-key", "")
	cfg.LogLevel = "debug"
	return cfg
}

// runRefused runs serve with cfg, which must refuse to start, and
// returns its error.
func runRefused(t *testing.T, cfg Config) error {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the configuration is invalid: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), func(addr string) {
		t.Errorf("serve started on %s", addr)
		cancel()
	})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("serve did not refuse to start: %v", err)
	}
	return err
}
