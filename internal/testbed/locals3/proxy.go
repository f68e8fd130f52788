package locals3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Request is one request as the Proxy received it.
type Request struct {
	Time   time.Time
	Method string
	Path   string // URL path, e.g. /bucket/jupiterone/x
	Query  url.Values
	// Header holds every header the client sent, including
	// X-Amz-Expected-Bucket-Owner and X-Amz-Server-Side-Encryption*.
	Header http.Header
	Host   string
	// TLS is whether the request arrived over TLS. The proxy also accepts
	// plain HTTP on the same port, records it with TLS false and answers it
	// 403 without forwarding, so a test can prove a client never sent it.
	TLS           bool
	ContentLength int64
	// Op is the S3 operation the request is, as far as method, path and
	// query tell: PutObject, CreateMultipartUpload, UploadPart,
	// CompleteMultipartUpload, AbortMultipartUpload, GetObject, HeadObject,
	// DeleteObject, ListObjects, HeadBucket, PutBucketPolicy, ... or "Other".
	Op string
	// Status is the status code the client got (0 when a fault reset the
	// connection or the proxy could not reach the server).
	Status int
	// Fault is the kind of fault injected into this request: "", "status",
	// "reset" or "delay".
	Fault string
}

// ExpectedBucketOwner returns the request's x-amz-expected-bucket-owner
// header ("" when it has none).
func (r Request) ExpectedBucketOwner() string {
	return r.Header.Get("X-Amz-Expected-Bucket-Owner")
}

// SSEHeaders returns the request's x-amz-server-side-encryption* headers,
// keyed in canonical form.
func (r Request) SSEHeaders() map[string]string {
	m := map[string]string{}
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-server-side-encryption") {
			m[k] = strings.Join(v, ",")
		}
	}
	return m
}

// Fault describes what the Proxy does to the next matching requests instead
// of, or before, forwarding them.
type Fault struct {
	// Status, when non-zero, answers with this status and an S3 XML error
	// body without forwarding: 503 is SlowDown, 500 InternalError, others
	// take their code from Code.
	Status int
	// Code and Message override the error body's code and message.
	Code, Message string
	// Reset closes the connection without an answer (a TCP reset).
	Reset bool
	// Delay waits this long first (then forwards, unless Status or Reset
	// is set). The wait ends early if the client goes away, unless Late.
	Delay time.Duration
	// Late makes the request outlive its client, as in a proxy on the way
	// that already has it: the Delay runs in full and the request is
	// forwarded even when the client has gone away meanwhile.
	Late bool
	// Count is how many matching requests get the fault: 1 or more, or -1
	// for every one until SetFault or Reset clears it. 0 means 1.
	Count int
	// Match, when set, limits the fault to requests for which it returns
	// true. It must not read the body.
	Match func(*http.Request) bool
}

// Proxy is a reverse proxy in front of a Server that records every request
// and can inject faults. It listens on 127.0.0.1 with a certificate from the
// server's CA (so clients trust it like the server) and forwards each
// request over TLS with its Host header unchanged, so SigV4 signatures stay
// valid: configure the client with Proxy.URL as its endpoint. Bodies are
// streamed both ways, not buffered.
type Proxy struct {
	// URL is https://127.0.0.1:PORT.
	URL string

	server *Server
	ln     net.Listener
	srv    *http.Server
	rp     *httputil.ReverseProxy
	done   chan struct{}

	mu struct {
		sync.Mutex
		requests []Request
		fault    *Fault
		left     int
	}
}

// NewProxy starts a Proxy in front of s. Close it before closing s.
func (s *Server) NewProxy() (*Proxy, error) {
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("locals3: proxy: %w", err)
	}
	p := &Proxy{URL: "https://" + ln.Addr().String(), server: s, done: make(chan struct{})}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme = target.Scheme
			r.Out.URL.Host = target.Host
			r.Out.Host = r.In.Host // SigV4 signed the Host the client sent
		},
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: s.CAPool, MinVersion: tls.VersionTLS12},
			Proxy:               nil,
			DisableCompression:  true,
			MaxIdleConnsPerHost: 16,
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// versitygw answers some requests (a wrong expected bucket
			// owner, say) before it has read the body and then closes the
			// connection, so the body's sender sees a reset. Pass that on
			// as it is rather than turn it into an HTTP answer.
			if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
				resetConn(unwrapWriter(w))
				return
			}
			writeS3Error(w, http.StatusBadGateway, "BadGateway", "locals3 proxy: "+err.Error())
		},
	}
	tlsConf := &tls.Config{
		Certificates: []tls.Certificate{s.certs.pair},
		NextProtos:   []string{"http/1.1"}, // HTTP/1.1 only, so Reset can hijack
		MinVersion:   tls.VersionTLS12,
	}
	p.ln = newSniffListener(ln, tlsConf)
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 10 * time.Second,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:          nil,
	}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(p.ln)
	}()
	return p, nil
}

// Client returns an S3 client like Server.Client that talks to the proxy.
func (p *Proxy) Client(accessKey, secret string) *s3.Client {
	return newClient(p.URL, p.server.Region, p.server.CAPool, accessKey, secret)
}

// Requests returns a copy of what was recorded since the start or the last
// Reset, in arrival order.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.mu.requests))
	copy(out, p.mu.requests)
	return out
}

// Reset forgets the recorded requests and clears the fault.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.requests = nil
	p.mu.fault = nil
}

// SetFault replaces the current fault; the zero Fault clears it.
func (p *Proxy) SetFault(f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.Status == 0 && !f.Reset && f.Delay == 0 {
		p.mu.fault = nil
		return
	}
	p.mu.fault = &f
	p.mu.left = f.Count
	if p.mu.left == 0 {
		p.mu.left = 1
	}
}

// Close stops the proxy: it stops accepting, closes every connection (so
// requests in flight fail at once) and waits for the accept loop to end.
func (p *Proxy) Close() error {
	err := p.srv.Close()
	<-p.done
	p.rp.Transport.(*http.Transport).CloseIdleConnections()
	return err
}

// takeFaultLocked returns the fault for r, consuming one use of it.
func (p *Proxy) takeFaultLocked(r *http.Request) *Fault {
	f := p.mu.fault
	if f == nil || (f.Match != nil && !f.Match(r)) {
		return nil
	}
	if p.mu.left > 0 {
		p.mu.left--
		if p.mu.left == 0 {
			p.mu.fault = nil
		}
	}
	return f
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	rec := Request{
		Time:          time.Now(),
		Method:        r.Method,
		Path:          r.URL.Path,
		Query:         r.URL.Query(),
		Header:        r.Header.Clone(),
		Host:          r.Host,
		TLS:           r.TLS != nil,
		ContentLength: r.ContentLength,
		Op:            operation(r),
	}
	p.mu.Lock()
	var f *Fault
	if rec.TLS {
		f = p.takeFaultLocked(r)
	}
	idx := len(p.mu.requests)
	p.mu.requests = append(p.mu.requests, rec)
	p.mu.Unlock()
	setStatus := func(status int, fault string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if idx < len(p.mu.requests) && p.mu.requests[idx].Time.Equal(rec.Time) {
			p.mu.requests[idx].Status = status
			p.mu.requests[idx].Fault = fault
		}
	}

	if !rec.TLS {
		setStatus(http.StatusForbidden, "")
		writeS3Error(w, http.StatusForbidden, "InsecureTransport", "locals3 proxy: plain HTTP refused; use https")
		return
	}
	kind := ""
	if f != nil {
		if f.Late {
			r = r.WithContext(context.WithoutCancel(r.Context()))
		}
		if f.Delay > 0 {
			kind = "delay"
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
			}
		}
		switch {
		case f.Reset:
			setStatus(0, "reset")
			resetConn(w)
			return
		case f.Status != 0:
			setStatus(f.Status, "status")
			code, msg := faultBody(f)
			writeS3Error(w, f.Status, code, msg)
			return
		}
	}
	// The status is recorded before the answer goes out, so a client that
	// has its answer finds it in Requests.
	sw := &statusWriter{ResponseWriter: w, onStatus: func(code int) { setStatus(code, kind) }}
	p.rp.ServeHTTP(sw, r)
}

func faultBody(f *Fault) (code, msg string) {
	switch f.Status {
	case http.StatusServiceUnavailable:
		code, msg = "SlowDown", "Please reduce your request rate."
	case http.StatusInternalServerError:
		code, msg = "InternalError", "We encountered an internal error. Please try again."
	default:
		code, msg = strings.ReplaceAll(http.StatusText(f.Status), " ", ""), http.StatusText(f.Status)
	}
	if f.Code != "" {
		code = f.Code
	}
	if f.Message != "" {
		msg = f.Message
	}
	return code, msg
}

func writeS3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message><RequestId>locals3-proxy</RequestId></Error>", code, msg)
}

// resetConn closes the client's connection with a TCP reset.
func resetConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if bc, ok := raw.(*bufferedConn); ok {
		raw = bc.Conn
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // close sends RST, not FIN
	}
	raw.Close() // skip TLS close_notify: the client sees the reset only
}

// statusWriter reports the first final status written through it.
type statusWriter struct {
	http.ResponseWriter
	onStatus func(int)
	done     bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.done && code >= 200 {
		w.done = true
		w.onStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func unwrapWriter(w http.ResponseWriter) http.ResponseWriter {
	if sw, ok := w.(*statusWriter); ok {
		return sw.ResponseWriter
	}
	return w
}

// operation names the S3 operation of r from its method, path and query.
func operation(r *http.Request) string {
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	object := len(parts) == 2 && parts[1] != ""
	bucket := parts[0] != ""
	switch {
	case !bucket:
		if r.Method == http.MethodGet {
			return "ListBuckets"
		}
	case object:
		switch r.Method {
		case http.MethodPut:
			if has("partNumber") && has("uploadId") {
				if r.Header.Get("X-Amz-Copy-Source") != "" {
					return "UploadPartCopy"
				}
				return "UploadPart"
			}
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				return "CopyObject"
			}
			return "PutObject"
		case http.MethodPost:
			if has("uploads") {
				return "CreateMultipartUpload"
			}
			if has("uploadId") {
				return "CompleteMultipartUpload"
			}
		case http.MethodDelete:
			if has("uploadId") {
				return "AbortMultipartUpload"
			}
			return "DeleteObject"
		case http.MethodGet:
			if has("uploadId") {
				return "ListParts"
			}
			return "GetObject"
		case http.MethodHead:
			return "HeadObject"
		}
	default:
		switch r.Method {
		case http.MethodPut:
			if has("policy") {
				return "PutBucketPolicy"
			}
			return "CreateBucket"
		case http.MethodGet:
			if has("policy") {
				return "GetBucketPolicy"
			}
			if has("location") {
				return "GetBucketLocation"
			}
			if has("uploads") {
				return "ListMultipartUploads"
			}
			return "ListObjects"
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodDelete:
			return "DeleteBucket"
		}
	}
	return "Other"
}

// sniffListener accepts TLS and plain-HTTP connections on one port, telling
// them apart by the first byte (a TLS handshake record starts with 0x16).
// TLS connections come out of Accept as *tls.Conn, so net/http sets
// Request.TLS for them. The first byte is awaited in a goroutine per
// connection, so a silent client never blocks Accept.
type sniffListener struct {
	net.Listener
	tls   *tls.Config
	conns chan net.Conn
	errc  chan error
	once  sync.Once
	stop  chan struct{}
}

func newSniffListener(ln net.Listener, conf *tls.Config) *sniffListener {
	l := &sniffListener{Listener: ln, tls: conf, conns: make(chan net.Conn), errc: make(chan error, 1), stop: make(chan struct{})}
	go l.loop()
	return l
}

func (l *sniffListener) loop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.errc <- err
			return
		}
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &bufferedConn{Conn: c, r: br}
	if first[0] == 0x16 {
		out = tls.Server(out, l.tls)
	}
	select {
	case l.conns <- out:
	case <-l.stop:
		out.Close()
	}
}

func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		l.errc <- err // every later Accept fails the same way
		return nil, err
	}
}

func (l *sniffListener) Close() error {
	l.once.Do(func() { close(l.stop) })
	return l.Listener.Close()
}

// bufferedConn is a connection whose first bytes were peeked.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

var _ net.Listener = (*sniffListener)(nil)
