package exporter

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	objects, events, recordBytes, bytesOut, gaps prometheus.Counter
	failures                                     *prometheus.CounterVec
	flushDuration, lag                           prometheus.Histogram
	enabled                                      prometheus.Gauge
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
		reg.MustRegister(m.objects, m.events, m.recordBytes, m.bytesOut, m.gaps, m.failures, m.flushDuration, m.lag, m.enabled,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "j1ds_export_pending_accounts", Help: "Enabled accounts with changes not yet exported.",
			}, func() float64 {
				e.mu.Lock()
				defer e.mu.Unlock()
				n := 0
				for _, a := range e.mu.accounts {
					if a.pendingSince != 0 {
						n++
					}
				}
				return float64(n)
			}))
	}
	return m
}
