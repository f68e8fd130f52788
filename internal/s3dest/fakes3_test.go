package s3dest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// fakeS3 is an HTTPS server that answers the five S3 operations the writer
// uses and records every request. It exists only for fault shapes a real
// server cannot produce on demand (503s, resets, redirects, KMS errors);
// behaviour against a real S3 server is tested with versitygw.
type fakeS3 struct {
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []fakeRequest
	objects map[string][]byte
	parts   map[string]map[int][]byte // upload id → part number → payload
	uploads int
	// fault, when set, may answer a request instead of the fake; it
	// returns false to let the fake answer.
	fault func(w http.ResponseWriter, r fakeRequest) bool
}

// fakeRequest is one recorded request with its decoded payload.
type fakeRequest struct {
	Op     string // PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload
	Method string
	Path   string
	Header http.Header
	Part   int
	Body   []byte
	N      int // 1-based index of this request among those of its Op
}

func newFakeS3(t *testing.T) *fakeS3 {
	f := &fakeS3{objects: map[string][]byte{}, parts: map[string]map[int][]byte{}}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) setFault(fn func(w http.ResponseWriter, r fakeRequest) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = fn
}

func (f *fakeS3) requests() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.reqs...)
}

func (f *fakeS3) ops() []string {
	var ops []string
	for _, r := range f.requests() {
		ops = append(ops, r.Op)
	}
	return ops
}

func (f *fakeS3) object(path string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.objects[path]
	return b, ok
}

func (f *fakeS3) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var op string
	switch {
	case r.Method == http.MethodPut && q.Has("partNumber"):
		op = "UploadPart"
	case r.Method == http.MethodPut:
		op = "PutObject"
	case r.Method == http.MethodPost && q.Has("uploads"):
		op = "CreateMultipartUpload"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		op = "CompleteMultipartUpload"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		op = "AbortMultipartUpload"
	default:
		http.Error(w, "unexpected request", http.StatusNotImplemented)
		return
	}
	body, err := readPayload(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	part, _ := strconv.Atoi(q.Get("partNumber"))
	req := fakeRequest{Op: op, Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Part: part, Body: body}

	f.mu.Lock()
	for _, prev := range f.reqs {
		if prev.Op == op {
			req.N++
		}
	}
	req.N++
	f.reqs = append(f.reqs, req)
	fault := f.fault
	f.mu.Unlock()
	if fault != nil && fault(w, req) {
		return
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	switch op {
	case "PutObject":
		f.objects[r.URL.Path] = body
		w.Header().Set("ETag", `"etag"`)
	case "CreateMultipartUpload":
		f.uploads++
		id := fmt.Sprintf("upload-%d", f.uploads)
		f.parts[id] = map[int][]byte{}
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>`, id)
	case "UploadPart":
		parts, ok := f.parts[q.Get("uploadId")]
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchUpload", "no such upload")
			return
		}
		parts[part] = body
		w.Header().Set("ETag", fmt.Sprintf(`"part-%d"`, part))
	case "CompleteMultipartUpload":
		parts, ok := f.parts[q.Get("uploadId")]
		if !ok {
			s3Error(w, http.StatusNotFound, "NoSuchUpload", "no such upload")
			return
		}
		nums := make([]int, 0, len(parts))
		for n := range parts {
			nums = append(nums, n)
		}
		sort.Ints(nums)
		var all []byte
		for _, n := range nums {
			all = append(all, parts[n]...)
		}
		f.objects[r.URL.Path] = all
		delete(f.parts, q.Get("uploadId"))
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"all-%d"</ETag></CompleteMultipartUploadResult>`, len(nums))
	case "AbortMultipartUpload":
		delete(f.parts, q.Get("uploadId"))
		w.WriteHeader(http.StatusNoContent)
	}
}

// s3Error writes an S3 error answer.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>REQ</RequestId></Error>`, code, msg)
}

// readPayload returns the request's payload, decoding the aws-chunked
// encoding the SDK uses for trailing checksums over TLS.
func readPayload(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(strings.Join(r.Header.Values("Content-Encoding"), ","), "aws-chunked") &&
		!strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
		return raw, nil
	}
	var out []byte
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("aws-chunked: %w", err)
		}
		size, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ";", 2)[0]), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("aws-chunked size %q: %w", line, err)
		}
		if size == 0 {
			return out, nil // trailers follow
		}
		chunk := make([]byte, size+2)
		if _, err := io.ReadFull(br, chunk); err != nil {
			return nil, fmt.Errorf("aws-chunked chunk: %w", err)
		}
		out = append(out, chunk[:size]...)
	}
}

const (
	testAccessKey = "AKIDJ1DSTEST"
	testSecretKey = "j1ds-test-secret-key-do-not-leak"
	testOwner     = "111122223333"
	testBucket    = "acme-data"
)

var testTarget = s3bucket.Target{Bucket: testBucket, Owner: testOwner}

// newFakeClient returns a client of f with 1 KiB parts and fast retries;
// mod may change the configuration.
func newFakeClient(t *testing.T, f *fakeS3, mod func(*Config)) *Client {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(f.srv.Certificate())
	cfg := Config{
		Endpoint:        f.srv.URL,
		RootCAs:         roots,
		Credentials:     credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""),
		PartSize:        1 << 10,
		AllowSmallParts: true,
		maxBackoff:      10 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}
