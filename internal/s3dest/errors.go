package s3dest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/stream"
)

// Error codes, shown to administrators and used for retry decisions.
const (
	CodeAccessDenied    = "ACCESS_DENIED"
	CodeNoSuchBucket    = "NO_SUCH_BUCKET"
	CodeWrongRegion     = "WRONG_REGION"
	CodeKMSAccessDenied = "KMS_ACCESS_DENIED"
	CodeKMSKeyNotFound  = "KMS_KEY_NOT_FOUND"
	CodeNotFound        = "NOT_FOUND"
	CodeCredentials     = "SERVICE_CREDENTIALS"
	CodeNetwork         = "NETWORK"
	CodeTLS             = "TLS"
	CodeThrottled       = "THROTTLED"
	CodeServerError     = "SERVER_ERROR"
	CodeTimeout         = "TIMEOUT"
	CodeInvalidBucket   = "INVALID_BUCKET"
	CodeUnknown         = "UNKNOWN"
)

// Error classifies an S3 failure for the customer, the operator and retry
// decisions.
type Error struct {
	// Code is one of the Code* constants.
	Code string
	// Message is what the customer's administrator reads: what to fix in
	// the bucket, its policy, owner, region or KMS key when ActionBy is
	// stream.ActionCustomer; that the service is retrying when the fault
	// is the operator's. It names no flag of j1ds and no network detail,
	// and never contains credentials.
	Message string
	// Detail is for the operator's log: what to check on the j1ds side
	// (flags such as --s3-endpoint, its credentials, the network). Empty
	// when Message says it all.
	Detail string
	// ActionBy is who must act: stream.ActionCustomer or
	// stream.ActionOperator.
	ActionBy string
	// Permanent is true when retrying soon will not help (access denied,
	// no such bucket, wrong region, KMS denied, invalid bucket name,
	// untrusted certificate, j1ds's own credentials): the caller should
	// retry on a slow schedule.
	Permanent bool
	// Err is the underlying error.
	Err error
}

// Error returns the code, the message, the operator's detail and the
// cause: the text the operator's log gets.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Detail != "" {
		s += "; for the operator: " + e.Detail
	}
	if e.Err != nil {
		s += " (" + e.Err.Error() + ")"
	}
	return s
}

// CredentialsError marks a failure to get j1ds's own AWS credentials (the
// standard chain, or --assume-role-arn's role): the client wraps its
// credentials provider so that Classify tells it from the customer's
// bucket refusing the write.
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string { return "get j1ds's AWS credentials: " + e.Err.Error() }

// Unwrap returns the provider's error.
func (e *CredentialsError) Unwrap() error { return e.Err }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

var (
	// "the region 'us-east-1' is wrong; expecting 'eu-west-1'" (AWS uses
	// single quotes, versitygw double quotes).
	expectingRegionRE = regexp.MustCompile(`expecting ['"]([a-z0-9-]+)['"]`)
	// "The bucket is in this region: eu-west-1."
	bucketInRegionRE = regexp.MustCompile(`in this region: ([a-z0-9-]+)`)
)

// Classify explains err, an error from an S3 call for target t made by a
// client whose required region is region. It returns nil for a nil err, and
// err itself when it already is an *Error. Every other error gets a code
// (CodeUnknown when nothing matches), a message for the customer, the
// operator's detail and who must act.
func Classify(err error, t s3bucket.Target, region string) *Error {
	return classifyFor(err, t, region, "")
}

// classify is Classify knowing the client's --kms-key-id, which decides
// whose key a KMS error is about.
func (c *Client) classify(err error, t s3bucket.Target) *Error {
	return classifyFor(err, t, c.cfg.Region, c.cfg.KMSKeyID)
}

func classifyFor(err error, t s3bucket.Target, region, kmsKeyID string) *Error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return already
	}
	e := classify(err, t, region, kmsKeyID)
	if e.ActionBy == "" {
		e.ActionBy = stream.ActionOperator
	}
	e.Err = err
	return e
}

func classify(err error, t s3bucket.Target, region, kmsKeyID string) *Error {
	// Failing to get j1ds's own credentials (missing, or an STS AssumeRole
	// denial, which is also an API error) is the operator's problem, not
	// the bucket's: check it before S3's API errors.
	var credErr *CredentialsError
	var signErr *v4.SigningError
	if errors.As(err, &credErr) || errors.As(err, &signErr) {
		detail := "j1ds could not get its own AWS credentials: set them for the j1ds deployment (the standard chain: " +
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance's or task's role), and check --assume-role-arn and that role's trust policy"
		if e := classifyTransport(err); e != nil {
			// The credential service could not be reached.
			e.Code, e.Detail = CodeCredentials, detail+"; the credential service was unreachable: "+e.Detail
			e.Message = "the data streaming service cannot sign in to AWS at the moment; the service is retrying"
			return e
		}
		return &Error{Code: CodeCredentials, Permanent: true, Detail: detail,
			Message: "the data streaming service cannot sign in to AWS: " + operatorSide}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if e := classifyAPI(err, apiErr, t, region, kmsKeyID); e != nil {
			return e
		}
	}
	if e := classifyTransport(err); e != nil {
		return e
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		switch code := status.HTTPStatusCode(); {
		case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
			return throttled(code, "")
		case code >= 500:
			return serverError(code, "")
		case code == http.StatusForbidden:
			return accessDenied(t)
		case code == http.StatusNotFound:
			return notFound(t, region, "")
		}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: CodeUnknown, Message: "the write was canceled before it completed; the service is retrying",
			Detail: "the S3 request was canceled (j1ds stopping, or the attempt given up)"}
	}
	return &Error{Code: CodeUnknown, Message: "the write failed for a reason on the service's side: " + operatorSide,
		Detail: "the S3 request failed in a way j1ds does not recognise; the cause follows"}
}

// operatorSide ends the customer's message of a fault the operator must
// fix.
const operatorSide = "nothing to change in your settings; your JupiterOne operator must fix it, and the service keeps retrying"

func classifyAPI(err error, apiErr smithy.APIError, t s3bucket.Target, region, kmsKeyID string) *Error {
	code, msg := apiErr.ErrorCode(), apiErr.ErrorMessage()
	status := 0
	var se interface{ HTTPStatusCode() int }
	if errors.As(err, &se) {
		status = se.HTTPStatusCode()
	}
	switch {
	case strings.HasPrefix(code, "KMS."):
		switch code {
		case "KMS.ThrottlingException", "KMS.LimitExceededException", "KMS.KMSInternalException", "KMS.DependencyTimeoutException":
			return throttled(status, code)
		case "KMS.NotFoundException":
			// AWS: "400 KMS.NotFoundException: Invalid keyId ..." for a key
			// id, ARN or alias that does not exist in the region.
			return kmsKeyNotFound(region, kmsKeyID, msg)
		}
		return kmsDenied(code)
	case code == "AccessDenied" && (strings.Contains(msg, "kms:") || strings.Contains(msg, "KMS")):
		return kmsDenied(code)
	case code == "AccessDenied", code == "AllAccessDisabled":
		return accessDenied(t)
	case code == "InvalidAccessKeyId", code == "SignatureDoesNotMatch", code == "InvalidToken",
		code == "ExpiredToken", code == "TokenRefreshRequired", code == "InvalidSecurity":
		return &Error{Code: CodeCredentials, Permanent: true, Message: "AWS rejected the data streaming service's own credentials: " + operatorSide,
			Detail: "S3 rejected j1ds's own AWS credentials (" + code + "): check the credentials of the j1ds deployment and --assume-role-arn"}
	case code == "NoSuchBucket":
		return noSuchBucket(t, region)
	case code == "InvalidBucketName":
		return &Error{Code: CodeInvalidBucket, Permanent: true, ActionBy: stream.ActionCustomer, Message: fmt.Sprintf("S3 rejected the bucket name %q as invalid; check the bucket name", t.Bucket)}
	case code == "PermanentRedirect", code == "AuthorizationHeaderMalformed" && strings.Contains(msg, "region"),
		code == "IllegalLocationConstraintException", code == "IncorrectEndpoint",
		status == http.StatusMovedPermanently:
		return wrongRegion(t, region, bucketRegion(err, msg))
	case code == "SlowDown", code == "Throttling", code == "ThrottlingException", code == "RequestLimitExceeded",
		code == "TooManyRequestsException", code == "ServiceUnavailable", code == "RequestThrottled",
		status == http.StatusServiceUnavailable, status == http.StatusTooManyRequests:
		return throttled(status, code)
	case code == "RequestTimeout", code == "RequestTimeoutException":
		return &Error{Code: CodeTimeout, Message: "S3 closed a write that was too slow; the service is retrying",
			Detail: "S3 closed the request because the upload was too slow (" + code + "): check the network of the j1ds host"}
	case code == "InternalError", status >= 500:
		return serverError(status, code)
	case code == "RequestTimeTooSkewed":
		return &Error{Code: CodeUnknown, Message: "AWS rejected the service's request: " + operatorSide,
			Detail: "S3 rejected the request because the clock of the j1ds host is wrong (RequestTimeTooSkewed): synchronise its clock"}
	case status == http.StatusForbidden:
		return accessDenied(t)
	case status == http.StatusNotFound:
		// Not NoSuchBucket: S3 did not say what is missing (a HEAD's
		// bodiless 404, or an endpoint that is not S3).
		return notFound(t, region, code)
	}
	return nil
}

// classifyTransport recognises TLS, timeout and network failures.
func classifyTransport(err error) *Error {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostErr    x509.HostnameError
		certErr    x509.CertificateInvalidError
		verifyErr  *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		alertErr   tls.AlertError
		echErr     *tls.ECHRejectionError
		netErr     net.Error
		dnsErr     *net.DNSError
		opErr      *net.OpError
		requestErr *smithyhttp.RequestSendError
	)
	// The customer reads that the service cannot reach S3 and retries;
	// the operator's detail names the flag or the network fault.
	const unreachable = "the data streaming service cannot reach S3 at the moment: "
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr), errors.As(err, &verifyErr):
		return &Error{Code: CodeTLS, Permanent: true, Message: unreachable + operatorSide,
			Detail: "the TLS certificate of the S3 endpoint could not be verified: " + tlsDetail(err) + "; check --s3-endpoint and the trusted CAs (AWS_CA_BUNDLE)"}
	case errors.As(err, &recordErr):
		return &Error{Code: CodeTLS, Permanent: true, Message: unreachable + operatorSide,
			Detail: "the S3 endpoint does not speak TLS (HTTPS); check --s3-endpoint"}
	case errors.As(err, &alertErr), errors.As(err, &echErr):
		return &Error{Code: CodeTLS, Message: unreachable + "the service is retrying", Detail: "the TLS handshake with the S3 endpoint failed"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return &Error{Code: CodeTimeout, Message: "a write to S3 timed out; the service is retrying", Detail: "the S3 request timed out"}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &Error{Code: CodeTimeout, Message: "a write to S3 timed out; the service is retrying", Detail: "the S3 request timed out (" + netErr.Error() + ")"}
	case errors.As(err, &dnsErr):
		return &Error{Code: CodeNetwork, Message: unreachable + "the service is retrying",
			Detail: fmt.Sprintf("j1ds could not resolve the host name %q; check DNS and --s3-endpoint", dnsErr.Name)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Code: CodeNetwork, Message: unreachable + "the service is retrying",
			Detail: "the S3 endpoint refused the connection; check --s3-endpoint and the network"}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.EPIPE), errors.As(err, &opErr):
		return &Error{Code: CodeNetwork, Message: "the connection to S3 failed; the service is retrying",
			Detail: "the connection to S3 failed (" + networkDetail(err) + ")"}
	case errors.As(err, &requestErr):
		// The S3 client wraps a send failure in a response error of status
		// 0, so that wrapper must not exclude it ("use of closed network
		// connection" after a reset arrives this way).
		return &Error{Code: CodeNetwork, Message: "the connection to S3 failed; the service is retrying", Detail: "the request could not be sent to S3"}
	}
	return nil
}

func tlsDetail(err error) string {
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certErr   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &unknownCA):
		return "it is signed by an unknown authority"
	case errors.As(err, &hostErr):
		return "it is not valid for host " + hostErr.Host
	case errors.As(err, &certErr):
		return certErr.Error()
	}
	return "verification failed"
}

func networkDetail(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed early"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	return "network error"
}

// bucketRegion finds the bucket's region in a wrong-region answer: the
// x-amz-bucket-region header, else the error message.
func bucketRegion(err error, msg string) string {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			return r
		}
	}
	for _, rx := range []*regexp.Regexp{expectingRegionRE, bucketInRegionRE} {
		if m := rx.FindStringSubmatch(msg); m != nil {
			return m[1]
		}
	}
	return ""
}

func accessDenied(t s3bucket.Target) *Error {
	return &Error{Code: CodeAccessDenied, Permanent: true, ActionBy: stream.ActionCustomer, Message: fmt.Sprintf(
		"S3 denied the write: either the bucket policy does not allow role %s to s3:PutObject on arn:aws:s3:::%s/jupiterone/*, "+
			"or the bucket is not owned by AWS account %s; check the policy in the S3 Bucket Policy panel and the AWS Account ID",
		s3bucket.RoleName, t.Bucket, t.Owner)}
}

func noSuchBucket(t s3bucket.Target, region string) *Error {
	return &Error{Code: CodeNoSuchBucket, Permanent: true, ActionBy: stream.ActionCustomer, Message: fmt.Sprintf(
		"bucket %q does not exist; check the bucket name (the bucket must exist in region %s)", t.Bucket, region)}
}

// notFound is a 404 that does not say what is missing: the bucket is
// the customer's to check, the endpoint the operator's.
func notFound(t s3bucket.Target, region, code string) *Error {
	return &Error{Code: CodeNotFound, Permanent: true, Message: fmt.Sprintf(
		"S3 answered \"not found\" without saying what is missing; check that bucket %q exists in region %s. If it does, the fault is on the service's side: your JupiterOne operator must fix it, and the service keeps retrying",
		t.Bucket, region),
		Detail: "S3 answered 404 " + describe(http.StatusNotFound, code) + " without naming NoSuchBucket: check that --s3-endpoint is an S3 endpoint"}
}

func wrongRegion(t s3bucket.Target, region, bucketRegion string) *Error {
	if bucketRegion == "" {
		return &Error{Code: CodeWrongRegion, Permanent: true, ActionBy: stream.ActionCustomer, Message: fmt.Sprintf(
			"bucket %q is not in the required region %s; use a bucket in %s", t.Bucket, region, region)}
	}
	return &Error{Code: CodeWrongRegion, Permanent: true, ActionBy: stream.ActionCustomer, Message: fmt.Sprintf(
		"bucket %q is in region %s, but data streaming writes only to buckets in the required region %s; use a bucket in %s",
		t.Bucket, bucketRegion, region, region)}
}

func kmsDenied(code string) *Error {
	return &Error{Code: CodeKMSAccessDenied, Permanent: true, ActionBy: stream.ActionCustomer, Message: fmt.Sprintf(
		"the bucket's KMS key does not let the role encrypt (%s): add kms:GenerateDataKey and kms:Encrypt "+
			"(kms:Decrypt for multipart) for the role %s to the key policy", code, s3bucket.RoleName)}
}

// kmsKeyNotFound is a KMS key that does not exist in the region: the
// operator's when j1ds names it (--kms-key-id), else the one the bucket's
// default encryption names, the customer's.
func kmsKeyNotFound(region, kmsKeyID, msg string) *Error {
	if kmsKeyID != "" {
		return &Error{Code: CodeKMSKeyNotFound, Permanent: true, Message: "the encryption key the service uses does not exist: " + operatorSide,
			Detail: fmt.Sprintf("S3 found no KMS key %q (--kms-key-id) in region %s (KMS.NotFoundException: %s): name a key that exists in %s, or leave --kms-key-id unset for the bucket's default encryption",
				kmsKeyID, region, msg, region)}
	}
	return &Error{Code: CodeKMSKeyNotFound, Permanent: true, ActionBy: stream.ActionCustomer, Message: fmt.Sprintf(
		"the KMS key of the bucket's default encryption does not exist in region %s (KMS.NotFoundException): "+
			"set the bucket's default encryption to a KMS key that exists in %s (and lets the role %s use it), or to SSE-S3", region, region, s3bucket.RoleName)}
}

func throttled(status int, code string) *Error {
	return &Error{Code: CodeThrottled, Message: "S3 is throttling writes; the service is retrying",
		Detail: "S3 is throttling requests (" + describe(status, code) + ")"}
}

func serverError(status int, code string) *Error {
	return &Error{Code: CodeServerError, Message: "S3 answered with a server error; the service is retrying",
		Detail: "S3 answered with a server error (" + describe(status, code) + ")"}
}

func describe(status int, code string) string {
	switch {
	case status != 0 && code != "":
		return fmt.Sprintf("HTTP %d %s", status, code)
	case status != 0:
		return fmt.Sprintf("HTTP %d", status)
	}
	return code
}
