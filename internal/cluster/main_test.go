package cluster_test

import (
	"os"
	"testing"

	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

func TestMain(m *testing.M) { os.Exit(localpg.Main(m)) }
