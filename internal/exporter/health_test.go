package exporter_test

import (
	"testing"

	"github.com/j1ds/j1ds/internal/exporter"
)

// TestHealthOf pins the badge's rules: not enabled wins over everything,
// then a failure, then lag.
func TestHealthOf(t *testing.T) {
	for _, c := range []struct {
		enabled, failed, lagging bool
		want                     exporter.Health
	}{
		{false, false, false, exporter.HealthStopped},
		{false, true, true, exporter.HealthStopped},
		{true, true, true, exporter.HealthFailing},
		{true, true, false, exporter.HealthFailing},
		{true, false, true, exporter.HealthDelayed},
		{true, false, false, exporter.HealthStreaming},
	} {
		if got := exporter.HealthOf(c.enabled, c.failed, c.lagging); got != c.want {
			t.Errorf("HealthOf(enabled %v, failed %v, lagging %v) = %s, want %s", c.enabled, c.failed, c.lagging, got, c.want)
		}
	}
}
