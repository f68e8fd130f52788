package api

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// errBody is a client error found while reading a request body.
type errBody struct {
	status int
	code   string
	msg    string
	// retryAfter is the Retry-After header (seconds) of the answer; ""
	// for none.
	retryAfter string
}

func (e *errBody) Error() string { return e.msg }

// refuse answers eb.
func refuse(w http.ResponseWriter, eb *errBody) {
	if eb.retryAfter != "" {
		w.Header().Set("Retry-After", eb.retryAfter)
	}
	writeError(w, eb.status, eb.code, eb.msg)
}

// bodyReader reads a request body as it is decoded: at most limit bytes on
// the wire and after gzip decoding, each decoded byte taken from the
// request's lease of the global budget before it is handed on, a gzip
// body within the ratio of decoded to encoded bytes, and every byte
// checked to be UTF-8. Its first refusal is kept in err and returned by
// every later Read.
type bodyReader struct {
	src   io.Reader    // the decoded body
	wire  *countReader // the body as sent, counted
	zr    *gzip.Reader // nil when the body is not gzip
	le    *lease       // budget and slot of the request
	limit int64        // most decoded bytes
	ratio int64        // most decoded bytes per wire byte (gzip only)
	n     int64        // decoded bytes read so far
	pend  [utf8.UTFMax]byte
	npend int // bytes of pend: an incomplete rune at the end of the last read
	err   *errBody
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// openBody takes a slot of r's caller in le and returns the reader of r's
// body, whose bytes le holds until it is released.
func (s *Server) openBody(w http.ResponseWriter, r *http.Request, le *lease) (*bodyReader, *errBody) {
	limit := s.cfg.MaxBody
	if eb := le.begin(r); eb != nil {
		return nil, eb
	}
	// MaxBytesReader closes the connection after a 413 only when it sees
	// the server's own writer.
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	b := &bodyReader{le: le, limit: limit, ratio: s.limits.ratio}
	b.wire = &countReader{r: http.MaxBytesReader(w, r.Body, limit)}
	b.src = b.wire
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(b.wire)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, b.tooBig()
			}
			return nil, &errBody{http.StatusBadRequest, "INVALID_BODY", "Content-Encoding is gzip but the body is not gzip data: " + err.Error(), ""}
		}
		b.zr, b.src = zr, zr
	default:
		return nil, &errBody{http.StatusUnsupportedMediaType, "UNSUPPORTED_ENCODING", fmt.Sprintf("Content-Encoding %q is not supported; send identity or gzip", truncate(enc, 40)), ""}
	}
	return b, nil
}

func (b *bodyReader) tooBig() *errBody {
	return &errBody{http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("request body exceeds %d bytes; send smaller batches", b.limit), ""}
}

// close ends the read: a small body gives its caller's slot back.
func (b *bodyReader) close() {
	if b.zr != nil {
		b.zr.Close()
	}
	b.le.bodyRead()
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// One more byte than the limit tells a body that is too big.
	p = p[:min(int64(len(p)), budgetChunk, b.limit+1-b.n)]
	n, err := b.src.Read(p)
	if n > 0 {
		if eb := b.account(p[:n]); eb != nil {
			b.err = eb
			return 0, eb
		}
	}
	switch {
	case err == io.EOF:
		if b.npend > 0 {
			b.err = notUTF8(b.n - int64(b.npend))
			return 0, b.err
		}
		return n, io.EOF
	case err != nil:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			b.err = b.tooBig()
		} else {
			b.err = &errBody{http.StatusBadRequest, "INVALID_BODY", "could not read the request body: " + err.Error(), ""}
		}
		return 0, b.err
	}
	return n, nil
}

// account checks and counts p, the next decoded bytes.
func (b *bodyReader) account(p []byte) *errBody {
	at := b.n
	b.n += int64(len(p))
	switch {
	case b.n > b.limit:
		return b.tooBig()
	case b.zr != nil && b.n > gzipRatioFloor && b.n > b.ratio*b.wire.n:
		return &errBody{http.StatusRequestEntityTooLarge, "GZIP_RATIO_TOO_HIGH", fmt.Sprintf(
			"the gzip body expands more than %d times (%d bytes sent gave more than %d); j1ds refuses such bodies beyond %d bytes: send it uncompressed or in smaller batches",
			b.ratio, b.wire.n, b.n-1, gzipRatioFloor), ""}
	case !b.le.take(int64(len(p))):
		return errBusy(b.le.l.budget)
	}
	return b.checkUTF8(p, at)
}

// checkUTF8 checks that p, the decoded bytes at offset at, continue valid
// UTF-8; an incomplete rune at its end waits in pend for the next read.
func (b *bodyReader) checkUTF8(p []byte, at int64) *errBody {
	if b.npend > 0 {
		start := at - int64(b.npend)
		k := copy(b.pend[b.npend:], p)
		buf := b.pend[:b.npend+k]
		r, size := utf8.DecodeRune(buf)
		if r == utf8.RuneError && size <= 1 {
			if utf8.FullRune(buf) {
				return notUTF8(start)
			}
			b.npend += k // still incomplete: p was all of it
			return nil
		}
		used := size - b.npend
		b.npend = 0
		p, at = p[used:], at+int64(used)
	}
	if utf8.Valid(p) {
		return nil
	}
	for i := 0; i < len(p); {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(p[i:]) {
				b.npend = copy(b.pend[:], p[i:])
				return nil
			}
			return notUTF8(at + int64(i))
		}
		i += size
	}
	return nil
}

func notUTF8(at int64) *errBody {
	// encoding/json would replace the bad bytes with U+FFFD, so two
	// different keys could become one object.
	return &errBody{http.StatusBadRequest, "INVALID_JSON", fmt.Sprintf("the body is not valid JSON: it is not UTF-8 at byte %d; send UTF-8 text", at), ""}
}

// readAll reads the whole body.
func (b *bodyReader) readAll(contentLength int64) ([]byte, *errBody) {
	var buf bytes.Buffer
	// A length that is sent but not yet read buys no memory: the buffer
	// grows with the bytes that arrive, each taken from the budget.
	if contentLength > 0 && b.zr == nil {
		buf.Grow(int(min(contentLength, smallBody)) + 1)
	}
	if _, err := buf.ReadFrom(b); err != nil {
		if b.err != nil {
			return nil, b.err
		}
		return nil, &errBody{http.StatusBadRequest, "INVALID_BODY", "could not read the request body: " + err.Error(), ""}
	}
	return buf.Bytes(), nil
}
