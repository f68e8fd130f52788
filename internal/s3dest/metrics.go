package s3dest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the S3 writer. Labels are bounded: op is one of the five S3
// operations the writer uses, outcome is "ok" or a lower-cased Error code.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "j1ds_s3_requests_total",
			Help: "S3 requests (each HTTP attempt, retries included) by operation and outcome (ok or the error code).",
		}, []string{"op", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "j1ds_s3_request_duration_seconds",
			Help:    "Duration of S3 requests (each HTTP attempt) by operation.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"op"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_s3_bytes_uploaded_total",
			Help: "Bytes stored in S3 by successful PutObject and UploadPart calls.",
		}),
	}
	if reg == nil {
		return m
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.bytes = register(reg, m.bytes)
	return m
}

// register registers c on reg, or returns the collector already registered
// there under the same name, so that several clients can share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
