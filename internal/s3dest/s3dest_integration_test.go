package s3dest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/testbed/locals3"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// The customer's side, as on AWS: a bucket owned by the customer's
// account, with the seed's write-only policy for the principal j1ds writes
// as (versitygw names principals by access key, so the writer's access key
// stands for the role jupiterone-data-streaming).
const (
	itOwner        = "111122223333"
	itOwnerSecret  = "owner-secret-0123456789"
	itWriter       = "444455556666"
	itWriterSecret = "writer-secret-0123456789"
	itStranger     = "999999999999"
	itBucket       = "customer-bucket"
)

// startVersity starts versitygw in region with the customer's bucket and
// policy, and a recording proxy in front of it.
func startVersity(t *testing.T, region string) (*locals3.Server, *locals3.Proxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold build of versitygw
	defer cancel()
	srv, err := locals3.Start(ctx, locals3.Options{Dir: t.TempDir(), Region: region})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, a := range [][2]string{{itOwner, itOwnerSecret}, {itWriter, itWriterSecret}} {
		if err := srv.CreateAccount(ctx, a[0], a[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.CreateBucket(ctx, itBucket, itOwner); err != nil {
		t.Fatal(err)
	}
	if err := srv.PutBucketPolicy(ctx, itBucket, locals3.WriterPolicy(itBucket, itWriter)); err != nil {
		t.Fatal(err)
	}
	proxy, err := srv.NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() }) // before srv.Close: cleanups run last-in first-out
	return srv, proxy
}

// versityClient is j1ds's client, signing as the writer for region, through
// the proxy.
func versityClient(t *testing.T, srv *locals3.Server, proxy *locals3.Proxy, region string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Region:      region,
		Endpoint:    proxy.URL,
		RootCAs:     srv.CAPool,
		Credentials: credentials.NewStaticCredentialsProvider(itWriter, itWriterSecret, ""),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkRecorded asserts that every request the proxy saw came over TLS
// with the expected bucket owner, and carried SSE-KMS headers exactly when
// a key is configured and the request is PutObject or
// CreateMultipartUpload.
func checkRecorded(t *testing.T, reqs []locals3.Request, owner, kmsKey string) {
	t.Helper()
	if len(reqs) == 0 {
		t.Fatal("the proxy recorded no request")
	}
	for i, r := range reqs {
		if !r.TLS {
			t.Errorf("request %d (%s) was plain HTTP", i, r.Op)
		}
		if got := r.ExpectedBucketOwner(); got != owner {
			t.Errorf("request %d (%s): expected bucket owner %q, want %q", i, r.Op, got, owner)
		}
		sse := r.SSEHeaders()
		if kmsKey != "" && (r.Op == "PutObject" || r.Op == "CreateMultipartUpload") {
			if sse["X-Amz-Server-Side-Encryption"] != "aws:kms" || sse["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"] != kmsKey {
				t.Errorf("request %d (%s): SSE headers %v, want aws:kms with key %s", i, r.Op, sse, kmsKey)
			}
		} else if len(sse) != 0 {
			t.Errorf("request %d (%s): unexpected SSE headers %v", i, r.Op, sse)
		}
	}
}

func recordedOps(reqs []locals3.Request) []string {
	ops := make([]string, len(reqs))
	for i, r := range reqs {
		ops[i] = r.Op
	}
	return ops
}

// readBack reads an object as the gateway's root (the writer is write-only,
// and versitygw grants even the owner only what the policy grants).
func readBack(t *testing.T, srv *locals3.Server, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := srv.RootClient().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(itBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func TestIntegrationObjects(t *testing.T) {
	srv, proxy := startVersity(t, "us-east-1")
	for _, k := range []struct{ name, kmsKey string }{
		{"no KMS key", ""},
		{"KMS key ARN", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		{"KMS key name", "j1ds-key-1"}, // the name of an S3-compatible server's key
	} {
		kmsKey := k.kmsKey
		t.Run(k.name, func(t *testing.T) {
			c := versityClient(t, srv, proxy, "us-east-1", func(c *Config) { c.PartSize = MinPartSize; c.KMSKeyID = kmsKey })
			target := s3bucket.Target{Bucket: itBucket, Owner: itOwner}
			for _, tc := range []struct {
				name string
				size int
				ops  []string
			}{
				{"small", 1000, []string{"PutObject"}},
				{"exactly one part", MinPartSize, []string{"PutObject"}},
				{"multipart", 2*MinPartSize + 12345, []string{"CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "CompleteMultipartUpload"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					proxy.Reset()
					key := "jupiterone/graph/cdc/accountId=j1dev/year=2026/month=01/day=02/time=030405.000006Z-" + strings.ReplaceAll(tc.name, " ", "-") + ".jsonl"
					w := c.Object(context.Background(), target, key)
					data := payload(tc.size)
					for rest := data; len(rest) > 0; {
						n := min(32<<10, len(rest))
						if _, err := w.Write(rest[:n]); err != nil {
							t.Fatalf("Write: %v", err)
						}
						rest = rest[n:]
					}
					if err := w.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					reqs := proxy.Requests()
					if got := recordedOps(reqs); strings.Join(got, ",") != strings.Join(tc.ops, ",") {
						t.Fatalf("requests %v, want %v", got, tc.ops)
					}
					checkRecorded(t, reqs, itOwner, kmsKey)
					if w.Requests() != len(tc.ops) {
						t.Errorf("Requests = %d, want %d", w.Requests(), len(tc.ops))
					}
					got, out := readBack(t, srv, key)
					if !bytes.Equal(got, data) {
						t.Errorf("read back %d bytes that differ from the %d written", len(got), len(data))
					}
					if ct, ce := aws.ToString(out.ContentType), aws.ToString(out.ContentEncoding); ct != ContentType || ce != ContentEncoding {
						t.Errorf("stored Content-Type %q, Content-Encoding %q; want %s, %s", ct, ce, ContentType, ContentEncoding)
					}
				})
			}
		})
	}
}

func TestIntegrationMultipartWrongOwner(t *testing.T) {
	srv, proxy := startVersity(t, "us-east-1")
	c := versityClient(t, srv, proxy, "us-east-1", func(c *Config) { c.PartSize = MinPartSize })
	w := c.Object(context.Background(), s3bucket.Target{Bucket: itBucket, Owner: itStranger}, "jupiterone/x.jsonl")
	_, err := w.Write(payload(MinPartSize + 1))
	if err == nil {
		err = w.Close()
	} else {
		w.Abort()
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeAccessDenied {
		t.Fatalf("multipart upload to a bucket of another owner: %v, want ACCESS_DENIED", err)
	}
	checkRecorded(t, proxy.Requests(), itStranger, "")
}

func TestIntegrationConnectionTest(t *testing.T) {
	srv, proxy := startVersity(t, "us-east-1")
	ctx := context.Background()
	// A second bucket of the customer whose policy grants another prefix only.
	const otherPrefix = "other-prefix-bucket"
	if err := srv.CreateBucket(ctx, otherPrefix, itOwner); err != nil {
		t.Fatal(err)
	}
	policy := strings.ReplaceAll(locals3.WriterPolicy(otherPrefix, itWriter), "/jupiterone/*", "/exports/*")
	if err := srv.PutBucketPolicy(ctx, otherPrefix, policy); err != nil {
		t.Fatal(err)
	}
	c := versityClient(t, srv, proxy, "us-east-1", nil)
	body := []byte(`{"account":"j1dev","time":"2026-01-02T03:04:05Z"}`)

	t.Run("success", func(t *testing.T) {
		proxy.Reset()
		if err := c.TestConnection(ctx, s3bucket.Target{Bucket: itBucket, Owner: itOwner}, body); err != nil {
			t.Fatalf("TestConnection: %v", err)
		}
		checkRecorded(t, proxy.Requests(), itOwner, "")
		if got, _ := readBack(t, srv, s3bucket.ConnectionTestKey); !bytes.Equal(got, body) {
			t.Errorf("read back %q, want %q", got, body)
		}
	})
	for _, tc := range []struct {
		name   string
		target s3bucket.Target
		code   string
		says   []string
	}{
		{"wrong owner", s3bucket.Target{Bucket: itBucket, Owner: itStranger}, CodeAccessDenied,
			[]string{"bucket policy does not allow role", "arn:aws:s3:::" + itBucket + "/jupiterone/*", "not owned by AWS account " + itStranger}},
		{"policy for another prefix", s3bucket.Target{Bucket: otherPrefix, Owner: itOwner}, CodeAccessDenied,
			[]string{"bucket policy", "arn:aws:s3:::" + otherPrefix + "/jupiterone/*"}},
		{"no bucket", s3bucket.Target{Bucket: "no-such-bucket", Owner: itOwner}, CodeNoSuchBucket, []string{"no-such-bucket"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy.Reset()
			err := c.TestConnection(ctx, tc.target, body)
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.code || !e.Permanent {
				t.Fatalf("TestConnection = %v, want a permanent %s", err, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not say %q", e.Message, s)
				}
			}
			if strings.Contains(err.Error(), itWriterSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
			checkRecorded(t, proxy.Requests(), tc.target.Owner, "")
		})
	}
}

func TestIntegrationRegionMismatch(t *testing.T) {
	srv, proxy := startVersity(t, "eu-west-1")
	c := versityClient(t, srv, proxy, "us-east-1", nil) // j1ds requires us-east-1
	err := c.TestConnection(context.Background(), s3bucket.Target{Bucket: itBucket, Owner: itOwner}, []byte(`{}`))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeWrongRegion || !e.Permanent {
		t.Fatalf("TestConnection = %v, want a permanent WRONG_REGION", err)
	}
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		if !strings.Contains(e.Message, region) {
			t.Errorf("message %q does not name %s", e.Message, region)
		}
	}
	checkRecorded(t, proxy.Requests(), itOwner, "")
}
