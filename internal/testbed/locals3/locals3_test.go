package locals3

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

const (
	owner        = "111122223333"
	ownerSecret  = "owner-secret-0123456789"
	writer       = "444455556666"
	writerSecret = "writer-secret-0123456789"
	stranger     = "999999999999"
	bucket       = "customer-bucket"
)

// start starts a server for one test and closes it when the test ends.
func start(t *testing.T, o Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold build
	defer cancel()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	o.Progress = testWriter{t}
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// setup starts a server with the owner's bucket, the writer and the
// writer's policy: the customer's side of j1ds, ready.
func setup(t *testing.T, o Options) *Server {
	t.Helper()
	s := start(t, o)
	ctx := testCtx(t)
	for _, a := range [][2]string{{owner, ownerSecret}, {writer, writerSecret}} {
		if err := s.CreateAccount(ctx, a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateBucket(ctx, bucket, owner); err != nil {
		t.Fatal(err)
	}
	if err := s.PutBucketPolicy(ctx, bucket, WriterPolicy(bucket, writer)); err != nil {
		t.Fatal(err)
	}
	return s
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// answer is what the server said to a failed call.
type answer struct {
	Status        int
	Code, Message string
	BucketRegion  string // x-amz-bucket-region
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s %q region=%q", a.Status, a.Code, a.Message, a.BucketRegion)
}

func answerOf(t *testing.T, err error) answer {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded, want an error answer")
	}
	var a answer
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		t.Fatalf("not an HTTP answer: %v", err)
	}
	a.Status = re.HTTPStatusCode()
	a.BucketRegion = re.Response.Header.Get("X-Amz-Bucket-Region")
	var ae smithy.APIError
	if errors.As(err, &ae) {
		a.Code, a.Message = ae.ErrorCode(), ae.ErrorMessage()
	}
	return a
}

func wantAnswer(t *testing.T, what string, err error, status int, code string) answer {
	t.Helper()
	a := answerOf(t, err)
	t.Logf("%s: %s", what, a)
	if a.Status != status || a.Code != code {
		t.Errorf("%s: got %s, want %d %s (error: %v)", what, a, status, code, err)
	}
	return a
}

func put(ctx context.Context, c *s3.Client, key, expectedOwner string, body []byte, opts ...func(*s3.Options)) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:              aws.String(bucket),
		Key:                 aws.String(key),
		Body:                bytes.NewReader(body),
		ExpectedBucketOwner: aws.String(expectedOwner),
		ContentType:         aws.String("application/x-ndjson"),
		ContentEncoding:     aws.String("gzip"),
	}, opts...)
	return err
}

func noRetry(o *s3.Options) { o.RetryMaxAttempts = 1 }

func TestWriterPolicy(t *testing.T) {
	s := setup(t, Options{})
	ctx := testCtx(t)
	w := s.Client(writer, writerSecret)

	if err := put(ctx, w, "jupiterone/x", owner, []byte("hello")); err != nil {
		t.Fatalf("writer put with the right owner: %v", err)
	}
	got, err := s.RootClient().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/x")})
	if err != nil {
		t.Fatalf("root reads back: %v", err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "hello" || aws.ToString(got.ContentEncoding) != "gzip" || aws.ToString(got.ContentType) != "application/x-ndjson" {
		t.Errorf("read back %q encoding %q type %q", b, aws.ToString(got.ContentEncoding), aws.ToString(got.ContentType))
	}

	wantAnswer(t, "wrong expected owner", put(ctx, w, "jupiterone/x", stranger, []byte("x"), noRetry), 403, "AccessDenied")
	wantAnswer(t, "prefix outside the policy", put(ctx, w, "other/x", owner, []byte("x"), noRetry), 403, "AccessDenied")
	_, err = w.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/x"), ExpectedBucketOwner: aws.String(owner)})
	wantAnswer(t, "writer reads", err, 403, "AccessDenied")
	// versitygw, unlike AWS, gives the owner only what the policy grants.
	_, err = s.Client(owner, ownerSecret).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/x")}, noRetry)
	wantAnswer(t, "owner reads a bucket whose policy does not name it", err, 403, "AccessDenied")
}

func TestMultipart(t *testing.T) {
	s := setup(t, Options{})
	ctx := testCtx(t)
	w := s.Client(writer, writerSecret)
	key := aws.String("jupiterone/big")
	part := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16) // 5 MiB, the S3 minimum

	_, err := w.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key, ExpectedBucketOwner: aws.String(stranger)}, noRetry)
	wantAnswer(t, "create multipart, wrong owner", err, 403, "AccessDenied")

	up, err := w.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key, ExpectedBucketOwner: aws.String(owner)})
	if err != nil {
		t.Fatalf("create multipart: %v", err)
	}
	_, err = w.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: strings.NewReader("small"), ExpectedBucketOwner: aws.String(stranger)}, noRetry)
	wantAnswer(t, "upload part, wrong owner", err, 403, "AccessDenied")
	// With a body of a few MiB versitygw answers before reading it and
	// closes the connection: the client sees either the 403 or a reset.
	_, err = w.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(part), ExpectedBucketOwner: aws.String(stranger)}, noRetry)
	if err == nil {
		t.Fatal("5 MiB part with the wrong owner succeeded")
	}
	t.Logf("upload 5 MiB part, wrong owner: %v", err)

	var parts []types.CompletedPart
	for i, body := range [][]byte{part, []byte("tail")} {
		n := aws.Int32(int32(i + 1))
		p, err := w.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId, PartNumber: n,
			Body: bytes.NewReader(body), ExpectedBucketOwner: aws.String(owner)})
		if err != nil {
			t.Fatalf("upload part %d: %v", *n, err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: n, ETag: p.ETag})
	}
	complete := func(expected string, opts ...func(*s3.Options)) error {
		_, err := w.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}, ExpectedBucketOwner: aws.String(expected)}, opts...)
		return err
	}
	wantAnswer(t, "complete multipart, wrong owner", complete(stranger, noRetry), 403, "AccessDenied")
	if err := complete(owner); err != nil {
		t.Fatalf("complete multipart: %v", err)
	}
	h, err := s.RootClient().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(part) + 4); aws.ToInt64(h.ContentLength) != want {
		t.Errorf("object size %d, want %d", aws.ToInt64(h.ContentLength), want)
	}
}

// TestErrorAnswers pins what versitygw answers where j1ds's connection test
// must explain a failure.
func TestErrorAnswers(t *testing.T) {
	s := setup(t, Options{})
	ctx := testCtx(t)
	if err := s.CreateBucket(ctx, "no-policy", owner); err != nil {
		t.Fatal(err)
	}
	w := s.Client(writer, writerSecret)
	putTo := func(b, expected string) error {
		_, err := w.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("jupiterone/.connection-test"),
			Body: strings.NewReader("{}"), ExpectedBucketOwner: aws.String(expected)}, noRetry)
		return err
	}
	mismatch := wantAnswer(t, "owner mismatch", putTo(bucket, stranger), 403, "AccessDenied")
	noPolicy := wantAnswer(t, "missing policy", putTo("no-policy", owner), 403, "AccessDenied")
	if mismatch != noPolicy || mismatch.Message != "Access Denied." {
		t.Errorf("owner mismatch %s, missing policy %s: want both 403 AccessDenied \"Access Denied.\"", mismatch, noPolicy)
	}
	if a := wantAnswer(t, "no such bucket", putTo("no-such-bucket", owner), 404, "NoSuchBucket"); a.Message != "The specified bucket does not exist." {
		t.Errorf("no such bucket message %q", a.Message)
	}
	_, err := w.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("no-such-bucket"), ExpectedBucketOwner: aws.String(owner)}, noRetry)
	wantAnswer(t, "head no such bucket", err, 404, "NotFound")
	// versitygw decides a bad signature before reading the body. When the
	// drain of that body times out (a loaded CI machine), it closes the
	// connection and the reset can discard the error body the client had not
	// read yet: the SDK then reports a DeserializationError on a bare 403
	// (seen once in CI). That is the transport losing the answer, not a
	// different answer, so only that case is asked again, at most twice.
	for attempt := 1; ; attempt++ {
		_, err = s.Client(writer, "wrong-secret").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/x"),
			Body: strings.NewReader("{}"), ExpectedBucketOwner: aws.String(owner)}, noRetry)
		var lost *smithy.DeserializationError
		if attempt < 3 && errors.As(err, &lost) {
			t.Logf("wrong secret, attempt %d: the error body was lost in transport (%v); asking again", attempt, err)
			continue
		}
		break
	}
	wantAnswer(t, "wrong secret", err, 403, "SignatureDoesNotMatch")
	_, err = s.Client("000000000000", "nobody").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/x"),
		Body: strings.NewReader("{}"), ExpectedBucketOwner: aws.String(owner)}, noRetry)
	wantAnswer(t, "unknown access key", err, 403, "InvalidAccessKeyId")
}

func TestRegionMismatch(t *testing.T) {
	s := setup(t, Options{Region: "eu-west-1"})
	ctx := testCtx(t)
	if err := put(ctx, s.Client(writer, writerSecret), "jupiterone/x", owner, []byte("x")); err != nil {
		t.Fatalf("signed for the server's region: %v", err)
	}
	us := newClient(s.Endpoint, "us-east-1", s.CAPool, writer, writerSecret)
	a := wantAnswer(t, "put signed for us-east-1", put(ctx, us, "jupiterone/x", owner, []byte("x"), noRetry), 400, "AuthorizationHeaderMalformed")
	if want := `The authorization header is malformed; the region "us-east-1" is wrong; expecting "eu-west-1"`; a.Message != want || a.BucketRegion != "" {
		t.Errorf("answer %s, want message %q and no x-amz-bucket-region", a, want)
	}
	_, err := us.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket), ExpectedBucketOwner: aws.String(owner)}, noRetry)
	wantAnswer(t, "head bucket signed for us-east-1", err, 400, "BadRequest")
}

func TestSecureTransport(t *testing.T) {
	s := setup(t, Options{PlainHTTP: true})
	ctx := testCtx(t)
	plain := newClient(s.PlainEndpoint, s.Region, s.CAPool, writer, writerSecret)
	wantAnswer(t, "put over plain HTTP", put(ctx, plain, "jupiterone/x", owner, []byte("x"), noRetry), 403, "AccessDenied")
	if err := put(ctx, s.Client(writer, writerSecret), "jupiterone/x", owner, []byte("x")); err != nil {
		t.Fatalf("same put over TLS: %v", err)
	}
}

func TestPlainHTTPToTLSPort(t *testing.T) {
	s := start(t, Options{})
	addr := strings.TrimPrefix(s.Endpoint, "https://")
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		b, _ := io.ReadAll(resp.Body)
		t.Logf("plain HTTP to the TLS port: %s %q", resp.Status, b)
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP to the TLS port answered %s", resp.Status)
		}
		return
	}
	t.Logf("plain HTTP to the TLS port: %v", err)

	// And through a client: an http:// endpoint at the TLS port fails.
	err = put(testCtx(t), newClient("http://"+addr, s.Region, s.CAPool, writer, writerSecret), "jupiterone/x", owner, []byte("x"), noRetry)
	if err == nil {
		t.Fatal("plain HTTP put to the TLS port succeeded")
	}
	t.Logf("client over plain HTTP: %v", err)
}

func TestProxy(t *testing.T) {
	s := setup(t, Options{})
	ctx := testCtx(t)
	p, err := s.NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	w := p.Client(writer, writerSecret)

	// Recorded with headers, signatures still valid.
	_, err = w.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/kms"), Body: strings.NewReader("x"),
		ExpectedBucketOwner: aws.String(owner), ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String("alias/j1ds")})
	if err != nil {
		t.Fatalf("put through the proxy: %v", err)
	}
	reqs := p.Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d requests, want 1: %+v", len(reqs), reqs)
	}
	r := reqs[0]
	if r.Op != "PutObject" || r.Method != http.MethodPut || r.Path != "/"+bucket+"/jupiterone/kms" || !r.TLS || r.Status != 200 ||
		r.ExpectedBucketOwner() != owner || r.Host != strings.TrimPrefix(p.URL, "https://") {
		t.Errorf("recorded %+v", r)
	}
	if sse := r.SSEHeaders(); sse["X-Amz-Server-Side-Encryption"] != "aws:kms" || sse["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"] != "alias/j1ds" {
		t.Errorf("SSE headers %v", sse)
	}

	// A multipart upload streams through, every step recorded.
	p.Reset()
	key := aws.String("jupiterone/mp")
	up, err := w.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: key, ExpectedBucketOwner: aws.String(owner)})
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("j1ds"), 6<<20/4) // over the SDK's 2 MiB Expect: 100-continue threshold
	part, err := w.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(body), ExpectedBucketOwner: aws.String(owner)})
	if err != nil {
		t.Fatalf("upload part through the proxy: %v", err)
	}
	_, err = w.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: key, UploadId: up.UploadId,
		MultipartUpload:     &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: part.ETag}}},
		ExpectedBucketOwner: aws.String(owner)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.RootClient().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(got.Body); !bytes.Equal(b, body) {
		t.Errorf("multipart object through the proxy: %d bytes, want %d", len(b), len(body))
	}
	got.Body.Close()
	var ops []string
	for _, r := range p.Requests() {
		ops = append(ops, r.Op)
		if r.ExpectedBucketOwner() != owner || !r.TLS || r.Status != 200 {
			t.Errorf("%s: owner %q TLS %v status %d", r.Op, r.ExpectedBucketOwner(), r.TLS, r.Status)
		}
	}
	if got := strings.Join(ops, " "); got != "CreateMultipartUpload UploadPart CompleteMultipartUpload" {
		t.Errorf("ops %s", got)
	}

	// 503 SlowDown twice, then the fault clears itself.
	p.Reset()
	p.SetFault(Fault{Status: http.StatusServiceUnavailable, Count: 2})
	for i := 0; i < 2; i++ {
		wantAnswer(t, "fault 503", put(ctx, w, "jupiterone/x", owner, []byte("x"), noRetry), 503, "SlowDown")
	}
	if err := put(ctx, w, "jupiterone/x", owner, []byte("x"), noRetry); err != nil {
		t.Fatalf("after the fault: %v", err)
	}
	// The SDK's own retries ride over one 500.
	p.SetFault(Fault{Status: http.StatusInternalServerError})
	if err := put(ctx, w, "jupiterone/x", owner, []byte("x")); err != nil {
		t.Fatalf("retried past one 500: %v", err)
	}
	var faults []string
	for _, r := range p.Requests() {
		faults = append(faults, fmt.Sprintf("%d%s", r.Status, r.Fault))
	}
	if got := strings.Join(faults, " "); got != "503status 503status 200 500status 200" {
		t.Errorf("statuses %s", got)
	}

	// Reset: the client sees a connection error, no HTTP answer.
	p.SetFault(Fault{Reset: true, Count: -1, Match: func(r *http.Request) bool { return r.Method == http.MethodPut }})
	err = put(ctx, w, "jupiterone/x", owner, []byte("x"), noRetry)
	// The client reports the reset ("connection reset by peer"), or, when
	// its writer notices first, "use of closed network connection".
	var re *awshttp.ResponseError
	if err == nil || !errors.As(err, &re) || re.HTTPStatusCode() != 0 {
		t.Fatalf("reset: got %v, want a connection error", err)
	}
	if reqs := p.Requests(); reqs[len(reqs)-1].Fault != "reset" {
		t.Errorf("reset recorded as %+v", reqs[len(reqs)-1])
	}
	t.Logf("reset: %v", err)
	p.SetFault(Fault{})

	// Delay, then forward.
	p.SetFault(Fault{Delay: 300 * time.Millisecond})
	t0 := time.Now()
	if err := put(ctx, w, "jupiterone/x", owner, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("delay fault took %s", d)
	}

	// Late: the client gives up during the delay; the request is forwarded
	// all the same and versitygw stores it.
	p.Reset()
	p.SetFault(Fault{Delay: 500 * time.Millisecond, Late: true})
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	err = put(short, w, "jupiterone/late", owner, []byte("late"), noRetry)
	cancelShort()
	if err == nil {
		t.Fatal("late: the client had an answer before the delay ended")
	}
	for deadline := time.Now().Add(10 * time.Second); p.Requests()[0].Status == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("late: the request was not answered within 10 s")
		}
	}
	if r := p.Requests()[0]; r.Status != http.StatusOK || r.Fault != "delay" {
		t.Fatalf("late request recorded as %+v, want 200 delay", r)
	}
	late, err := s.RootClient().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/late")})
	if err != nil {
		t.Fatalf("late: %v", err)
	}
	b, err := io.ReadAll(late.Body)
	late.Body.Close()
	if err != nil || string(b) != "late" {
		t.Fatalf("late: stored %q %v, want \"late\"", b, err)
	}

	// Plain HTTP to the proxy is recorded as such and refused.
	p.Reset()
	plain := newClient(strings.Replace(p.URL, "https://", "http://", 1), s.Region, s.CAPool, writer, writerSecret)
	wantAnswer(t, "plain HTTP to the proxy", put(ctx, plain, "jupiterone/x", owner, []byte("x"), noRetry), 403, "InsecureTransport")
	if reqs := p.Requests(); len(reqs) != 1 || reqs[0].TLS {
		t.Errorf("plain request recorded as %+v", reqs)
	}
}

func TestBuildCached(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold build
	defer cancel()
	a, err := Build(ctx, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	b, err := Build(ctx, nil)
	if err != nil || a != b {
		t.Fatalf("second build %q %v, first %q", b, err, a)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("cached build took %s", d)
	}
}

// TestBuildConcurrent builds into an empty cache dir from two goroutines at
// once (flock serialises separate opens even within one process): one
// builds, the other waits and reuses the result. Go's build cache, warm from
// the other tests, makes this a link of a few seconds.
func TestBuildConcurrent(t *testing.T) {
	if _, err := Build(context.Background(), nil); err != nil { // warm Go's build cache
		t.Fatal(err)
	}
	// GOCACHE defaults to $XDG_CACHE_HOME/go-build: pin it first, or the
	// build below would start from an empty Go build cache.
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOCACHE", strings.TrimSpace(string(gocache)))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv(EnvBinary, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type result struct {
		path string
		err  error
		out  string
	}
	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() {
			var out bytes.Buffer
			p, err := Build(ctx, &out)
			results <- result{p, err, out.String()}
		}()
	}
	r1, r2 := <-results, <-results
	if r1.err != nil || r2.err != nil {
		t.Fatal(r1.err, r2.err)
	}
	if r1.path != r2.path || !strings.HasPrefix(r1.path, os.Getenv("XDG_CACHE_HOME")) {
		t.Fatalf("paths %q %q", r1.path, r2.path)
	}
	outs := r1.out + r2.out
	t.Log(outs)
	if n := strings.Count(outs, "built versitygw"); n != 1 {
		t.Errorf("%d builds, want 1", n)
	}
	entries, _ := os.ReadDir(filepath.Dir(r1.path))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

// TestShellCommandServesTheKeptDirectory: once a server is closed, the
// command line of ShellCommand, run by a shell, serves the same directory
// again over TLS with the same certificate, accounts and root credentials:
// the writer's object is there for the root user, and the owner check still
// knows the bucket's owner.
func TestShellCommandServesTheKeptDirectory(t *testing.T) {
	s := setup(t, Options{})
	ctx := testCtx(t)
	if err := put(ctx, s.Client(writer, writerSecret), "jupiterone/kept", owner, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	addr, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	line := s.ShellCommand(addr)
	t.Logf("sh -c %s", line)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = t.TempDir() // the command line holds absolute paths only
	logPath := filepath.Join(t.TempDir(), "versitygw-again.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	defer func() {
		// The shell and versitygw: the process group setProcAttr made.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-p.done
	}()
	if err := s.waitHealthy(ctx, p, "https://"+addr+"/health"); err != nil {
		t.Fatal(err)
	}
	again := newClient("https://"+addr, s.Region, s.CAPool, s.RootAccess, s.RootSecret)
	obj, err := again.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("jupiterone/kept")})
	if err != nil {
		t.Fatalf("read the kept object through the restarted server: %v\n%s", err, p.tail())
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if string(body) != "kept" {
		t.Fatalf("kept object reads %q", body)
	}
	writerAgain := newClient("https://"+addr, s.Region, s.CAPool, writer, writerSecret)
	if err := put(ctx, writerAgain, "jupiterone/again", owner, []byte("again")); err != nil {
		t.Errorf("the writer, expecting the owner, after the restart: %v", err)
	}
	wantAnswer(t, "the writer, expecting a stranger, after the restart", put(ctx, writerAgain, "jupiterone/again", stranger, []byte("again"), noRetry), 403, "AccessDenied")
}
