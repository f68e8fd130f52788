package exporter

import "time"

// LagFactor is how many flush intervals an account's oldest unexported
// change may wait before the account counts as lagging: in the status
// (Live.Lagging) and the metric j1ds_export_lagging_accounts.
const LagFactor = 2

// Lagging reports whether a change waiting for lag, with batches written
// every flushInterval, is late enough for an operator to look at: it
// waited more than LagFactor flush intervals.
func Lagging(lag, flushInterval time.Duration) bool {
	return lag > LagFactor*flushInterval
}

// Live is the in-memory part of an account's status.
type Live struct {
	Enabled      bool
	PendingSince time.Time // oldest change not yet exported; zero when none
	NextAttempt  time.Time
	Failures     int
	Flushing     bool
	// Lagging: the oldest change not yet exported waited more than
	// LagFactor flush intervals (Lagging).
	Lagging bool
	// SlowLane: the account's attempts run in the slow lane, its last one
	// having failed or taken longer than Config.SlowAfter.
	SlowLane bool
}

// Status returns the account's live export state.
func (e *Exporter) Status(accountID string) Live {
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.mu.accounts[accountID]
	if a == nil {
		return Live{}
	}
	l := Live{Enabled: true, Failures: a.failures, Flushing: a.running, SlowLane: a.slowLaneLocked()}
	if a.pendingSince != 0 {
		l.PendingSince = time.UnixMicro(a.pendingSince).UTC()
		l.NextAttempt = a.nextAttempt.UTC()
		l.Lagging = Lagging(e.cfg.Clock.Now().Sub(l.PendingSince), e.cfg.FlushInterval)
	}
	return l
}
