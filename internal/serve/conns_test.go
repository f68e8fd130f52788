package serve

// The cap on the API's connections (connLimiter): slow clients past
// --max-connections hold no more than the cap's file descriptors, health
// probes keep their answers, other requests get 503 until the slow
// clients are cut, and idle keep-alive connections make room.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// capHandler is the API as these tests need it: /healthz, /readyz, and
// POST /work that reads its whole body.
func capHandler() http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	}
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.HandleFunc("POST /work", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "read %d bytes", n)
	})
	return mux
}

// slowClient is a connection that sends its request a byte at a time.
type slowClient struct {
	c    net.Conn
	stop chan struct{}
	done chan struct{}
}

// startSlow opens a connection to addr that sends, one byte every 20 ms,
// either headers that never end or (body) a POST whose 1 MiB body never
// ends, until the server closes it or close.
func startSlow(t *testing.T, addr string, body bool) *slowClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &slowClient{c: c, stop: make(chan struct{}), done: make(chan struct{})}
	head := "GET /healthz HTTP/1.1\r\nHost: j1ds\r\nX-Pad: "
	if body {
		head = "POST /work HTTP/1.1\r\nHost: j1ds\r\nContent-Length: 1048576\r\n\r\n"
	}
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			b := byte('a')
			if !body && i%64 == 63 {
				b = '\n' // a new header line: "aaa\nX-Pad: ..." stays a header
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	return s
}

func (s *slowClient) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.c.Close()
}

// get sends one request on a new connection and returns the answer, its
// body read.
func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	res, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, url, err)
	}
	return res, string(b)
}

// serverFDs is how many file descriptors this process holds for
// connections accepted on the IPv4 listener at addr: sockets whose local
// address is addr, the listener aside (Linux: /proc/net/tcp).
func serverFDs(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatalf("read the TCP sockets: %v", err)
	}
	local := fmt.Sprintf("0100007F:%04X", p)
	inodes := map[string]bool{}
	for line := range strings.Lines(string(table)) {
		f := strings.Fields(line)
		// sl local_address rem_address st ... inode (the 10th field)
		if len(f) > 9 && f[1] == local && f[3] != "0A" { // 0A: LISTEN
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("list file descriptors: %v", err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && inodes[l] {
			n++
		}
	}
	return n
}

// counter is the value of the counter name in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += metricValue(m)
			}
			return sum
		}
	}
	return 0
}

func metricValue(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// waitFor polls cond until it holds; the deadline is a safety net.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestConnectionCap: a slowloris fills the API's connections, half of
// them sending headers byte by byte, half a body, then opens more past
// the cap and past the health-probe slots. While it lasts the server
// holds no more connections (file descriptors) than the cap and its
// overflow, /healthz and /readyz answer 200 and other requests 503 with
// Retry-After; once the slow clients are cut (header timeout, minimum
// body rate) normal requests succeed again.
func TestConnectionCap(t *testing.T) {
	const maxConns, overflow, past = 16, 8, 20
	cfg := DefaultConfig()
	lim := cfg.limits()
	lim.MaxConnections, lim.Overflow = maxConns, overflow
	// Long enough that the checks below run while the slow clients hold
	// their slots: then they are cut, by these two limits.
	lim.ReadHeaderTimeout = 8 * time.Second
	lim.MinBodyRate, lim.BodyRateGrace = 1000, 8*time.Second
	lim.OverflowFor = time.Minute // overflow slots are freed by newer connections only
	srv, reg := startAPIServer(t, capHandler(), lim, nil)
	addr := srv.ln.Addr().String()
	url := "http://" + addr

	var slow []*slowClient
	defer func() {
		for _, s := range slow {
			s.close()
		}
	}()
	for i := 0; i < maxConns; i++ {
		slow = append(slow, startSlow(t, addr, i%2 == 1))
	}
	waitFor(t, "the slow clients to fill the cap", func() bool { n, _ := srv.ln.open(); return n == maxConns })
	// Past the cap and every overflow slot.
	for i := 0; i < overflow+past; i++ {
		slow = append(slow, startSlow(t, addr, i%2 == 1))
	}
	waitFor(t, "the connections past both caps to be accepted", func() bool {
		return counter(t, reg, "j1ds_http_connections_replaced_total") == past ||
			serverFDs(t, addr) > maxConns+overflow // over the cap: fails below
	})
	fds := serverFDs(t, addr)
	open, peak := srv.ln.open()
	t.Logf("%d slow connections: the server holds %d (peak %d) and %d file descriptors for them", len(slow), open, peak, fds)
	if peak > maxConns+overflow || fds > maxConns+overflow {
		t.Errorf("%d slow connections: the server held %d connections at most and %d file descriptors; the cap is %d+%d", len(slow), peak, fds, maxConns, overflow)
	}

	for _, path := range []string{"/healthz", "/readyz"} {
		res, body := get(t, "GET", url+path)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"ok"`) {
			t.Errorf("GET %s at the cap: HTTP %d %s", path, res.StatusCode, body)
		}
	}
	res, body := get(t, "POST", url+"/work")
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || res.StatusCode != http.StatusServiceUnavailable ||
		e.Error.Code != "TOO_MANY_CONNECTIONS" || !strings.Contains(e.Error.Message, "--max-connections") || res.Header.Get("Retry-After") == "" ||
		res.Header.Get("X-Content-Type-Options") != "nosniff" || !res.Close {
		t.Errorf("POST /work at the cap: HTTP %d, Retry-After %q, %s", res.StatusCode, res.Header.Get("Retry-After"), body)
	}
	if n, _ := srv.ln.open(); n < maxConns {
		t.Fatalf("the slow clients were cut before the checks ended (%d connections open): the checks above proved nothing", n)
	}

	// The slow clients are cut; the server serves again.
	waitFor(t, "the slow clients to be cut", func() bool {
		return counter(t, reg, "j1ds_http_body_too_slow_total") == maxConns/2
	})
	waitFor(t, "a full slot", func() bool {
		res, _ := get(t, "POST", url+"/work")
		return res.StatusCode == http.StatusOK
	})
	for i := 0; i < 5; i++ {
		if res, body := get(t, "POST", url+"/work"); res.StatusCode != http.StatusOK {
			t.Errorf("after the slow clients: POST /work: HTTP %d %s", res.StatusCode, body)
		}
	}
}

// TestIdleConnectionsMakeRoom: keep-alive connections waiting idle for
// their next request fill the cap; a new client is served in full, one
// of them closed to make room.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	const maxConns = 4
	cfg := DefaultConfig()
	lim := cfg.limits()
	lim.MaxConnections, lim.Overflow = maxConns, 2
	srv, reg := startAPIServer(t, capHandler(), lim, nil)
	addr := srv.ln.Addr().String()
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < maxConns; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: j1ds\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	waitFor(t, "the keep-alive connections to be idle", func() bool {
		srv.ln.mu.Lock()
		defer srv.ln.mu.Unlock()
		return len(srv.ln.mu.idle) == maxConns
	})
	res, body := get(t, "POST", "http://"+addr+"/work")
	if res.StatusCode != http.StatusOK {
		t.Errorf("POST /work with %d idle connections at the cap: HTTP %d %s", maxConns, res.StatusCode, body)
	}
	if n := counter(t, reg, "j1ds_http_connections_reclaimed_total"); n != 1 {
		t.Errorf("%v idle connections closed to make room, want 1", n)
	}
}

// TestOverflowConnectionEnds: a connection over the cap lives no longer
// than its overflow time, whatever deadline the server sets, and keeps
// no keep-alive.
func TestOverflowConnectionEnds(t *testing.T) {
	cfg := DefaultConfig()
	lim := cfg.limits()
	lim.MaxConnections, lim.Overflow, lim.OverflowFor = 1, 1, 300*time.Millisecond
	srv, _ := startAPIServer(t, capHandler(), lim, nil)
	addr := srv.ln.Addr().String()
	hold := startSlow(t, addr, false)
	defer hold.close()
	waitFor(t, "the slow client to hold the only slot", func() bool { n, _ := srv.ln.open(); return n == 1 })

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	var answer []byte
	go func() {
		defer wg.Done()
		answer, _ = io.ReadAll(c) // until the server closes
	}()
	// Headers begun, never ended: the server's header timeout is 10 s.
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: j1ds\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { wg.Wait(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the overflow connection outlived its 300ms by 5s")
	}
	if len(answer) != 0 && !strings.HasPrefix(string(answer), "HTTP/1.1 4") {
		t.Errorf("the cut overflow connection got %q", answer)
	}
}

// TestNoOverflowSlots: with no overflow slots, a connection over the cap
// is closed as soon as it is accepted.
func TestNoOverflowSlots(t *testing.T) {
	cfg := DefaultConfig()
	lim := cfg.limits()
	lim.MaxConnections, lim.Overflow = 1, 0
	srv, _ := startAPIServer(t, capHandler(), lim, nil)
	addr := srv.ln.Addr().String()
	hold := startSlow(t, addr, false)
	defer hold.close()
	waitFor(t, "the slow client to hold the only slot", func() bool { n, _ := srv.ln.open(); return n == 1 })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection over the cap: read %d, %v; want it closed", n, err)
	}
	if n, _ := srv.ln.open(); n != 1 {
		t.Errorf("%d connections hold a slot, want 1", n)
	}
}
