package pebblestore

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	commits   prometheus.Counter
	changes   *prometheus.CounterVec
	commitDur prometheus.Histogram
	truncated prometheus.Counter
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
	}
	if reg != nil {
		reg.MustRegister(m.commits, m.changes, m.commitDur, m.truncated,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_log_retained_bytes",
				Help: "Bytes of transaction log entries currently retained.",
			}, func() float64 { return float64(s.logBytes.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_log_last_lsn",
				Help: "The last LSN handed out.",
			}, func() float64 { return float64(s.lsn.Load()) }))
	}
	return m
}

func (m *metrics) observeCommit(tx *txn, d time.Duration) {
	m.commits.Inc()
	m.commitDur.Observe(d.Seconds())
	c := tx.counts
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
