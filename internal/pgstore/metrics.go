package pgstore

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/storemetrics"
)

// metrics are the metrics every backend exports (storemetrics), and the
// database's: failed transactions and the connection pool.
type metrics struct {
	*storemetrics.Metrics
	failed prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Store) *metrics {
	m := &metrics{
		Metrics: storemetrics.New(reg,
			func() float64 { return float64(s.LogBytes()) },
			func() float64 { return float64(s.lastLSN.Load()) }),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_db_transaction_failures_total",
			Help: "Graph transactions that failed in the database (not for bad input): unreachable, restarting, or an error it answered.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.failed,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_db_connections_acquired",
				Help: "Connections to PostgreSQL in use.",
			}, func() float64 { return float64(s.pool.Stat().AcquiredConns()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_db_connections_idle",
				Help: "Connections to PostgreSQL open and idle.",
			}, func() float64 { return float64(s.pool.Stat().IdleConns()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "j1ds_db_statements_total",
				Help: "Statements sent to PostgreSQL (each of a batch, BEGIN, COMMIT and a health-check ping count one).",
			}, func() float64 { return float64(s.Statements()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "j1ds_db_acquire_wait_seconds_total",
				Help: "Time spent waiting for a free connection to PostgreSQL.",
			}, func() float64 { return s.pool.Stat().AcquireDuration().Seconds() }))
	}
	return m
}
