package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// minBodyRate cuts, with 408 BODY_TOO_SLOW, a request whose body arrives
// slower than rate bytes per second once grace has passed: by grace +
// n/rate after the handler starts, at least n bytes must have come. It
// moves the connection's read deadline (http.ResponseController) before
// each read of the body until its end, never past readTimeout after the
// handler started. rate <= 0 turns it off.
func minBodyRate(next http.Handler, rate int64, grace, readTimeout time.Duration, m *connMetrics) http.Handler {
	if rate <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rw := &cutWriter{ResponseWriter: w}
		b := &rateBody{
			rc: r.Body, w: rw, ctl: http.NewResponseController(w), metrics: m,
			rate: rate, grace: grace, start: start, end: start.Add(readTimeout),
		}
		// Also when the handler reads none of the body: the server then
		// reads what is left of it (up to 256 KiB) as it answers.
		_ = b.ctl.SetReadDeadline(b.deadline())
		// A copy: the server looks at its own request's body to decide how
		// to finish a body the handler left unread.
		r2 := *r
		r2.Body = b
		next.ServeHTTP(rw, &r2)
	})
}

// rateBody is a request body that must keep up a minimum rate.
type rateBody struct {
	rc      io.ReadCloser
	w       *cutWriter
	ctl     *http.ResponseController
	metrics *connMetrics
	rate    int64
	grace   time.Duration
	start   time.Time
	end     time.Time // the request's whole read, at most
	n       int64
	err     error
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	_ = b.ctl.SetReadDeadline(b.deadline())
	n, err := b.rc.Read(p)
	b.n += int64(n)
	switch {
	case err == io.EOF:
		// No deadline is set after this: at the body's end the server
		// clears it for its background read, which a deadline left
		// behind would end, and the request with it.
		b.err = io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.err = fmt.Errorf("request body: it arrived slower than %d bytes/s after the first %s", b.rate, b.grace)
		b.metrics.tooSlow.Inc()
		b.w.cut(http.StatusRequestTimeout, "BODY_TOO_SLOW", fmt.Sprintf(
			"the request body arrived slower than %d bytes/s after the first %s (%d bytes in %s); send it faster or in smaller requests (--min-body-rate)",
			b.rate, b.grace, b.n, time.Since(b.start).Round(time.Millisecond)))
		return n, b.err
	}
	return n, err
}

// deadline is when the body, having sent b.n bytes, falls below the rate.
func (b *rateBody) deadline() time.Time {
	d := b.start.Add(b.grace + time.Duration(float64(b.n)/float64(b.rate)*float64(time.Second)))
	if d.After(b.end) {
		return b.end
	}
	return d
}

func (b *rateBody) Close() error { return b.rc.Close() }

// cutWriter is a ResponseWriter whose request can be cut: the cut's
// answer is written, and the handler's answer, coming after, is dropped.
type cutWriter struct {
	http.ResponseWriter
	wrote, done bool
}

// errCut is what the handler's writes return once its request was cut.
var errCut = errors.New("the request was cut: its answer was sent")

func (w *cutWriter) cut(status int, code, msg string) {
	if w.wrote {
		return
	}
	w.Header().Set("Connection", "close")
	writeHTTPError(w.ResponseWriter, status, code, msg)
	w.wrote, w.done = true, true
}

func (w *cutWriter) WriteHeader(status int) {
	if w.done {
		return
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(status)
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errCut
	}
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Flush sends what the handler wrote so far, unless its request was cut.
func (w *cutWriter) Flush() {
	if !w.done {
		_ = http.NewResponseController(w.ResponseWriter).Flush()
	}
}

// Unwrap gives http.ResponseController and http.MaxBytesReader the
// connection's own writer.
func (w *cutWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeHTTPError writes the API's JSON error for what the server answers
// before the API: {"error":{"code":...,"message":...}}.
func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// noSniff sets X-Content-Type-Options: nosniff on every answer: no
// browser takes an API answer for a script or a page.
func noSniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
