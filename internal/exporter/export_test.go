package exporter

import "time"

// Scheduled reports, for tests, when the scheduler's first account is due
// (zero when none is scheduled) and whether a flush is handed to a worker
// or running.
func (e *Exporter) Scheduled() (next time.Time, busy bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.mu.due) > 0 {
		next = e.mu.due[0].nextAttempt
	}
	busy = e.mu.running > 0
	for _, a := range e.mu.accounts {
		busy = busy || a.queued
	}
	return next, busy
}
