package pebblestore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/storemetrics"
)

func newMetrics(reg prometheus.Registerer, s *Store) *storemetrics.Metrics {
	return storemetrics.New(reg,
		func() float64 { return float64(s.logBytes.Load()) },
		func() float64 { return float64(s.lsn.Load()) })
}
