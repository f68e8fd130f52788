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
)

// Error codes, shown to administrators and used for retry decisions.
const (
	CodeAccessDenied    = "ACCESS_DENIED"
	CodeNoSuchBucket    = "NO_SUCH_BUCKET"
	CodeWrongRegion     = "WRONG_REGION"
	CodeKMSAccessDenied = "KMS_ACCESS_DENIED"
	CodeNetwork         = "NETWORK"
	CodeTLS             = "TLS"
	CodeThrottled       = "THROTTLED"
	CodeServerError     = "SERVER_ERROR"
	CodeTimeout         = "TIMEOUT"
	CodeInvalidBucket   = "INVALID_BUCKET"
	CodeUnknown         = "UNKNOWN"
)

// Error classifies an S3 failure for users and for retry decisions.
type Error struct {
	// Code is one of the Code* constants.
	Code string
	// Message tells the administrator what to fix. It never contains
	// credentials.
	Message string
	// Permanent is true when retrying soon will not help (access denied,
	// no such bucket, wrong region, KMS denied, invalid bucket name,
	// untrusted certificate): the caller should retry on a slow schedule.
	Permanent bool
	// Err is the underlying error.
	Err error
}

// Error returns the code, the message and the cause.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code + ": " + e.Message
	}
	return e.Code + ": " + e.Message + " (" + e.Err.Error() + ")"
}

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
// (CodeUnknown when nothing matches) and a message for the administrator.
func Classify(err error, t s3bucket.Target, region string) *Error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return already
	}
	e := classify(err, t, region)
	e.Err = err
	return e
}

func classify(err error, t s3bucket.Target, region string) *Error {
	// Failing to get j1ds's own credentials (including an STS AssumeRole
	// denial, which is also an API error) is the operator's problem, not the
	// bucket's: check it before S3's API errors.
	var signErr *v4.SigningError
	if errors.As(err, &signErr) {
		if e := classifyTransport(err); e != nil {
			e.Message = "j1ds could not get its AWS credentials: " + e.Message
			return e
		}
		return &Error{Code: CodeAccessDenied, Permanent: true, Message: "j1ds could not get AWS credentials for its role " + s3bucket.RoleName +
			": check the credentials of the j1ds deployment (and --assume-role-arn, and that role's trust policy); the bucket settings are not the cause"}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if e := classifyAPI(err, apiErr, t, region); e != nil {
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
			return noSuchBucket(t, region)
		}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: CodeUnknown, Message: "the S3 request was canceled before it completed"}
	}
	return &Error{Code: CodeUnknown, Message: "the S3 request failed unexpectedly; details are in the j1ds log"}
}

func classifyAPI(err error, apiErr smithy.APIError, t s3bucket.Target, region string) *Error {
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
		}
		return kmsDenied(code)
	case code == "AccessDenied" && (strings.Contains(msg, "kms:") || strings.Contains(msg, "KMS")):
		return kmsDenied(code)
	case code == "AccessDenied", code == "AllAccessDisabled":
		return accessDenied(t)
	case code == "InvalidAccessKeyId", code == "SignatureDoesNotMatch", code == "InvalidToken",
		code == "ExpiredToken", code == "TokenRefreshRequired", code == "InvalidSecurity":
		return &Error{Code: CodeAccessDenied, Permanent: true, Message: "S3 rejected j1ds's own AWS credentials (" + code +
			"): check the credentials of the j1ds deployment; the bucket settings are not the cause"}
	case code == "NoSuchBucket":
		return noSuchBucket(t, region)
	case code == "InvalidBucketName":
		return &Error{Code: CodeInvalidBucket, Permanent: true, Message: fmt.Sprintf("S3 rejected the bucket name %q as invalid; check the bucket name", t.Bucket)}
	case code == "PermanentRedirect", code == "AuthorizationHeaderMalformed" && strings.Contains(msg, "region"),
		code == "IllegalLocationConstraintException", code == "IncorrectEndpoint",
		status == http.StatusMovedPermanently:
		return wrongRegion(t, region, bucketRegion(err, msg))
	case code == "SlowDown", code == "Throttling", code == "ThrottlingException", code == "RequestLimitExceeded",
		code == "TooManyRequestsException", code == "ServiceUnavailable", code == "RequestThrottled",
		status == http.StatusServiceUnavailable, status == http.StatusTooManyRequests:
		return throttled(status, code)
	case code == "RequestTimeout", code == "RequestTimeoutException":
		return &Error{Code: CodeTimeout, Message: "S3 closed the request because the upload was too slow (" + code + "); j1ds will retry"}
	case code == "InternalError", status >= 500:
		return serverError(status, code)
	case code == "RequestTimeTooSkewed":
		return &Error{Code: CodeUnknown, Message: "S3 rejected the request because the clock of the j1ds host is wrong (RequestTimeTooSkewed): synchronise its clock"}
	case status == http.StatusForbidden:
		return accessDenied(t)
	case status == http.StatusNotFound && code == "NotFound":
		return noSuchBucket(t, region)
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
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr), errors.As(err, &verifyErr):
		return &Error{Code: CodeTLS, Permanent: true, Message: "the TLS certificate of the S3 endpoint could not be verified: " + tlsDetail(err) +
			"; check --s3-endpoint and the trusted CAs (AWS_CA_BUNDLE)"}
	case errors.As(err, &recordErr):
		return &Error{Code: CodeTLS, Permanent: true, Message: "the S3 endpoint does not speak TLS (HTTPS); check --s3-endpoint"}
	case errors.As(err, &alertErr), errors.As(err, &echErr):
		return &Error{Code: CodeTLS, Message: "the TLS handshake with the S3 endpoint failed; j1ds will retry"}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return &Error{Code: CodeTimeout, Message: "the S3 request timed out; j1ds will retry"}
	case errors.As(err, &netErr) && netErr.Timeout():
		return &Error{Code: CodeTimeout, Message: "the S3 request timed out; j1ds will retry"}
	case errors.As(err, &dnsErr):
		return &Error{Code: CodeNetwork, Message: fmt.Sprintf("j1ds could not resolve the host name %q; check DNS and --s3-endpoint", dnsErr.Name)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Error{Code: CodeNetwork, Message: "the S3 endpoint refused the connection; check --s3-endpoint and the network; j1ds will retry"}
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.EPIPE), errors.As(err, &opErr):
		return &Error{Code: CodeNetwork, Message: "the connection to S3 failed (" + networkDetail(err) + "); j1ds will retry"}
	case errors.As(err, &requestErr):
		// The S3 client wraps a send failure in a response error of status
		// 0, so that wrapper must not exclude it ("use of closed network
		// connection" after a reset arrives this way).
		return &Error{Code: CodeNetwork, Message: "the request could not be sent to S3; j1ds will retry"}
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
	return &Error{Code: CodeAccessDenied, Permanent: true, Message: fmt.Sprintf(
		"S3 denied the write: either the bucket policy does not allow role %s to s3:PutObject on arn:aws:s3:::%s/jupiterone/*, "+
			"or the bucket is not owned by AWS account %s; check the policy in the S3 Bucket Policy panel and the AWS Account ID",
		s3bucket.RoleName, t.Bucket, t.Owner)}
}

func noSuchBucket(t s3bucket.Target, region string) *Error {
	return &Error{Code: CodeNoSuchBucket, Permanent: true, Message: fmt.Sprintf(
		"bucket %q does not exist; check the bucket name (the bucket must exist in region %s)", t.Bucket, region)}
}

func wrongRegion(t s3bucket.Target, region, bucketRegion string) *Error {
	if bucketRegion == "" {
		return &Error{Code: CodeWrongRegion, Permanent: true, Message: fmt.Sprintf(
			"bucket %q is not in the required region %s; use a bucket in %s", t.Bucket, region, region)}
	}
	return &Error{Code: CodeWrongRegion, Permanent: true, Message: fmt.Sprintf(
		"bucket %q is in region %s, but data streaming writes only to buckets in the required region %s; use a bucket in %s",
		t.Bucket, bucketRegion, region, region)}
}

func kmsDenied(code string) *Error {
	return &Error{Code: CodeKMSAccessDenied, Permanent: true, Message: fmt.Sprintf(
		"the bucket's KMS key does not let the role encrypt (%s): add kms:GenerateDataKey and kms:Encrypt "+
			"(kms:Decrypt for multipart) for the role %s to the key policy", code, s3bucket.RoleName)}
}

func throttled(status int, code string) *Error {
	return &Error{Code: CodeThrottled, Message: "S3 is throttling requests (" + describe(status, code) + "); j1ds will retry"}
}

func serverError(status int, code string) *Error {
	return &Error{Code: CodeServerError, Message: "S3 answered with a server error (" + describe(status, code) + "); j1ds will retry"}
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
