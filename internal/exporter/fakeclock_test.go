package exporter

import (
	"slices"
	"sync"
	"time"
)

// FakeClock is a Clock that moves only when a test advances it. It is
// built into this package's tests only (the exporter_test package uses it
// too). Its timers are what the scheduler waits on, so Timers and Changed
// tell a test when the scheduler is blocked on the clock and until when.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	armed   map[*fakeTimer]struct{} // set and not yet fired or stopped
	changed chan struct{}           // closed at the next change of armed
}

var _ Clock = (*FakeClock)(nil)

// NewFakeClock returns a clock that reads start until it is advanced.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, armed: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer set to fire at at.
func (c *FakeClock) NewTimer(at time.Time) Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(at)
	return t
}

// Advance moves the clock forward by d and fires every timer set to a
// time no later than the new time.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.armed {
		if !t.at.After(c.now) {
			t.fireLocked()
		}
	}
}

// Timers returns the times the armed timers are set to, earliest first:
// with one timer armed, the scheduler waits on the clock until then.
func (c *FakeClock) Timers() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ts []time.Time
	for t := range c.armed {
		ts = append(ts, t.at)
	}
	slices.SortFunc(ts, time.Time.Compare)
	return ts
}

// Changed returns a channel closed when a timer is next set, fired or
// stopped. Taken before reading Timers, it wakes a waiter on any change
// after that reading.
func (c *FakeClock) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

func (c *FakeClock) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type fakeTimer struct {
	c  *FakeClock
	ch chan time.Time // holds at most the one firing not yet received
	at time.Time      // guarded by c.mu
}

var _ Timer = (*fakeTimer)(nil)

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(at time.Time) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	t.at = at
	if at.After(t.c.now) {
		t.c.armed[t] = struct{}{}
		t.c.changedLocked()
		return
	}
	t.fireLocked()
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.drain()
	delete(t.c.armed, t)
	t.c.changedLocked()
}

// fireLocked delivers the clock's time and disarms the timer.
func (t *fakeTimer) fireLocked() {
	t.ch <- t.c.now // never blocks: the channel was drained when the timer was set
	delete(t.c.armed, t)
	t.c.changedLocked()
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}
