package serve

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of the API server's connection limits.
const (
	// defaultReadHeaderTimeout is how long a client may take to send a
	// request's headers: a slow-loris client is cut off after it.
	defaultReadHeaderTimeout = 10 * time.Second
	// DefaultMaxConnections is --max-connections: well under the usual
	// soft limit of 1024 file descriptors, with room for the store's
	// files and the connections to S3 and PostgreSQL.
	DefaultMaxConnections = 512
	// DefaultMinBodyRate is --min-body-rate, in bytes per second.
	DefaultMinBodyRate = 4 << 10
	// bodyRateGrace is how long a body may take before its rate counts.
	bodyRateGrace = 10 * time.Second
	// overflowFor is how long a connection over --max-connections lives:
	// enough for a health probe.
	overflowFor = 2 * time.Second
)

// httpLimits are the API server's connection limits.
type httpLimits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxConnections are served in full; Overflow more, for OverflowFor
	// each, answer health probes only (connLimiter).
	MaxConnections int
	Overflow       int
	OverflowFor    time.Duration
	// MinBodyRate in bytes per second, after BodyRateGrace (minBodyRate);
	// 0: off.
	MinBodyRate   int64
	BodyRateGrace time.Duration
}

// limits returns the connection limits of cfg.
func (c *Config) limits() httpLimits {
	return httpLimits{
		ReadHeaderTimeout: defaultReadHeaderTimeout,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		MaxConnections:    c.MaxConnections,
		Overflow:          overflowSlots(c.MaxConnections),
		OverflowFor:       overflowFor,
		MinBodyRate:       c.MinBodyRate,
		BodyRateGrace:     bodyRateGrace,
	}
}

// overflowSlots is how many connections over max answer health probes.
func overflowSlots(maxConns int) int {
	return min(max(8, maxConns/16), 256)
}

// apiServer is the API's http.Server on a listener that caps its
// connections, over TLS when tlsConf is set.
type apiServer struct {
	*http.Server
	ln      *connLimiter
	metrics *connMetrics
	tls     bool
}

// newAPIServer returns the server of handler on ln with the limits lim.
// Every answer carries X-Content-Type-Options: nosniff. Only HTTP/1.1 is
// served: one connection carries one request at a time, which is what
// --max-connections bounds.
func newAPIServer(handler http.Handler, ln net.Listener, log *slog.Logger, lim httpLimits, tlsConf *tls.Config, reg prometheus.Registerer) *apiServer {
	m := newConnMetrics(reg)
	cl := newConnLimiter(ln, lim.MaxConnections, lim.Overflow, lim.OverflowFor, m)
	h := noSniff(cl.guard(minBodyRate(handler, lim.MinBodyRate, lim.BodyRateGrace, lim.ReadTimeout, m)))
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         cl.connState,
		ConnContext:       cl.connContext,
		TLSConfig:         tlsConf,
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	return &apiServer{Server: srv, ln: cl, metrics: m, tls: tlsConf != nil}
}

// Serve serves until Shutdown or Close.
func (s *apiServer) Serve() error {
	if s.tls {
		return s.ServeTLS(s.ln, "", "")
	}
	return s.Server.Serve(s.ln)
}
