package main

import (
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/serve"
)

func TestEnvFlagsFillUnsetFlags(t *testing.T) {
	t.Setenv("J1DS_LISTEN", "127.0.0.1:9999")
	t.Setenv("J1DS_DATA", "/from/env")
	t.Setenv("J1DS_LOG_RETENTION", "1h")
	c := serve.DefaultConfig()
	fs := serve.NewFlagSet(&c)
	if err := envFlags(fs, []string{"--data", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9999" || c.Data != "/from/flag" || c.LogRetention != time.Hour {
		t.Fatalf("config %+v", c)
	}
	t.Setenv("J1DS_MAX_BODY", "lots")
	c = serve.DefaultConfig()
	if err := envFlags(serve.NewFlagSet(&c), nil); err == nil || !strings.Contains(err.Error(), "J1DS_MAX_BODY") {
		t.Fatalf("bad env value: %v", err)
	}
}

// TestBenchStoreNotFromEnv: J1DS_STORE, set for j1ds serve, never points
// the bench (which creates and drops databases) at that server; --store
// does.
func TestBenchStoreNotFromEnv(t *testing.T) {
	t.Setenv("J1DS_STORE", "postgres://j1ds@db.example:5432/j1ds")
	c, err := benchConfig(nil)
	if err != nil || c.Store != "" {
		t.Errorf("bench store %q, %v from J1DS_STORE; want none", c.Store, err)
	}
	c, err = benchConfig([]string{"--store", "local"})
	if err != nil || c.Store != "local" {
		t.Errorf("bench --store local: %q, %v", c.Store, err)
	}
}
