// Package storemetrics holds the metrics every backend of j1ds exports
// under the same names, so dashboards and alerts work on either.
package storemetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/graph"
)

// Metrics are a backend's commit and retention metrics.
type Metrics struct {
	commits   prometheus.Counter
	changes   *prometheus.CounterVec
	commitDur prometheus.Histogram
	truncated prometheus.Counter
}

// New returns the metrics, registered with reg unless it is nil, with
// gauges of the retained log's size and the last LSN read from the
// functions given.
func New(reg prometheus.Registerer, retainedBytes, lastLSN func() float64) *Metrics {
	m := &Metrics{
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
			Help:    "Time from the start of a transaction to its durable commit.",
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
			}, retainedBytes),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_log_last_lsn",
				Help: "The last LSN handed out (by this process, on PostgreSQL).",
			}, lastLSN))
	}
	return m
}

// ObserveCommit counts a commit that logged changes, and its duration.
func (m *Metrics) ObserveCommit(c graph.Counts, d time.Duration) {
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

// Truncated counts log entries removed by retention.
func (m *Metrics) Truncated(n int) { m.truncated.Add(float64(n)) }
