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
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// apiError builds the error the SDK returns for an S3 error answer.
func apiError(service string, status int, code, msg string, header http.Header) error {
	if header == nil {
		header = http.Header{}
	}
	return &smithy.OperationError{ServiceID: service, OperationName: "PutObject", Err: &awshttp.ResponseError{
		RequestID: "REQ1",
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: header}},
			Err:      &smithy.GenericAPIError{Code: code, Message: msg},
		},
	}}
}

// sendError builds the error the SDK returns when a request could not be
// sent or its answer not read.
func sendError(err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &retry.MaxAttemptsError{Attempt: 3,
		Err: &smithyhttp.RequestSendError{Err: &url.Error{Op: "Put", URL: "https://s3.us-east-1.amazonaws.com/b/k", Err: err}}}}
}

func TestClassify(t *testing.T) {
	target := s3bucket.Target{Bucket: "acme-data", Owner: "111122223333"}
	regionHeader := http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}
	for _, tc := range []struct {
		name      string
		err       error
		code      string
		permanent bool
		says      []string // substrings of the message
	}{
		{"access denied", apiError("S3", 403, "AccessDenied", "Access Denied", nil), CodeAccessDenied, true,
			[]string{"bucket policy", s3bucket.RoleName, "s3:PutObject", "arn:aws:s3:::acme-data/jupiterone/*", "not owned by AWS account 111122223333", "S3 Bucket Policy panel", "AWS Account ID"}},
		{"no such bucket", apiError("S3", 404, "NoSuchBucket", "The specified bucket does not exist", nil), CodeNoSuchBucket, true,
			[]string{`"acme-data"`, "does not exist", "us-east-1"}},
		{"permanent redirect with region header", apiError("S3", 301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint.", regionHeader),
			CodeWrongRegion, true, []string{"eu-west-1", "us-east-1"}},
		{"bare 301 with region header", apiError("S3", 301, "", "", regionHeader), CodeWrongRegion, true, []string{"eu-west-1", "us-east-1"}},
		{"authorization header malformed (AWS)", apiError("S3", 400, "AuthorizationHeaderMalformed",
			"The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'ap-southeast-2'", nil),
			CodeWrongRegion, true, []string{"ap-southeast-2", "us-east-1"}},
		{"authorization header malformed (versitygw)", apiError("S3", 400, "AuthorizationHeaderMalformed",
			`The authorization header is malformed; the region "us-east-1" is wrong; expecting "us-west-2"`, nil),
			CodeWrongRegion, true, []string{"us-west-2", "us-east-1"}},
		{"kms access denied", apiError("S3", 403, "KMS.AccessDeniedException", "denied", nil), CodeKMSAccessDenied, true,
			[]string{"kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "key policy"}},
		{"kms disabled", apiError("S3", 400, "KMS.DisabledException", "key disabled", nil), CodeKMSAccessDenied, true, []string{"KMS key"}},
		{"kms not found", apiError("S3", 400, "KMS.NotFoundException", "Invalid keyId", nil), CodeKMSAccessDenied, true, []string{"KMS key"}},
		{"access denied naming kms", apiError("S3", 403, "AccessDenied",
			"User: arn:aws:sts::999988887777:assumed-role/jupiterone-data-streaming/j1ds is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:111122223333:key/x", nil),
			CodeKMSAccessDenied, true, []string{"kms:GenerateDataKey"}},
		{"kms throttling", apiError("S3", 400, "KMS.ThrottlingException", "slow down", nil), CodeThrottled, false, nil},
		{"slow down", apiError("S3", 503, "SlowDown", "Please reduce your request rate.", nil), CodeThrottled, false, []string{"SlowDown", "retry"}},
		{"503 without code", apiError("S3", 503, "", "", nil), CodeThrottled, false, []string{"503"}},
		{"internal error", apiError("S3", 500, "InternalError", "We encountered an internal error.", nil), CodeServerError, false, []string{"500", "retry"}},
		{"bad gateway", apiError("S3", 502, "", "", nil), CodeServerError, false, nil},
		{"request timeout", apiError("S3", 400, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.", nil), CodeTimeout, false, nil},
		{"invalid bucket name", apiError("S3", 400, "InvalidBucketName", "The specified bucket is not valid.", nil), CodeInvalidBucket, true, []string{"acme-data"}},
		{"invalid access key", apiError("S3", 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", nil), CodeAccessDenied, true,
			[]string{"j1ds's own AWS credentials"}},
		{"unknown 4xx", apiError("S3", 400, "InvalidArgument", "bad", nil), CodeUnknown, false, nil},
		{"assume role denied", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &v4.SigningError{
			Err: fmt.Errorf("failed to retrieve credentials: %w", fmt.Errorf("failed to refresh cached credentials, %w",
				apiError("STS", 403, "AccessDenied", "not authorized to perform sts:AssumeRole", nil)))}},
			CodeAccessDenied, true, []string{"could not get AWS credentials", "not the cause"}},
		{"assume role unreachable", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &v4.SigningError{
			Err: fmt.Errorf("failed to retrieve credentials: %w", sendError(&net.DNSError{Err: "no such host", Name: "sts.amazonaws.com"}))}},
			CodeNetwork, false, []string{"credentials", "sts.amazonaws.com"}},
		{"connection refused", sendError(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}),
			CodeNetwork, false, []string{"refused"}},
		{"connection reset", sendError(&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}),
			CodeNetwork, false, []string{"reset"}},
		{"unexpected eof", sendError(io.ErrUnexpectedEOF), CodeNetwork, false, nil},
		{"dns", sendError(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "s3.example.com", IsNotFound: true}}),
			CodeNetwork, false, []string{"s3.example.com"}},
		{"unknown authority", sendError(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), CodeTLS, true,
			[]string{"unknown authority", "AWS_CA_BUNDLE"}},
		{"hostname mismatch", sendError(&tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "s3.example.com"}}),
			CodeTLS, true, []string{"s3.example.com"}},
		{"plain http server", sendError(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), CodeTLS, true, []string{"TLS"}},
		{"context deadline", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &smithy.CanceledError{Err: context.DeadlineExceeded}},
			CodeTimeout, false, nil},
		{"dial timeout", sendError(&net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}), CodeTimeout, false, nil},
		{"canceled", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &smithy.CanceledError{Err: context.Canceled}},
			CodeUnknown, false, []string{"canceled"}},
		{"anything else", errors.New("boom"), CodeUnknown, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrapped := fmt.Errorf("put object k: %w", tc.err)
			e := Classify(wrapped, target, "us-east-1")
			if e.Code != tc.code || e.Permanent != tc.permanent {
				t.Fatalf("Classify = %s permanent=%v (%q), want %s permanent=%v", e.Code, e.Permanent, e.Message, tc.code, tc.permanent)
			}
			for _, s := range tc.says {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not say %q", e.Message, s)
				}
			}
			if !errors.Is(e, tc.err) {
				t.Errorf("the *Error does not wrap the cause")
			}
			if again := Classify(e, target, "us-east-1"); again != e {
				t.Errorf("Classify of an *Error = %v, want it unchanged", again)
			}
		})
	}
	if Classify(nil, target, "us-east-1") != nil {
		t.Error("Classify(nil) is not nil")
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
