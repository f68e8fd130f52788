package api

// Unit tests of the body limits: the global budget, the per-key slots,
// the gzip ratio, the UTF-8 check of a streamed body, and the streaming
// decoder's agreement with encoding/json.

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// testLimitsServer is a Server with only its limits, enough for openBody.
func testLimitsServer(maxBody, budget int64, perKey, ratio int) *Server {
	return &Server{cfg: Config{MaxBody: maxBody}, limits: newBodyLimits(budget, perKey, ratio)}
}

func bodyRequest(body []byte, gz bool) *http.Request {
	r := httptest.NewRequest("POST", "/x", bytes.NewReader(body))
	if gz {
		r.Header.Set("Content-Encoding", "gzip")
	}
	return r
}

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// randomHex returns n bytes of hex digits that gzip cannot shrink much.
func randomHex(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = "0123456789abcdef"[rng.IntN(16)]
	}
	return b
}

// readWith reads body through openBody with a lease of its own and returns
// the refusal, if any, and the lease (not released).
func readWith(t *testing.T, s *Server, r *http.Request, caller string) (*lease, *errBody) {
	t.Helper()
	le := &lease{l: s.limits, caller: caller}
	br, eb := s.openBody(httptest.NewRecorder(), r, le)
	if eb != nil {
		return le, eb
	}
	defer br.close()
	_, eb = br.readAll(r.ContentLength)
	return le, eb
}

func TestBodyBudgetIsSharedAndGivenBack(t *testing.T) {
	s := testLimitsServer(1<<20, 1<<20, 10, 100)
	big := bytes.Repeat([]byte("a"), 600<<10)
	first, eb := readWith(t, s, bodyRequest(big, false), "key:a")
	if eb != nil {
		t.Fatalf("first body: %v", eb)
	}
	// The first request still holds its 600 KiB: another 600 KiB does not
	// fit a 1 MiB budget, whoever sends it, gzip or not.
	for _, gz := range []bool{false, true} {
		body := big
		if gz {
			// Random-looking text, so that the ratio stays low.
			body = gzipOf(t, randomHex(600<<10))
		}
		le, eb := readWith(t, s, bodyRequest(body, gz), "key:b")
		if eb == nil || eb.status != http.StatusServiceUnavailable || eb.code != "SERVER_BUSY" || eb.retryAfter == "" {
			t.Fatalf("gzip %v: second body over the budget: %+v, want 503 SERVER_BUSY with Retry-After", gz, eb)
		}
		le.release()
	}
	if got := s.limits.inUse(); got < 600<<10 || got > 600<<10+budgetChunk {
		t.Errorf("budget in use while the first request runs: %d", got)
	}
	first.release()
	if got := s.limits.inUse(); got != 0 {
		t.Fatalf("budget in use after every request ended: %d, want 0", got)
	}
	le, eb := readWith(t, s, bodyRequest(big, false), "key:b")
	if eb != nil {
		t.Fatalf("after the first request ended: %v", eb)
	}
	le.release()
}

func TestBodyPerKeySlots(t *testing.T) {
	s := testLimitsServer(1<<20, 64<<20, 2, 100)
	big := bytes.Repeat([]byte("a"), 2*smallBody)
	var held []*lease
	for range 2 {
		le, eb := readWith(t, s, bodyRequest(big, false), "key:a")
		if eb != nil {
			t.Fatal(eb)
		}
		held = append(held, le)
	}
	le, eb := readWith(t, s, bodyRequest(big, false), "key:a")
	if eb == nil || eb.status != http.StatusTooManyRequests || eb.code != "TOO_MANY_REQUESTS" || eb.retryAfter == "" {
		t.Fatalf("third request of a key with 2 in progress: %+v, want 429 with Retry-After", eb)
	}
	if le.used != 0 {
		t.Errorf("the refused request read %d bytes of its body", le.used)
	}
	le.release()
	// Another key is not held back.
	other, eb := readWith(t, s, bodyRequest(big, false), "key:b")
	if eb != nil {
		t.Fatalf("another key: %v", eb)
	}
	other.release()
	// A small body gives its slot back once read, so a key's requests
	// that wait long on small bodies leave room for its uploads.
	held[0].release()
	small, eb := readWith(t, s, bodyRequest([]byte(`{}`), false), "key:a")
	if eb != nil {
		t.Fatal(eb)
	}
	defer small.release()
	again, eb := readWith(t, s, bodyRequest(big, false), "key:a")
	if eb != nil {
		t.Fatalf("after one of the key's requests ended: %v", eb)
	}
	again.release()
	held[1].release()
	// Unauthenticated requests count against their remote address.
	r := bodyRequest(big, false)
	r.RemoteAddr = "192.0.2.7:4242"
	if got := (&lease{}).callerOf(r); got != "addr:192.0.2.7" {
		t.Errorf("caller of an unauthenticated request: %q", got)
	}
}

func TestBodyGzipRatio(t *testing.T) {
	s := testLimitsServer(32<<20, 64<<20, 4, 100)
	bomb := gzipOf(t, append(append([]byte(`{"entities":[{"_key":"`), make([]byte, 8<<20)...), `"}]}`...))
	le, eb := readWith(t, s, bodyRequest(bomb, true), "key:a")
	if eb == nil || eb.status != http.StatusRequestEntityTooLarge || eb.code != "GZIP_RATIO_TOO_HIGH" {
		t.Fatalf("8 MiB from %d gzip bytes: %+v, want 413 GZIP_RATIO_TOO_HIGH", len(bomb), eb)
	}
	// It stopped soon after the floor: the budget never held the bomb.
	if le.used > gzipRatioFloor+budgetChunk {
		t.Errorf("read %d bytes of the bomb before refusing it", le.used)
	}
	le.release()
	// Under the floor any ratio goes; above it, a ratio under the cap.
	for _, body := range [][]byte{
		make([]byte, gzipRatioFloor-100),
		randomHex(4 << 20),
	} {
		le, eb := readWith(t, s, bodyRequest(gzipOf(t, body), true), "key:a")
		if eb != nil {
			t.Errorf("gzip of %d bytes: %v", len(body), eb)
		}
		le.release()
	}
}

func TestBodyUTF8AcrossReads(t *testing.T) {
	// Multi-byte runes cut by every read size must pass; a bad byte is
	// reported at its offset whatever the reads.
	good := []byte(strings.Repeat("aé€😀", 1000))
	bad := append(append(bytes.Clone(good[:1001]), 0xff), good[:50]...)
	for _, size := range []int{1, 2, 3, 5, 7, 4096} {
		b := &bodyReader{src: &chunkReader{b: good, size: size}, wire: &countReader{}, le: &lease{l: newBodyLimits(1<<30, 1, 100)}, limit: 1 << 20}
		if _, err := io.ReadAll(b); err != nil {
			t.Errorf("valid UTF-8 read %d bytes at a time: %v", size, err)
		}
		b = &bodyReader{src: &chunkReader{b: bad, size: size}, wire: &countReader{}, le: &lease{l: newBodyLimits(1<<30, 1, 100)}, limit: 1 << 20}
		_, err := io.ReadAll(b)
		if err == nil || !strings.Contains(err.Error(), "not UTF-8 at byte 1001") {
			t.Errorf("bad byte read %d bytes at a time: %v", size, err)
		}
		// A body ending in the middle of a rune is not UTF-8.
		b = &bodyReader{src: &chunkReader{b: good[:len(good)-1], size: size}, wire: &countReader{}, le: &lease{l: newBodyLimits(1<<30, 1, 100)}, limit: 1 << 20}
		if _, err := io.ReadAll(b); err == nil || !strings.Contains(err.Error(), "not UTF-8") {
			t.Errorf("truncated rune read %d bytes at a time: %v", size, err)
		}
	}
}

type chunkReader struct {
	b    []byte
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// TestStreamDecodeAgreesWithUnmarshal pins that decoding as the body
// streams gives what encoding/json gives the whole body: the same value,
// and an error for the same bodies.
func TestStreamDecodeAgreesWithUnmarshal(t *testing.T) {
	type events struct {
		Events []struct {
			Name string `json:"name"`
		} `json:"events"`
		Note string `json:"note,omitempty"`
	}
	bodies := []string{
		`{"entities":[{"_key":"a"},{"_key":"b"}],"relationships":[]}`,
		`{"entities":[]}`, `{}`, `null`, `{"entities":null}`, `{"Entities":[1,"x",null]}`,
		`{"ENTITIES":[{}],"entities":[{"a":1}]}`, `{"entities":[1],"entities":[2,3]}`,
		`{"other":{"deep":[1,2,{"x":[]}]},"entities":[{"k":"v"}]}`,
		`{"entities":{}}`, `{"entities":"x"}`, `{"entities":5}`, `[]`, `"s"`, `5`, `true`,
		`{"entities":[1,]}`, `{"entities":[1}`, `{"entities":[1]} x`, `{"entities":[1]}{}`, `{"entities":[1]`, `{`,
		`{"events":[{"name":"a"},{"name":5}]}`, `{"events":[{"name":"a"}],"note":7}`, `{"events":[{"name":"a"}],"note":"n"}`,
		"  {\"entities\" : [ {\"x\" : \"\\u00e9\"} ] }  \n",
	}
	for _, body := range bodies {
		for _, target := range []func() any{func() any { return &uploadBody{} }, func() any { return &events{} }} {
			want, got := target(), target()
			werr := json.Unmarshal([]byte(body), want)
			st := streamTargetOf(got)
			if st == nil {
				t.Fatalf("%T is not a stream target", got)
			}
			_, gerr := st.decode(json.NewDecoder(strings.NewReader(body)))
			if (werr == nil) != (gerr == nil) {
				t.Errorf("%T %s: Unmarshal error %v, streamed %v", got, body, werr, gerr)
				continue
			}
			if werr == nil && !reflect.DeepEqual(want, got) {
				t.Errorf("%T %s: Unmarshal gave %+v, streamed %+v", got, body, want, got)
			}
			var wte, gte *json.UnmarshalTypeError
			if errors.As(werr, &wte) && errors.As(gerr, &gte) && describeJSONError(werr) != describeJSONError(gerr) {
				t.Errorf("%T %s: message %q, streamed %q", got, body, describeJSONError(werr), describeJSONError(gerr))
			}
		}
	}
	for _, v := range []any{&json.RawMessage{}, &struct{ A string }{}, &struct{ B json.RawMessage }{}} {
		if streamTargetOf(v) != nil {
			t.Errorf("%T has no slice to stream, yet is a stream target", v)
		}
	}
}

// FuzzStreamDecode: whatever the body, decoding it as it streams agrees
// with encoding/json on whether it is valid and on the value.
func FuzzStreamDecode(f *testing.F) {
	for _, s := range []string{`{"entities":[{"_key":"a"}],"relationships":[]}`, `{"Entities":null,"x":[1]}`, `[]`, `{"entities":[1]} 2`, ` `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		want, got := &uploadBody{}, &uploadBody{}
		werr := json.Unmarshal(body, want)
		empty, gerr := streamTargetOf(got).decode(json.NewDecoder(bytes.NewReader(body)))
		if empty {
			if len(bytes.TrimSpace(body)) != 0 || gerr != nil {
				t.Fatalf("%q: streamed as empty (%v)", body, gerr)
			}
			return
		}
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: Unmarshal error %v, streamed %v", body, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("%q: Unmarshal gave %+v, streamed %+v", body, want, got)
		}
	})
}
