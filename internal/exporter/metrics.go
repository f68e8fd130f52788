package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	objects, events, recordBytes, bytesOut, gaps prometheus.Counter
	failures                                     *prometheus.CounterVec
	// slowAttempts counts attempts past SlowAfter in the main lane, by
	// what became of them (moved to the slow lane, cancelled), and
	// attempts past AttemptTimeout (timed_out).
	slowAttempts       *prometheus.CounterVec
	flushDuration, lag prometheus.Histogram
	enabled            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, e *Exporter) *metrics {
	m := &metrics{
		objects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_export_objects_total", Help: "Objects stored in customers' buckets."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_export_events_total", Help: "Change records stored in customers' buckets."}),
		recordBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_export_record_bytes_total", Help: "Bytes of change records exported, before compression."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_export_compressed_bytes_total", Help: "Bytes of gzip data sent to S3 (retries included)."}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_export_gaps_total", Help: "Ranges of changes dropped because a backlog outlived the log's retention."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "j1ds_export_failures_total", Help: "Failed flushes, by kind (transient or permanent)."}, []string{"kind"}),
		slowAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "j1ds_export_slow_attempts_total",
			Help: "Attempts that ran past --export-slow-after in the main lane, by outcome (moved to the slow lane, or cancelled because it was full), and attempts cancelled past --export-attempt-timeout (timed_out)."},
			[]string{"outcome"}),
		flushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "j1ds_export_flush_duration_seconds", Help: "Time to build and upload one object.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "j1ds_export_lag_seconds", Help: "Age of an object's oldest change when the object is stored.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		enabled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "j1ds_export_enabled_accounts", Help: "Accounts with data streaming enabled."}),
	}
	if reg != nil {
		reg.MustRegister(m.objects, m.events, m.recordBytes, m.bytesOut, m.gaps, m.failures, m.slowAttempts,
			m.flushDuration, m.lag, m.enabled, &stateCollector{e: e})
	}
	return m
}

// stateCollector reads the gauges of the accounts' state in one pass over
// them, when scraped.
type stateCollector struct{ e *Exporter }

var (
	pendingDesc = prometheus.NewDesc("j1ds_export_pending_accounts",
		"Enabled accounts with changes not yet exported.", nil, nil)
	laggingDesc = prometheus.NewDesc("j1ds_export_lagging_accounts",
		"Enabled accounts whose oldest change not yet exported waited more than two flush intervals: alert when above 0.", nil, nil)
	maxLagDesc = prometheus.NewDesc("j1ds_export_max_lag_seconds",
		"Age of the oldest change not yet exported, over every account (0 when none waits).", nil, nil)
	slowDesc = prometheus.NewDesc("j1ds_export_slow_lane_accounts",
		"Enabled accounts served by the slow lane: their last attempt failed or ran past --export-slow-after.", nil, nil)
	inFlightDesc = prometheus.NewDesc("j1ds_export_attempts_in_flight",
		"Objects being built and stored, by lane (main: --export-workers, slow: --export-slow-workers).", []string{"lane"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pendingDesc, laggingDesc, maxLagDesc, slowDesc, inFlightDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.e
	now := e.cfg.Clock.Now()
	e.mu.Lock()
	var pending, lagging, slow int
	var maxLag time.Duration
	for _, a := range e.mu.accounts {
		if a.slowLaneLocked() {
			slow++
		}
		if a.pendingSince == 0 {
			continue
		}
		pending++
		lag := now.Sub(time.UnixMicro(a.pendingSince))
		maxLag = max(maxLag, lag)
		if Lagging(lag, e.cfg.FlushInterval) {
			lagging++
		}
	}
	busy := e.mu.busy
	e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(laggingDesc, prometheus.GaugeValue, float64(lagging))
	ch <- prometheus.MustNewConstMetric(maxLagDesc, prometheus.GaugeValue, maxLag.Seconds())
	ch <- prometheus.MustNewConstMetric(slowDesc, prometheus.GaugeValue, float64(slow))
	for l := range lanes {
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(busy[l]), l.String())
	}
}
