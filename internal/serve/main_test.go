package serve

import (
	"os"
	"testing"

	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// TestMain stops the PostgreSQL server the tests share (localpg.Shared).
func TestMain(m *testing.M) { os.Exit(localpg.Main(m)) }
