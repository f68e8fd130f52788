package s3dest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/stream"
)

// Transport limits of the default HTTP client.
const (
	dialTimeout           = 10 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	// maxAttempts caps the SDK's retries of transient errors (3 attempts);
	// the exporter retries whole objects on its own slower schedule.
	maxAttempts = 3
	// abortTimeout bounds the best-effort AbortMultipartUpload.
	abortTimeout = 30 * time.Second
)

// Client writes objects into customers' buckets. It is safe for concurrent
// use; one Client serves every account.
type Client struct {
	cfg     Config
	s3      *s3.Client
	sts     *sts.Client
	metrics *metrics
	log     *slog.Logger
}

// New builds a Client from c: it validates c, loads the standard AWS
// configuration (credentials chain, AWS_CA_BUNDLE) with c's region, HTTP
// client and retry policy, and, with AssumeRoleARN, wraps the credentials
// in sts:AssumeRole. It makes no request: credentials are fetched on the
// first S3 call.
func New(ctx context.Context, c Config) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()

	hc := c.HTTPClient
	if hc == nil {
		hc = awshttp.NewBuildableClient().
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
			WithTransportOptions(func(tr *http.Transport) {
				tr.TLSHandshakeTimeout = tlsHandshakeTimeout
				tr.ResponseHeaderTimeout = responseHeaderTimeout
			})
	}
	if c.RootCAs != nil {
		// Clone: an AWS_CA_BUNDLE is appended to this pool by config loading.
		roots := c.RootCAs.Clone()
		hc = hc.WithTransportOptions(func(tr *http.Transport) {
			if tr.TLSClientConfig == nil {
				tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			tr.TLSClientConfig.RootCAs = roots
		})
	}
	backoff := c.maxBackoff
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(c.Region),
		config.WithHTTPClient(hc),
		config.WithLogger(sdkLogger{c.Logger}),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				// No client-side retry quota: when many accounts fail at once
				// the quota would turn S3's answers into "quota exceeded".
				o.RateLimiter = ratelimit.None
				if backoff > 0 {
					o.MaxBackoff = backoff
					o.Backoff = retry.NewExponentialJitterBackoff(backoff)
				}
			})
		}),
	}
	if c.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(c.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	stsClient := sts.NewFromConfig(awsCfg)
	if c.AssumeRoleARN != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, c.AssumeRoleARN,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "j1ds" }))
		stsClient = sts.NewFromConfig(awsCfg)
	}

	if _, anonymous := awsCfg.Credentials.(aws.AnonymousCredentials); awsCfg.Credentials != nil && !anonymous {
		// Marked, so that Classify tells j1ds's own credentials failing
		// from the customer's bucket refusing the write.
		awsCfg.Credentials = markedCredentials{awsCfg.Credentials}
	}

	cl := &Client{cfg: c, sts: stsClient, metrics: newMetrics(c.Registerer), log: c.Logger}
	cl.s3 = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
			o.UsePathStyle = true
		}
		o.APIOptions = append(o.APIOptions, cl.instrument)
	})
	return cl, nil
}

// markedCredentials wraps j1ds's credentials provider: its failures are
// *CredentialsError.
type markedCredentials struct{ p aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.p.Retrieve(ctx)
	if err != nil {
		return c, &CredentialsError{Err: err}
	}
	return c, nil
}

// Region returns the required region: the region requests are signed for.
func (c *Client) Region() string { return c.cfg.Region }

// Suffix returns the configured object key suffix (".jsonl" or ".jsonl.gz").
func (c *Client) Suffix() string { return c.cfg.Suffix }

// AccountID asks STS (GetCallerIdentity) for the AWS account of the
// principal j1ds writes as, for the bucket policy when the operator did not
// configure it.
func (c *Client) AccountID(ctx context.Context) (string, error) {
	out, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("sts get caller identity: %w", err)
	}
	return aws.ToString(out.Account), nil
}

// TestConnection writes ConnectionTestKey with body (a small JSON document
// chosen by the caller) into t.Bucket, exactly as an export would: expected
// bucket owner t.Owner, over TLS, with the configured SSE-KMS key if any.
// It returns nil or an *Error explaining what the administrator must fix.
func (c *Client) TestConnection(ctx context.Context, t s3bucket.Target, body []byte) error {
	if err := t.Validate(); err != nil {
		return invalidTarget(err)
	}
	in := &s3.PutObjectInput{
		Bucket:              aws.String(t.Bucket),
		Key:                 aws.String(s3bucket.ConnectionTestKey),
		Body:                bytes.NewReader(body),
		ContentLength:       aws.Int64(int64(len(body))),
		ContentType:         aws.String("application/json"),
		ExpectedBucketOwner: aws.String(t.Owner),
		ChecksumAlgorithm:   types.ChecksumAlgorithmCrc32,
		ChecksumCRC32:       crc32Of(body),
	}
	c.setSSE(&in.ServerSideEncryption, &in.SSEKMSKeyId)
	if _, err := c.s3.PutObject(ctx, in); err != nil {
		return c.classify(fmt.Errorf("put object %s: %w", s3bucket.ConnectionTestKey, err), t)
	}
	c.metrics.bytes.Add(float64(len(body)))
	return nil
}

func invalidTarget(err error) *Error {
	return &Error{Code: CodeInvalidBucket, Permanent: true, ActionBy: stream.ActionCustomer, Message: err.Error(), Err: err}
}

// setSSE sets SSE-KMS fields when a key is configured. It is used for
// PutObject and CreateMultipartUpload only.
func (c *Client) setSSE(sse *types.ServerSideEncryption, keyID **string) {
	if c.cfg.KMSKeyID == "" {
		return
	}
	*sse = types.ServerSideEncryptionAwsKms
	*keyID = aws.String(c.cfg.KMSKeyID)
}

// requestCounterKey keys the *atomic.Int64 that counts the HTTP attempts
// of the requests made with a context.
type requestCounterKey struct{}

// instrument adds, inside the SDK's retry loop (so once per HTTP attempt),
// the HTTPS guard, the request metrics and the per-writer request count.
func (c *Client) instrument(stack *middleware.Stack) error {
	mw := middleware.FinalizeMiddlewareFunc("j1dsInstrument", func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
		if req, ok := in.Request.(*smithyhttp.Request); ok && req.URL.Scheme != "https" && !c.cfg.AllowInsecureEndpoint {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, fmt.Errorf("refusing plain HTTP request to %s: S3 requests must use TLS", req.URL.Host)
		}
		if n, ok := ctx.Value(requestCounterKey{}).(*atomic.Int64); ok {
			n.Add(1)
		}
		op := awsmiddleware.GetOperationName(ctx)
		start := time.Now()
		out, md, err := next.HandleFinalize(ctx, in)
		c.metrics.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		outcome := "ok"
		if err != nil {
			outcome = strings.ToLower(Classify(err, s3bucket.Target{}, c.cfg.Region).Code)
		}
		c.metrics.requests.WithLabelValues(op, outcome).Inc()
		return out, md, err
	})
	// Before signing: inside the retry loop, after endpoint resolution (so
	// the URL is known) and after credentials were obtained (a credential
	// failure sends nothing and is not counted).
	if err := stack.Finalize.Insert(mw, "Signing", middleware.Before); err != nil {
		return stack.Finalize.Add(mw, middleware.After)
	}
	return nil
}

// sdkLogger sends the SDK's own log lines to slog.
type sdkLogger struct{ l *slog.Logger }

func (s sdkLogger) Logf(class logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if class == logging.Warn {
		level = slog.LevelWarn
	}
	s.l.Log(context.Background(), level, "aws sdk", "message", fmt.Sprintf(format, v...))
}
