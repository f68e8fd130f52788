package serve

// The API server's connection limits (newHTTPServer, as Run builds it):
// a client that sends its headers byte by byte is cut off after the
// header timeout without an answer, and huge headers are refused.

import (
	"bufio"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startLimitedServer serves a handler that counts its calls through
// newAPIServer with the default limits but the given header timeout.
func startLimitedServer(t *testing.T, readHeaderTimeout time.Duration) (addr string, served *atomic.Int64) {
	t.Helper()
	served = new(atomic.Int64)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.WriteHeader(http.StatusOK)
	})
	cfg := DefaultConfig()
	lim := cfg.limits()
	lim.ReadHeaderTimeout = readHeaderTimeout
	srv, _ := startAPIServer(t, h, lim, nil)
	return srv.ln.Addr().String(), served
}

// startAPIServer serves h through newAPIServer with lim (over TLS with
// tlsConf) on a loopback port until the test ends.
func startAPIServer(t *testing.T, h http.Handler, lim httpLimits, tlsConf *tls.Config) (*apiServer, *prometheus.Registry) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv := newAPIServer(h, ln, slog.New(slog.NewTextHandler(io.Discard, nil)), lim, tlsConf, reg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve()
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return srv, reg
}

func TestServerLimits(t *testing.T) {
	cfg := DefaultConfig()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := newAPIServer(http.NotFoundHandler(), ln, slog.Default(), cfg.limits(), nil, nil).Server
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("server limits: header %s, read %s, write %s, idle %s, max header bytes %d",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

func TestSlowLorisCutOff(t *testing.T) {
	const timeout = 300 * time.Millisecond
	addr, served := startLimitedServer(t, timeout)

	// A well-behaved client is served: the server works.
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || served.Load() != 1 {
		t.Fatalf("control request: HTTP %d, served %d", res.StatusCode, served.Load())
	}

	// The slow client: one byte every 20 ms, so its headers would take
	// about 3 s, ten times the timeout, though it never pauses long.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /healthz HTTP/1.1\r\nHost: j1ds\r\nX-Slow: " + strings.Repeat("s", 120) + "\r\n\r\n"
	start := time.Now()
	answer := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(c) // until the server closes the connection
		answer <- string(b)
	}()
	var got string
	closed := false
write:
	for i := 0; i < len(req); i++ {
		select {
		case got = <-answer:
			closed = true
			break write
		default:
		}
		if _, err := c.Write([]byte{req[i]}); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !closed {
		select {
		case got = <-answer:
		case <-time.After(5 * time.Second):
			t.Fatal("the server did not close the slow connection")
		}
	}
	elapsed := time.Since(start)
	if elapsed > timeout+2*time.Second {
		t.Errorf("the slow connection was closed after %s; the header timeout is %s", elapsed, timeout)
	}
	if strings.HasPrefix(got, "HTTP/1.1 2") {
		t.Errorf("the slow client got a success: %q", got)
	}
	if n := served.Load(); n != 1 {
		t.Errorf("the handler ran %d times; the slow request must not reach it", n-1)
	}
	t.Logf("slow client cut off after %s with answer %q", elapsed.Round(time.Millisecond), got)
}

func TestHugeHeadersRefused(t *testing.T) {
	addr, served := startLimitedServer(t, 5*time.Second)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: j1ds\r\nAuthorization: Bearer "+strings.Repeat("k", 200<<10)+"\r\n\r\n")
	}()
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("got HTTP %d, want 431", res.StatusCode)
	}
	if served.Load() != 0 {
		t.Error("the handler ran")
	}
}
