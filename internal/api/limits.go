package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the limits that keep request bodies within memory.
const (
	// DefaultMaxBodyMemory is the default budget of body bytes held at
	// once by all requests together, after gzip decoding.
	DefaultMaxBodyMemory = 32 << 20
	// DefaultMaxRequestsPerKey is the default number of requests with a
	// body that one API key (or the operator, or one remote address) may
	// have in progress at once.
	DefaultMaxRequestsPerKey = 4
	// DefaultMaxGzipRatio is the default largest ratio of decoded to
	// encoded bytes of a gzip body, beyond gzipRatioFloor decoded bytes.
	DefaultMaxGzipRatio = 100
)

const (
	// gzipRatioFloor is how many decoded bytes a gzip body may reach
	// whatever its ratio: small bodies of repeated text compress well.
	gzipRatioFloor = 1 << 20
	// smallBody is the size under which a request's body, once read,
	// gives its per-key slot back at once: requests that wait long on
	// small bodies (a finalize waits for its finalization) do not hold
	// the slots of the key's uploads. Its bytes stay in the global budget
	// until the request ends.
	smallBody = 64 << 10
	// budgetChunk is how many bytes a body reserves from the global
	// budget at a time.
	budgetChunk = 32 << 10
	// retryAfterBusy and retryAfterKey are the Retry-After (seconds) of
	// the 503 of a full budget and the 429 of a key at its limit.
	retryAfterBusy = "2"
	retryAfterKey  = "1"
)

// bodyLimits bounds the memory that request bodies hold: a global budget
// of decoded body bytes held by requests in progress, and a number of
// requests with a body in progress per caller.
type bodyLimits struct {
	budget int64
	perKey int
	ratio  int64
	read   atomic.Int64 // body bytes read by requests in progress
	mu     struct {
		sync.Mutex
		used int64
		keys map[string]int
	}
}

func newBodyLimits(budget int64, perKey, ratio int) *bodyLimits {
	l := &bodyLimits{budget: budget, perKey: perKey, ratio: int64(ratio)}
	l.mu.keys = map[string]int{}
	return l
}

// reserve takes n bytes of the budget and reports whether there were.
func (l *bodyLimits) reserve(n int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.used+n > l.budget {
		return false
	}
	l.mu.used += n
	return true
}

// register exports the budget and what of it requests hold, so operators
// see how close the API runs to SERVER_BUSY (503s show in
// j1ds_http_requests_total).
func (l *bodyLimits) register(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "j1ds_http_body_budget_bytes",
			Help: "Request body bytes (after gzip decoding) all requests may hold at once (--max-body-memory).",
		}, func() float64 { return float64(l.budget) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "j1ds_http_body_budget_used_bytes",
			Help: "Request body bytes (after gzip decoding) requests in progress hold.",
		}, func() float64 {
			l.mu.Lock()
			defer l.mu.Unlock()
			return float64(l.mu.used)
		}),
	)
}

func (l *bodyLimits) free(n int64) {
	l.mu.Lock()
	l.mu.used -= n
	l.mu.Unlock()
}

// inUse returns the bytes of the budget held now.
func (l *bodyLimits) inUse() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.used
}

// enter takes one of caller's slots and reports whether there was one.
func (l *bodyLimits) enter(caller string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.keys[caller] >= l.perKey {
		return false
	}
	l.mu.keys[caller]++
	return true
}

func (l *bodyLimits) leave(caller string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.keys[caller]--; l.mu.keys[caller] <= 0 {
		delete(l.mu.keys, caller)
	}
}

// lease is what one request holds of the body limits: budget bytes and
// maybe a slot of its caller. ServeHTTP gives every request one and
// releases it when the request ends, since the decoded body lives until
// then.
type lease struct {
	l      *bodyLimits
	caller string // who the request is, once authenticated
	slot   string // the caller whose slot is held; "" for none
	held   int64  // bytes of the budget held
	used   int64  // of held, bytes handed to the body's reader
}

type leaseKey struct{}

func withLease(r *http.Request, l *lease) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), leaseKey{}, l))
}

func leaseOf(r *http.Request) *lease {
	l, _ := r.Context().Value(leaseKey{}).(*lease)
	return l
}

// setCaller names the authenticated caller of r for the per-key limit.
func setCaller(r *http.Request, caller string) {
	if l := leaseOf(r); l != nil {
		l.caller = caller
	}
}

// callerOf returns who r's lease counts against: the authenticated caller,
// else the remote address's host.
func (le *lease) callerOf(r *http.Request) string {
	if le.caller != "" {
		return le.caller
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// begin takes a slot of r's caller before its body is read.
func (le *lease) begin(r *http.Request) *errBody {
	if le.slot != "" {
		return nil
	}
	c := le.callerOf(r)
	if !le.l.enter(c) {
		who := "this API key"
		switch {
		case c == "operator":
			who = "the operator key"
		case strings.HasPrefix(c, "addr:"):
			who = "this address"
		}
		return &errBody{http.StatusTooManyRequests, "TOO_MANY_REQUESTS", fmt.Sprintf(
			"%s already has %d requests with a body in progress, the most j1ds serves at once for one key (--max-requests-per-key); wait for an answer, then send this one again",
			who, le.l.perKey), retryAfterKey}
	}
	le.slot = c
	return nil
}

// take accounts for n more body bytes, reserving from the budget in
// chunks; false when the budget is spent.
func (le *lease) take(n int64) bool {
	if le.used+n > le.held {
		more := max(budgetChunk, le.used+n-le.held)
		if !le.l.reserve(more) {
			return false
		}
		le.held += more
	}
	le.used += n
	le.l.read.Add(n)
	return true
}

// bodyRead is called when the body was read whole: a small one gives its
// slot back (its bytes stay held).
func (le *lease) bodyRead() {
	if le.used <= smallBody {
		le.leaveSlot()
	}
}

func (le *lease) leaveSlot() {
	if le.slot != "" {
		le.l.leave(le.slot)
		le.slot = ""
	}
}

// release gives everything back, at the end of the request.
func (le *lease) release() {
	le.leaveSlot()
	if le.held > 0 {
		le.l.free(le.held)
		le.l.read.Add(-le.used)
		le.held, le.used = 0, 0
	}
}

// errBusy is the answer to a body that would take the budget past its end.
func errBusy(budget int64) *errBody {
	return &errBody{http.StatusServiceUnavailable, "SERVER_BUSY", fmt.Sprintf(
		"j1ds is holding as many request bodies as its memory budget allows (%d bytes, --max-body-memory); nothing was changed, send the request again after the Retry-After delay",
		budget), retryAfterBusy}
}
