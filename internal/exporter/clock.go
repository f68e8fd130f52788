package exporter

import "time"

// Clock is the exporter's time: what it reads as now (flush timestamps,
// the age of a batch, retry times) and the timer its scheduler waits on
// for the next due account. Config.Clock sets it; tests drive the flush
// interval and the retry backoff with a fake instead of waiting for them.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer set to fire once the clock reaches at (at
	// once when at is not after Now).
	NewTimer(at time.Time) Timer
}

// Timer is a one-shot timer of a Clock. It is set to a time, not a
// duration: a timer set from an earlier reading of Now fires at the time
// meant even when the clock has moved in between.
type Timer interface {
	// C delivers the clock's time when the timer fires.
	C() <-chan time.Time
	// Reset sets the timer to fire at at, in place of the time it was set
	// to; a firing not yet received is discarded.
	Reset(at time.Time)
	// Stop stops the timer; a firing not yet received is discarded.
	Stop()
}

// systemClock is the wall clock, the default Config.Clock.
type systemClock struct{}

var _ Clock = systemClock{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(at time.Time) Timer {
	return systemTimer{time.NewTimer(time.Until(at))}
}

// systemTimer is a time.Timer; its channel is synchronous (Go 1.23 and
// later), so Reset and Stop discard a firing not yet received.
type systemTimer struct{ t *time.Timer }

var _ Timer = systemTimer{}

func (s systemTimer) C() <-chan time.Time { return s.t.C }
func (s systemTimer) Reset(at time.Time)  { s.t.Reset(time.Until(at)) }
func (s systemTimer) Stop()               { s.t.Stop() }
