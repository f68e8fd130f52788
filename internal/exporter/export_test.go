package exporter

import "time"

// Scheduled reports, for tests, when the scheduler's first account is due
// in either lane (zero when none is scheduled) and whether a flush is
// running.
func (e *Exporter) Scheduled() (next time.Time, busy bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, h := range e.mu.due {
		if len(h) > 0 && (next.IsZero() || h[0].nextAttempt.Before(next)) {
			next = h[0].nextAttempt
		}
	}
	return next, e.mu.running > 0
}
