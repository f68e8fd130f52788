package s3dest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/stream"
)

const testKey = "jupiterone/graph/cdc/accountId=j1dev/year=2026/month=01/day=02/time=030405.000006Z.jsonl"

func payload(n int) []byte {
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

// writeChunks writes data in uneven pieces, as a gzip writer does.
func writeChunks(t *testing.T, w *ObjectWriter, data []byte) {
	t.Helper()
	for i, n := 0, 1; len(data) > 0; i, n = i+1, n*3%1000+1 {
		n = min(n, len(data))
		if k, err := w.Write(data[:n]); err != nil || k != n {
			t.Fatalf("Write = %d, %v", k, err)
		}
		data = data[n:]
	}
}

// checkEveryRequest asserts what must hold on every request: the expected
// bucket owner, and SSE-KMS headers exactly on PutObject and
// CreateMultipartUpload when a key is configured, else none at all.
func checkEveryRequest(t *testing.T, reqs []fakeRequest, kmsKey string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("no request recorded")
	}
	for _, r := range reqs {
		if got := r.Header.Get("X-Amz-Expected-Bucket-Owner"); got != testOwner {
			t.Errorf("%s #%d: x-amz-expected-bucket-owner = %q, want %s", r.Op, r.N, got, testOwner)
		}
		// Every body carries its CRC32 for S3 to check, in a header.
		if r.Op == "PutObject" || r.Op == "UploadPart" {
			want := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(r.Body)))
			if got := r.Header.Get("X-Amz-Checksum-Crc32"); got != want {
				t.Errorf("%s #%d: x-amz-checksum-crc32 = %q, want %q (the body's)", r.Op, r.N, got, want)
			}
		}
		sse := r.Header.Get("X-Amz-Server-Side-Encryption")
		key := r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
		wantSSE := kmsKey != "" && (r.Op == "PutObject" || r.Op == "CreateMultipartUpload")
		switch {
		case wantSSE && (sse != "aws:kms" || key != kmsKey):
			t.Errorf("%s #%d: SSE headers %q %q, want aws:kms %s", r.Op, r.N, sse, key, kmsKey)
		case !wantSSE:
			for name := range r.Header {
				if strings.HasPrefix(strings.ToLower(name), "x-amz-server-side-encryption") {
					t.Errorf("%s #%d: unexpected SSE header %s", r.Op, r.N, name)
				}
			}
		}
	}
}

func checkObjectHeaders(t *testing.T, r fakeRequest) {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != ContentType {
		t.Errorf("%s: Content-Type = %q, want %s", r.Op, got, ContentType)
	}
	// Over TLS the SDK appends aws-chunked to the encodings of the body.
	if enc := r.Header.Values("Content-Encoding"); len(enc) == 0 || enc[0] != "gzip" {
		t.Errorf("%s: Content-Encoding = %q, want gzip first", r.Op, enc)
	}
}

func TestSmallObjectIsOnePutObject(t *testing.T) {
	for _, size := range []int{0, 100, 1 << 10} { // 1 KiB is exactly one part
		f := newFakeS3(t)
		c := newFakeClient(t, f, nil)
		w := c.Object(context.Background(), testTarget, testKey)
		data := payload(size)
		writeChunks(t, w, data)
		if err := w.Close(); err != nil {
			t.Fatalf("size %d: Close: %v", size, err)
		}
		if got := f.ops(); !slices.Equal(got, []string{"PutObject"}) {
			t.Fatalf("size %d: requests %v, want one PutObject", size, got)
		}
		reqs := f.requests()
		checkEveryRequest(t, reqs, "")
		checkObjectHeaders(t, reqs[0])
		if reqs[0].Path != "/"+testBucket+"/"+testKey {
			t.Errorf("path %q: want path-style /bucket/key", reqs[0].Path)
		}
		if got, _ := f.object(reqs[0].Path); !bytes.Equal(got, data) {
			t.Errorf("size %d: stored %d bytes differ from the %d written", size, len(got), len(data))
		}
		if w.Requests() != 1 {
			t.Errorf("Requests = %d, want 1", w.Requests())
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		w.Abort() // no-op after a successful Close
		if len(f.requests()) != 1 {
			t.Errorf("Abort after Close made a request")
		}
	}
}

func TestLargeObjectIsMultipart(t *testing.T) {
	f := newFakeS3(t)
	reg := prometheus.NewRegistry()
	c := newFakeClient(t, f, func(c *Config) { c.Registerer = reg })
	w := c.Object(context.Background(), testTarget, testKey)
	data := payload(3<<10 + 10)
	writeChunks(t, w, data)
	// Three full parts are buffered or sent; the fourth (10 bytes) waits
	// for Close, and nothing is completed yet.
	if got := f.ops(); !slices.Equal(got, []string{"CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart"}) {
		t.Fatalf("before Close: %v", got)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{"CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "UploadPart", "CompleteMultipartUpload"}
	if got := f.ops(); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	reqs := f.requests()
	checkEveryRequest(t, reqs, "")
	checkObjectHeaders(t, reqs[0])
	for i, r := range reqs[1:5] {
		wantSize := 1 << 10
		if i == 3 {
			wantSize = 10
		}
		if r.Part != i+1 || len(r.Body) != wantSize {
			t.Errorf("part %d: number %d, %d bytes, want %d bytes", i+1, r.Part, len(r.Body), wantSize)
		}
	}
	if got, _ := f.object("/" + testBucket + "/" + testKey); !bytes.Equal(got, data) {
		t.Errorf("stored %d bytes differ from the %d written", len(got), len(data))
	}
	if w.Requests() != 6 {
		t.Errorf("Requests = %d, want 6", w.Requests())
	}
	if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues("UploadPart", "ok")); got != 4 {
		t.Errorf("j1ds_s3_requests_total{UploadPart,ok} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(c.metrics.bytes); got != float64(len(data)) {
		t.Errorf("j1ds_s3_bytes_uploaded_total = %v, want %d", got, len(data))
	}
	if n, err := testutil.GatherAndCount(reg, "j1ds_s3_requests_total", "j1ds_s3_request_duration_seconds", "j1ds_s3_bytes_uploaded_total"); err != nil || n == 0 {
		t.Errorf("metrics not registered: %d, %v", n, err)
	}
}

func TestKMSHeadersOnlyOnPutAndCreate(t *testing.T) {
	for _, key := range []string{
		"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"my-key", // the name of an S3-compatible server's key (MinIO KES)
	} {
		t.Run(key, func(t *testing.T) { testKMSHeadersOnlyOnPutAndCreate(t, key) })
	}
}

func testKMSHeadersOnlyOnPutAndCreate(t *testing.T, key string) {
	f := newFakeS3(t)
	c := newFakeClient(t, f, func(c *Config) { c.KMSKeyID = key })

	small := c.Object(context.Background(), testTarget, testKey+".small")
	writeChunks(t, small, payload(10))
	if err := small.Close(); err != nil {
		t.Fatal(err)
	}
	large := c.Object(context.Background(), testTarget, testKey)
	writeChunks(t, large, payload(2<<10+1))
	if err := large.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.TestConnection(context.Background(), testTarget, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{"PutObject", "CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "CompleteMultipartUpload", "PutObject"}
	if got := f.ops(); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	checkEveryRequest(t, f.requests(), key)
}

func TestAbortOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failOp   string
		failN    int
		failAt   string // "write" or "close"
		wantReqs []string
	}{
		{"second part denied", "UploadPart", 2, "write",
			[]string{"CreateMultipartUpload", "UploadPart", "UploadPart", "AbortMultipartUpload"}},
		{"last part denied", "UploadPart", 3, "close",
			[]string{"CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "AbortMultipartUpload"}},
		{"complete denied", "CompleteMultipartUpload", 1, "close",
			[]string{"CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3(t)
			f.setFault(func(w http.ResponseWriter, r fakeRequest) bool {
				if r.Op == tc.failOp && r.N == tc.failN {
					s3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied")
					return true
				}
				return false
			})
			c := newFakeClient(t, f, nil)
			w := c.Object(context.Background(), testTarget, testKey)
			data := payload(2<<10 + 5)
			var werr error
			for len(data) > 0 && werr == nil {
				n := min(100, len(data))
				_, werr = w.Write(data[:n])
				data = data[n:]
			}
			cerr := w.Close()
			var e *Error
			switch tc.failAt {
			case "write":
				if !errors.As(werr, &e) || e.Code != CodeAccessDenied {
					t.Fatalf("Write error = %v, want ACCESS_DENIED", werr)
				}
				if cerr != werr {
					t.Errorf("Close = %v, want the write error", cerr)
				}
			case "close":
				if werr != nil {
					t.Fatalf("Write: %v", werr)
				}
				if !errors.As(cerr, &e) || e.Code != CodeAccessDenied || !e.Permanent {
					t.Fatalf("Close = %v, want a permanent ACCESS_DENIED", cerr)
				}
			}
			if got := f.ops(); !slices.Equal(got, tc.wantReqs) {
				t.Fatalf("requests %v, want %v", got, tc.wantReqs)
			}
			checkEveryRequest(t, f.requests(), "")
			if w.Requests() != len(tc.wantReqs) {
				t.Errorf("Requests = %d, want %d", w.Requests(), len(tc.wantReqs))
			}
			if strings.Contains(cerr.Error(), testSecretKey) {
				t.Errorf("error leaks the secret key: %v", cerr)
			}
		})
	}
}

func TestAbortGivesUpTheUpload(t *testing.T) {
	f := newFakeS3(t)
	c := newFakeClient(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	w := c.Object(ctx, testTarget, testKey)
	writeChunks(t, w, payload(1<<10+1))
	cancel() // Abort still reaches S3 after the writer's context ends
	w.Abort()
	w.Abort()
	want := []string{"CreateMultipartUpload", "UploadPart", "AbortMultipartUpload"}
	if got := f.ops(); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	checkEveryRequest(t, f.requests(), "")
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after Abort succeeded")
	}
	if _, ok := f.object("/" + testBucket + "/" + testKey); ok {
		t.Error("an aborted object was stored")
	}
	// A small object never started an upload: Abort sends nothing.
	f2 := newFakeS3(t)
	w2 := newFakeClient(t, f2, nil).Object(context.Background(), testTarget, testKey)
	writeChunks(t, w2, payload(10))
	w2.Abort()
	if n := len(f2.requests()); n != 0 {
		t.Errorf("Abort of a buffered object made %d requests", n)
	}
}

func TestTransientErrorsRetryAtMostThreeTimes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		code   string
		want   string
	}{
		{"slow down", http.StatusServiceUnavailable, "SlowDown", CodeThrottled},
		{"internal error", http.StatusInternalServerError, "InternalError", CodeServerError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3(t)
			f.setFault(func(w http.ResponseWriter, r fakeRequest) bool {
				s3Error(w, tc.status, tc.code, "try later")
				return true
			})
			reg := prometheus.NewRegistry()
			c := newFakeClient(t, f, func(c *Config) { c.Registerer = reg })
			w := c.Object(context.Background(), testTarget, testKey)
			writeChunks(t, w, payload(10))
			err := w.Close()
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.want || e.Permanent {
				t.Fatalf("Close = %v, want transient %s", err, tc.want)
			}
			if got := f.ops(); !slices.Equal(got, []string{"PutObject", "PutObject", "PutObject"}) {
				t.Fatalf("requests %v, want 3 attempts", got)
			}
			if w.Requests() != 3 {
				t.Errorf("Requests = %d, want 3", w.Requests())
			}
			if got := testutil.ToFloat64(c.metrics.requests.WithLabelValues("PutObject", strings.ToLower(tc.want))); got != 3 {
				t.Errorf("j1ds_s3_requests_total{PutObject,%s} = %v, want 3", strings.ToLower(tc.want), got)
			}
		})
	}
}

func TestRecoversFromOneReset(t *testing.T) {
	f := newFakeS3(t)
	f.setFault(func(w http.ResponseWriter, r fakeRequest) bool {
		if r.Op == "UploadPart" && r.N == 2 {
			resetConnection(w)
			return true
		}
		return false
	})
	c := newFakeClient(t, f, nil)
	w := c.Object(context.Background(), testTarget, testKey)
	data := payload(2<<10 + 3)
	writeChunks(t, w, data)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	want := []string{"CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "UploadPart", "CompleteMultipartUpload"}
	if got := f.ops(); !slices.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	if got, _ := f.object("/" + testBucket + "/" + testKey); !bytes.Equal(got, data) {
		t.Error("stored object differs after a retried part")
	}
}

func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
		if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // RST instead of FIN
		}
	}
	_ = conn.Close()
}

func TestFaultShapes(t *testing.T) {
	regionHeader := func(w http.ResponseWriter) { w.Header().Set("X-Amz-Bucket-Region", "eu-west-1") }
	for _, tc := range []struct {
		name   string
		answer func(w http.ResponseWriter)
		code   string
		says   []string
	}{
		{"access denied", func(w http.ResponseWriter) { s3Error(w, 403, "AccessDenied", "Access Denied") },
			CodeAccessDenied, []string{"bucket policy", "111122223333"}},
		{"no such bucket", func(w http.ResponseWriter) { s3Error(w, 404, "NoSuchBucket", "The specified bucket does not exist") },
			CodeNoSuchBucket, []string{testBucket}},
		{"permanent redirect", func(w http.ResponseWriter) {
			regionHeader(w)
			s3Error(w, 301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint.")
		}, CodeWrongRegion, []string{"eu-west-1", "us-east-1"}},
		{"kms denied", func(w http.ResponseWriter) { s3Error(w, 400, "KMS.DisabledException", "arn:aws:kms:... is disabled.") },
			CodeKMSAccessDenied, []string{"kms:GenerateDataKey"}},
		// AWS's answer to a key id that does not exist (as the AWS CLI
		// reports it: "An error occurred (KMS.NotFoundException) when
		// calling the PutObject operation: Invalid keyId").
		{"kms key not found", func(w http.ResponseWriter) { s3Error(w, 400, "KMS.NotFoundException", "Invalid keyId alias/gone") },
			CodeKMSKeyNotFound, []string{"KMS key of the bucket's default encryption does not exist"}},
		{"404 not naming the bucket", func(w http.ResponseWriter) { s3Error(w, 404, "NoSuchKey", "The specified key does not exist.") },
			CodeNotFound, []string{"without saying what is missing", testBucket}},
		{"reset", resetConnection, CodeNetwork, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeS3(t)
			f.setFault(func(w http.ResponseWriter, r fakeRequest) bool { tc.answer(w); return true })
			c := newFakeClient(t, f, nil)
			err := c.TestConnection(context.Background(), testTarget, []byte(`{"account":"j1dev"}`))
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("TestConnection = %v, want %s", err, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not say %q", e.Message, s)
				}
			}
			if strings.Contains(err.Error(), testSecretKey) {
				t.Errorf("error leaks the secret key: %v", err)
			}
			checkEveryRequest(t, f.requests(), "")
		})
	}
}

// TestMissingCredentials: with no AWS credentials anywhere in the
// standard chain (no environment, no files, no instance role), the SDK's
// own failure is classified as the operator's: SERVICE_CREDENTIALS, the
// customer told to change nothing, the operator told what to set. Nothing
// reaches the bucket.
func TestMissingCredentials(t *testing.T) {
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := newFakeS3(t)
	c := newFakeClient(t, f, func(c *Config) { c.Credentials = nil })
	err := c.TestConnection(context.Background(), testTarget, []byte(`{"account":"j1dev"}`))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeCredentials || e.ActionBy != stream.ActionOperator || !e.Permanent {
		t.Fatalf("TestConnection without credentials = %v, want %s by the operator", err, CodeCredentials)
	}
	if !strings.Contains(e.Message, "nothing to change in your settings") || !strings.Contains(e.Detail, "AWS_ACCESS_KEY_ID") {
		t.Errorf("message %q, detail %q", e.Message, e.Detail)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("%d requests reached S3 without credentials", n)
	}
}

func TestConnectionTestWritesTheTestObject(t *testing.T) {
	f := newFakeS3(t)
	c := newFakeClient(t, f, nil)
	body := []byte(`{"account":"j1dev","time":"2026-01-02T03:04:05Z"}`)
	if err := c.TestConnection(context.Background(), testTarget, body); err != nil {
		t.Fatalf("TestConnection: %v", err)
	}
	reqs := f.requests()
	if len(reqs) != 1 || reqs[0].Op != "PutObject" || reqs[0].Path != "/"+testBucket+"/"+s3bucket.ConnectionTestKey {
		t.Fatalf("requests %+v, want one PutObject of %s", reqs, s3bucket.ConnectionTestKey)
	}
	checkEveryRequest(t, reqs, "")
	if got, _ := f.object(reqs[0].Path); !bytes.Equal(got, body) {
		t.Errorf("stored %q, want %q", got, body)
	}
	if err := c.TestConnection(context.Background(), s3bucket.Target{Bucket: "Bad_Bucket", Owner: testOwner}, body); err == nil ||
		err.(*Error).Code != CodeInvalidBucket {
		t.Errorf("invalid bucket: %v, want INVALID_BUCKET", err)
	}
	if err := c.TestConnection(context.Background(), s3bucket.Target{Bucket: testBucket, Owner: "123"}, body); err == nil ||
		err.(*Error).Code != CodeInvalidBucket || !strings.Contains(err.Error(), "awsAccountId") {
		t.Errorf("invalid owner: %v, want INVALID_BUCKET naming awsAccountId", err)
	}
	if len(f.requests()) != 1 {
		t.Error("an invalid target reached S3")
	}
}

func TestUntrustedCertificateIsTLS(t *testing.T) {
	f := newFakeS3(t)
	c := newFakeClient(t, f, func(c *Config) { c.RootCAs = nil })
	err := c.TestConnection(context.Background(), testTarget, []byte(`{}`))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTLS || !e.Permanent {
		t.Fatalf("TestConnection = %v, want a permanent TLS error", err)
	}
}

func TestTimeout(t *testing.T) {
	f := newFakeS3(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.setFault(func(w http.ResponseWriter, r fakeRequest) bool {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return false
	})
	c := newFakeClient(t, f, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.TestConnection(ctx, testTarget, []byte(`{}`))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeTimeout {
		t.Fatalf("TestConnection = %v, want TIMEOUT", err)
	}
}

func TestPlainHTTP(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	creds := credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, "")
	_, err := New(context.Background(), Config{Endpoint: srv.URL, Credentials: creds})
	if err == nil || !strings.Contains(err.Error(), "--allow-insecure-endpoint") {
		t.Fatalf("New with an http:// endpoint = %v, want an error naming --allow-insecure-endpoint", err)
	}

	// With the development flag the same fake works over plain HTTP.
	f := &fakeS3{objects: map[string][]byte{}, parts: map[string]map[int][]byte{}}
	plain := httptest.NewServer(http.HandlerFunc(f.serve))
	defer plain.Close()
	c, err := New(context.Background(), Config{Endpoint: plain.URL, AllowInsecureEndpoint: true, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.TestConnection(context.Background(), testTarget, []byte(`{}`)); err != nil {
		t.Fatalf("TestConnection over allowed HTTP: %v", err)
	}
	checkEveryRequest(t, f.requests(), "")
}

func TestHTTPSGuard(t *testing.T) {
	// Validate stops an http:// endpoint; the middleware is the second
	// line: with the flag cleared after construction nothing is sent.
	f := &fakeS3{objects: map[string][]byte{}, parts: map[string]map[int][]byte{}}
	plain := httptest.NewServer(http.HandlerFunc(f.serve))
	defer plain.Close()
	creds := credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, "")
	c, err := New(context.Background(), Config{Endpoint: plain.URL, AllowInsecureEndpoint: true, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	c.cfg.AllowInsecureEndpoint = false
	if err := c.TestConnection(context.Background(), testTarget, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "must use TLS") {
		t.Fatalf("TestConnection = %v, want a refusal of plain HTTP", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d plain HTTP requests were sent", n)
	}
}

func TestNew(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, "")
	reg := prometheus.NewRegistry()
	for range 2 { // two clients may share a registry
		c, err := New(context.Background(), Config{Region: "eu-central-1", Credentials: creds, Registerer: reg,
			AssumeRoleARN: "arn:aws:iam::123456789012:role/jupiterone-data-streaming"})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		if c.Region() != "eu-central-1" || c.Suffix() != DefaultSuffix {
			t.Errorf("Region %q Suffix %q", c.Region(), c.Suffix())
		}
	}
	if _, err := New(context.Background(), Config{PartSize: 1}); err == nil || !strings.Contains(err.Error(), "--part-size") {
		t.Errorf("New with a 1-byte part = %v, want an error naming --part-size", err)
	}
}
