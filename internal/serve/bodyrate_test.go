package serve

// The minimum body rate (minBodyRate): a body that stalls or trickles is
// cut with 408 BODY_TOO_SLOW after its grace, and the connection closed;
// a body sent at speed is read whole, and a handler still working after
// its body ended keeps its request.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// bodyRateServer serves capHandler, plus POST /after that reads its body,
// waits past the body's deadline and reports whether its request is
// still alive, with a minimum body rate of 1000 bytes/s after 200ms.
func bodyRateServer(t *testing.T) (addr string, reg *prometheus.Registry) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/", capHandler())
	mux.HandleFunc("POST /after", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// Past the body's deadline (200ms + its bytes at 1000 bytes/s).
		time.Sleep(600 * time.Millisecond)
		fmt.Fprintf(w, "context: %v", r.Context().Err())
	})
	cfg := DefaultConfig()
	mux.HandleFunc("POST /early", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized) // before reading any of the body
		_, _ = io.WriteString(w, `{"error":{"code":"UNAUTHORIZED","message":"no"}}`)
	})
	lim := cfg.limits()
	lim.MinBodyRate, lim.BodyRateGrace = 1000, 200*time.Millisecond
	srv, reg := startAPIServer(t, mux, lim, nil)
	return srv.ln.Addr().String(), reg
}

func TestMinBodyRate(t *testing.T) {
	addr, reg := bodyRateServer(t)
	for _, tc := range []struct {
		name string
		// send writes the body after the headers (Content-Length 100000).
		send func(c net.Conn, stop <-chan struct{})
	}{
		{"stalls after 100 bytes", func(c net.Conn, stop <-chan struct{}) {
			_, _ = c.Write(bytes.Repeat([]byte("a"), 100))
		}},
		{"trickles a byte every 20ms", func(c net.Conn, stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				if _, err := c.Write([]byte("a")); err != nil {
					return
				}
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "POST /work HTTP/1.1\r\nHost: j1ds\r\nContent-Length: 100000\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				tc.send(c, stop)
			}()
			defer func() { close(stop); <-sent }()
			// Safety net: without the rate, the server waits for its read
			// timeout (2 minutes).
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a slow body: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(body, &e); err != nil || res.StatusCode != http.StatusRequestTimeout || e.Error.Code != "BODY_TOO_SLOW" ||
				!strings.Contains(e.Error.Message, "1000 bytes/s") || !strings.Contains(e.Error.Message, "--min-body-rate") {
				t.Errorf("slow body: HTTP %d %s", res.StatusCode, body)
			}
			if !res.Close || res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("slow body: headers %v", res.Header)
			}
			// The connection is closed: nothing more comes.
			if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Errorf("after the 408 the connection stayed open: read %d, %v", n, err)
			}
		})
	}

	// A handler answering before it reads a slow body answers at once
	// when the body is large (the server closes the connection after) and
	// within the grace when it is small (the server reads what is left
	// first); without a deadline the server would wait for its read
	// timeout (2 minutes).
	for _, size := range []int{1 << 20, 1000} {
		t.Run(fmt.Sprintf("answered unread, %d bytes", size), func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := fmt.Fprintf(c, "POST /early HTTP/1.1\r\nHost: j1ds\r\nContent-Length: %d\r\n\r\na", size); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					if _, err := c.Write([]byte("a")); err != nil {
						return
					}
				}
			}()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || !res.Close {
				t.Errorf("HTTP %d, close %v; want the handler's 401 and a closed connection", res.StatusCode, res.Close)
			}
		})
	}

	t.Run("sent at speed", func(t *testing.T) {
		const size = 4 << 20
		res, err := http.Post("http://"+addr+"/work", "application/octet-stream", bytes.NewReader(make([]byte, size)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || string(b) != fmt.Sprintf("read %d bytes", size) {
			t.Errorf("fast body: HTTP %d %s", res.StatusCode, b)
		}
	})

	t.Run("handler works past the body's deadline", func(t *testing.T) {
		res, err := http.Post("http://"+addr+"/after", "text/plain", strings.NewReader("0123456789"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || string(b) != "context: <nil>" {
			t.Errorf("a request whose body ended was cut later: HTTP %d %s", res.StatusCode, b)
		}
	})
	if n := counter(t, reg, "j1ds_http_body_too_slow_total"); n != 2 {
		t.Errorf("j1ds_http_body_too_slow_total %v, want 2", n)
	}
}
