package serve

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connLimiter is the API's listener with a cap on the connections it
// serves, so slow or idle clients cannot take every file descriptor:
//
//   - Up to max connections are served in full.
//   - When max are open, a new connection first takes the place of the
//     connection that has waited longest, idle, for its next request
//     (keep-alive): that one is closed.
//   - Otherwise it takes one of overflow more slots, for at most
//     overflowFor: it answers GET /healthz and /readyz, and 503 with
//     Retry-After to anything else, then closes. When every overflow
//     slot is taken, the oldest overflow connection is closed for it: a
//     health probe, answered in a moment, gets its answer even while
//     slow clients open connections over both caps.
//
// At most max+overflow accepted connections are open at any time (plus
// the one being closed at the moment it is replaced).
type connLimiter struct {
	net.Listener
	max, overflow int
	overflowFor   time.Duration
	metrics       *connMetrics

	mu struct {
		sync.Mutex
		full, over int
		// idle holds the full connections waiting for their next
		// request, each with the order in which it became idle.
		idle map[*limitedConn]uint64
		// overflowing holds the overflow connections, each with the
		// order in which it was accepted.
		overflowing map[*limitedConn]uint64
		seq         uint64
		// peak is the most accepted connections open at once.
		peak int
	}
}

// The slot a connection holds in its limiter.
const (
	slotNone = iota
	slotFull
	slotOverflow
)

func newConnLimiter(ln net.Listener, max, overflow int, overflowFor time.Duration, m *connMetrics) *connLimiter {
	l := &connLimiter{Listener: ln, max: max, overflow: overflow, overflowFor: overflowFor, metrics: m}
	l.mu.idle = make(map[*limitedConn]uint64)
	l.mu.overflowing = make(map[*limitedConn]uint64)
	return l
}

// Accept returns the next connection that gets a slot.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
		c.Close()
	}
}

// admit gives c a slot, taking it from an idle or the oldest overflow
// connection when it must; nil when there are no overflow slots.
func (l *connLimiter) admit(c net.Conn) *limitedConn {
	lc := &limitedConn{Conn: c, l: l}
	var victim *limitedConn
	l.mu.Lock()
	l.mu.seq++
	if l.mu.full >= l.max {
		if victim = oldestLocked(l.mu.idle); victim != nil {
			delete(l.mu.idle, victim)
			victim.slot = slotNone
			l.mu.full--
			l.metrics.reclaimed.Inc()
		}
	}
	if l.mu.full < l.max {
		lc.slot = slotFull
		l.mu.full++
	} else if l.overflow > 0 {
		if l.mu.over >= l.overflow {
			victim = oldestLocked(l.mu.overflowing)
			delete(l.mu.overflowing, victim)
			victim.slot = slotNone
			l.mu.over--
			l.metrics.replaced.Inc()
		}
		lc.slot, lc.until = slotOverflow, time.Now().Add(l.overflowFor)
		l.mu.overflowing[lc] = l.mu.seq
		l.mu.over++
	}
	if n := l.mu.full + l.mu.over; n > l.mu.peak {
		l.mu.peak = n
	}
	l.setOpenLocked()
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close()
	}
	switch lc.slot {
	case slotNone:
		return nil
	case slotOverflow:
		// Before the server reads: every deadline it sets is clamped.
		_ = c.SetDeadline(lc.until)
	}
	return lc
}

func (l *connLimiter) setOpenLocked() {
	l.metrics.open.WithLabelValues("full").Set(float64(l.mu.full))
	l.metrics.open.WithLabelValues("overflow").Set(float64(l.mu.over))
}

// oldestLocked returns the connection of m with the lowest order, or nil.
func oldestLocked(m map[*limitedConn]uint64) *limitedConn {
	var oldest *limitedConn
	var seq uint64
	for c, s := range m {
		if oldest == nil || s < seq {
			oldest, seq = c, s
		}
	}
	return oldest
}

// release frees c's slot; once per connection.
func (l *connLimiter) release(c *limitedConn) {
	l.mu.Lock()
	switch c.slot {
	case slotFull:
		l.mu.full--
	case slotOverflow:
		l.mu.over--
	}
	c.slot = slotNone
	delete(l.mu.idle, c)
	delete(l.mu.overflowing, c)
	l.setOpenLocked()
	l.mu.Unlock()
}

// open returns the connections holding a slot, and the most held at once.
func (l *connLimiter) open() (n, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.full + l.mu.over, l.mu.peak
}

// connState, as http.Server.ConnState, keeps the set of idle connections.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	lc := asLimited(c)
	if lc == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if s == http.StateIdle && lc.slot == slotFull {
		l.mu.seq++
		l.mu.idle[lc] = l.mu.seq
	} else {
		delete(l.mu.idle, lc)
	}
}

// overflowKey marks the context of a request on an overflow connection.
type overflowKey struct{}

// connContext, as http.Server.ConnContext, marks overflow connections.
func (l *connLimiter) connContext(ctx context.Context, c net.Conn) context.Context {
	if lc := asLimited(c); lc != nil && lc.overflow() {
		return context.WithValue(ctx, overflowKey{}, true)
	}
	return ctx
}

// guard answers the requests of overflow connections: health probes are
// served, anything else gets 503 with Retry-After; then the connection
// closes.
func (l *connLimiter) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(overflowKey{}) == nil {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Connection", "close")
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") {
			next.ServeHTTP(w, r)
			return
		}
		l.metrics.overflowed.Inc()
		w.Header().Set("Retry-After", "1")
		writeHTTPError(w, http.StatusServiceUnavailable, "TOO_MANY_CONNECTIONS",
			"j1ds is serving its maximum number of connections (--max-connections); retry in a second, and reuse keep-alive connections rather than opening new ones")
	})
}

// limitedConn is a connection that holds a slot of its limiter until it
// closes. An overflow connection ends at until whatever deadline the
// server sets.
type limitedConn struct {
	net.Conn
	l     *connLimiter
	until time.Time // overflow connections only
	once  sync.Once
	slot  int // guarded by l.mu
}

func (c *limitedConn) overflow() bool { return !c.until.IsZero() }

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c) })
	return err
}

func (c *limitedConn) clamp(t time.Time) time.Time {
	if c.overflow() && (t.IsZero() || t.After(c.until)) {
		return c.until
	}
	return t
}

func (c *limitedConn) SetDeadline(t time.Time) error     { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *limitedConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *limitedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

// asLimited returns the limitedConn under c (under TLS, the connection
// under the *tls.Conn), or nil.
func asLimited(c net.Conn) *limitedConn {
	for {
		switch v := c.(type) {
		case *limitedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
}

// connMetrics are the limiter's metrics.
type connMetrics struct {
	open       *prometheus.GaugeVec
	replaced   prometheus.Counter
	reclaimed  prometheus.Counter
	overflowed prometheus.Counter
	tooSlow    prometheus.Counter
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	m := &connMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "j1ds_http_connections",
			Help: "Connections of the API open, by slot: full (up to --max-connections) or overflow (health probes only).",
		}, []string{"slot"}),
		replaced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_http_connections_replaced_total",
			Help: "Overflow connections closed to make room for a newer one: every full and overflow slot was taken.",
		}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_http_connections_reclaimed_total",
			Help: "Idle keep-alive connections closed to make room for a new connection at --max-connections.",
		}),
		overflowed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_http_connections_overflow_rejected_total",
			Help: "Requests answered 503 TOO_MANY_CONNECTIONS on an overflow connection.",
		}),
		tooSlow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "j1ds_http_body_too_slow_total",
			Help: "Requests cut with 408 because their body arrived slower than --min-body-rate.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.replaced, m.reclaimed, m.overflowed, m.tooSlow)
	}
	return m
}
