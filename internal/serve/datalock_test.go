package serve

import (
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestOpenPebbleDataDirInUse opens the embedded store of a data directory
// twice: the second attempt says that another j1ds holds the directory and
// what to do, and the first store keeps working.
func TestOpenPebbleDataDirInUse(t *testing.T) {
	cfg := Config{Data: filepath.Join(t.TempDir(), "data")}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := openPebble(cfg, log, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer first.close()

	second, err := openPebble(cfg, log, prometheus.NewRegistry())
	if err == nil {
		second.close()
		t.Fatal("second open of the data directory succeeded")
	}
	for _, want := range []string{"data directory " + cfg.Data + " is in use by another j1ds", "stop that j1ds first, or pass another --data"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}

	if _, err := first.accounts.CreateAccount("acct", nil); err != nil {
		t.Errorf("first store after the second open: create account: %v", err)
	}
}
