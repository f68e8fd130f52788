package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// otherKey is the shared budget of the keys beyond MaxTracked.
const otherKey = "other"

// limiter allows at most perMinute records per key in each minute of the
// clock (fixed windows), tracking at most maxKeys keys per minute.
type limiter struct {
	kind, attr string // "job" and the attribute naming the key
	perMinute  int
	maxKeys    int
	now        func() time.Time
	metric     prometheus.Counter

	mu struct {
		sync.Mutex
		window  time.Time
		counts  map[string]int // records seen this window, dropped included
		dropped int64          // dropped this window
		keys    int            // keys that dropped some this window
		total   int64
	}
}

func newLimiter(kind, attr string, perMinute, maxKeys int, now func() time.Time, metric prometheus.Counter) *limiter {
	l := &limiter{kind: kind, attr: attr, perMinute: perMinute, maxKeys: maxKeys, now: now, metric: metric}
	l.mu.counts = map[string]int{}
	return l
}

// allow reports whether a record of key may be logged, logging the
// limiter's own records on log: audit.dropped for the last window, and
// audit.rate_limited when key first goes over its budget.
func (l *limiter) allow(log *slog.Logger, key string) bool {
	l.mu.Lock()
	w := l.now().Truncate(time.Minute)
	var dropped int64
	var keys int
	var from time.Time
	if !w.Equal(l.mu.window) {
		dropped, keys, from = l.mu.dropped, l.mu.keys, l.mu.window
		l.mu.window, l.mu.dropped, l.mu.keys = w, 0, 0
		clear(l.mu.counts)
	}
	if _, ok := l.mu.counts[key]; !ok && len(l.mu.counts) >= l.maxKeys {
		key = otherKey
	}
	n := l.mu.counts[key] + 1
	l.mu.counts[key] = n
	ok := n <= l.perMinute
	if !ok {
		l.mu.dropped++
		l.mu.total++
		if n == l.perMinute+1 {
			l.mu.keys++
		}
	}
	l.mu.Unlock()

	ctx := context.Background()
	if dropped > 0 {
		log.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "audit.dropped"), slog.String("kind", l.kind),
			slog.Int64("dropped", dropped), slog.Int("keys", keys), slog.Time("window", from))
	}
	if !ok {
		l.metric.Inc()
		if n == l.perMinute+1 {
			log.LogAttrs(ctx, slog.LevelWarn, "audit", slog.String("event", "audit.rate_limited"), slog.String("kind", l.kind),
				slog.String(l.attr, key), slog.Int("limit_per_minute", l.perMinute))
		}
	}
	return ok
}

func (l *limiter) total() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.total
}
