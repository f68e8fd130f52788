package api_test

import (
	"os"
	"testing"

	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// TestMain stops the PostgreSQL the tests on that backend start.
func TestMain(m *testing.M) { os.Exit(localpg.Main(m)) }
