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

// Health is the one-word state of an account's stream that the settings
// page shows as a badge and the status API serves (status.health), so the
// page and scripts agree.
type Health string

// The states of Health, from the stream's settings and status.
const (
	// HealthStopped: streaming is not enabled (disabled by an
	// administrator, or stopped because the account lost the
	// data-streaming entitlement).
	HealthStopped Health = "stopped"
	// HealthFailing: enabled, and the last attempt to store an object
	// failed (an error is recorded and no object was stored since).
	HealthFailing Health = "failing"
	// HealthDelayed: enabled and not failing, but the oldest change not
	// yet exported waited more than LagFactor flush intervals (Lagging).
	HealthDelayed Health = "delayed"
	// HealthStreaming: enabled, not failing, not lagging.
	HealthStreaming Health = "streaming"
)

// HealthOf is the rule of the badge: stopped when not enabled, else
// failing when the last attempt failed, else delayed when lagging, else
// streaming. failed is true while an export error is recorded (it is
// cleared when an object is stored), which every node reads from the
// store, not only the node that exports the account.
func HealthOf(enabled, failed, lagging bool) Health {
	switch {
	case !enabled:
		return HealthStopped
	case failed:
		return HealthFailing
	case lagging:
		return HealthDelayed
	}
	return HealthStreaming
}
