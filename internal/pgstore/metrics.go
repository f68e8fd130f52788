package pgstore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/graph"
)

// metrics are the embedded store's metrics under the same names, so
// dashboards work on either backend, and the connection pool's.
type metrics struct {
	commits   prometheus.Counter
	changes   *prometheus.CounterVec
	commitDur prometheus.Histogram
	truncated prometheus.Counter
	failed    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Store) *metrics {
	m := &metrics{
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_graph_commits_total",
			Help: "Transactions committed that changed at least one object.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "j1ds_graph_changes_total",
			Help: "Object changes written to the transaction log, by event type and operation.",
		}, []string{"event_type", "operation"}),
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "j1ds_graph_commit_duration_seconds",
			Help:    "Time from the start of a transaction to its synced commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_log_truncated_entries_total",
			Help: "Log entries removed by retention.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_db_transaction_failures_total",
			Help: "Graph transactions that failed in the database (not for bad input): unreachable, restarting, or an error it answered.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.commits, m.changes, m.commitDur, m.truncated, m.failed,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_log_retained_bytes",
				Help: "Bytes of transaction log entries currently retained (-1: the database could not be read).",
			}, func() float64 { return float64(s.LogBytes()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_log_last_lsn",
				Help: "The last LSN this process committed.",
			}, func() float64 { return float64(s.lastLSN.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_db_connections_acquired",
				Help: "Connections to PostgreSQL in use.",
			}, func() float64 { return float64(s.pool.Stat().AcquiredConns()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_db_connections_idle",
				Help: "Connections to PostgreSQL open and idle.",
			}, func() float64 { return float64(s.pool.Stat().IdleConns()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "j1ds_db_acquire_wait_seconds_total",
				Help: "Time spent waiting for a free connection to PostgreSQL.",
			}, func() float64 { return s.pool.Stat().AcquireDuration().Seconds() }),
		)
	}
	return m
}

func (m *metrics) observeCommit(c graph.Counts, d time.Duration) {
	m.commits.Inc()
	m.commitDur.Observe(d.Seconds())
	add := func(kind, op string, n int) {
		if n > 0 {
			m.changes.WithLabelValues(kind, op).Add(float64(n))
		}
	}
	add("entity", "c", c.EntitiesCreated)
	add("entity", "u", c.EntitiesUpdated)
	add("entity", "d", c.EntitiesDeleted)
	add("relationship", "c", c.RelationshipsCreated)
	add("relationship", "u", c.RelationshipsUpdated)
	add("relationship", "d", c.RelationshipsDeleted)
}
