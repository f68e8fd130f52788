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
	"github.com/j1ds/j1ds/internal/stream"
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

// Who must act, in the table below.
const (
	customer = stream.ActionCustomer
	operator = stream.ActionOperator
)

// TestClassify: each error shape gets its code and retry schedule; the
// customer reads what to fix when the fault is theirs (bucket, policy,
// owner, region, KMS key) and that the service is retrying when it is the
// operator's; the operator's detail (flags, network faults) stays out of
// the customer's message.
func TestClassify(t *testing.T) {
	target := s3bucket.Target{Bucket: "acme-data", Owner: "111122223333"}
	regionHeader := http.Header{"X-Amz-Bucket-Region": {"eu-west-1"}}
	retrying := []string{"retrying"}
	operatorFix := []string{"nothing to change in your settings", "operator must fix it", "retrying"}
	noCredentials := &CredentialsError{Err: fmt.Errorf("failed to refresh cached credentials, %w",
		errors.New("no EC2 IMDS role found, operation error ec2imds: GetMetadata, access disabled to EC2 IMDS via client option, or \"AWS_EC2_METADATA_DISABLED\" environment variable"))}
	for _, tc := range []struct {
		name      string
		err       error
		kmsKeyID  string // the client's --kms-key-id
		code      string
		permanent bool
		by        string
		says      []string // substrings of the customer's message
		detail    []string // substrings of the operator's detail
	}{
		{"access denied", apiError("S3", 403, "AccessDenied", "Access Denied", nil), "", CodeAccessDenied, true, customer,
			[]string{"bucket policy", s3bucket.RoleName, "s3:PutObject", "arn:aws:s3:::acme-data/jupiterone/*", "not owned by AWS account 111122223333", "S3 Bucket Policy panel", "AWS Account ID"}, nil},
		{"no such bucket", apiError("S3", 404, "NoSuchBucket", "The specified bucket does not exist", nil), "", CodeNoSuchBucket, true, customer,
			[]string{`"acme-data"`, "does not exist", "us-east-1"}, nil},
		{"404 of another kind", apiError("S3", 404, "NoSuchKey", "The specified key does not exist.", nil), "", CodeNotFound, true, operator,
			[]string{`"not found" without saying what is missing`, `"acme-data"`, "us-east-1", "operator must fix it"}, []string{"404 NoSuchKey", "--s3-endpoint"}},
		{"bodiless 404", apiError("S3", 404, "NotFound", "Not Found", nil), "", CodeNotFound, true, operator,
			[]string{`"acme-data"`}, []string{"404", "--s3-endpoint"}},
		{"permanent redirect with region header", apiError("S3", 301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint.", regionHeader),
			"", CodeWrongRegion, true, customer, []string{"eu-west-1", "us-east-1"}, nil},
		{"bare 301 with region header", apiError("S3", 301, "", "", regionHeader), "", CodeWrongRegion, true, customer, []string{"eu-west-1", "us-east-1"}, nil},
		{"authorization header malformed (AWS)", apiError("S3", 400, "AuthorizationHeaderMalformed",
			"The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'ap-southeast-2'", nil),
			"", CodeWrongRegion, true, customer, []string{"ap-southeast-2", "us-east-1"}, nil},
		{"authorization header malformed (versitygw)", apiError("S3", 400, "AuthorizationHeaderMalformed",
			`The authorization header is malformed; the region "us-east-1" is wrong; expecting "us-west-2"`, nil),
			"", CodeWrongRegion, true, customer, []string{"us-west-2", "us-east-1"}, nil},
		{"kms access denied", apiError("S3", 403, "KMS.AccessDeniedException", "denied", nil), "", CodeKMSAccessDenied, true, customer,
			[]string{"kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "key policy"}, nil},
		{"kms disabled", apiError("S3", 400, "KMS.DisabledException", "key disabled", nil), "", CodeKMSAccessDenied, true, customer, []string{"KMS key"}, nil},
		{"kms key of the bucket's default not found", apiError("S3", 400, "KMS.NotFoundException", "Invalid keyId aws/s3", nil), "", CodeKMSKeyNotFound, true, customer,
			[]string{"KMS key of the bucket's default encryption does not exist", "us-east-1"}, nil},
		{"kms key of --kms-key-id not found", apiError("S3", 400, "KMS.NotFoundException", "Key 'arn:aws:kms:us-east-1:999988887777:key/x' does not exist", nil),
			"arn:aws:kms:us-east-1:999988887777:key/x", CodeKMSKeyNotFound, true, operator, operatorFix, []string{"--kms-key-id", "arn:aws:kms:us-east-1:999988887777:key/x", "us-east-1"}},
		{"access denied naming kms", apiError("S3", 403, "AccessDenied",
			"User: arn:aws:sts::999988887777:assumed-role/jupiterone-data-streaming/j1ds is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:us-east-1:111122223333:key/x", nil),
			"", CodeKMSAccessDenied, true, customer, []string{"kms:GenerateDataKey"}, nil},
		{"kms throttling", apiError("S3", 400, "KMS.ThrottlingException", "slow down", nil), "", CodeThrottled, false, operator, retrying, []string{"KMS.ThrottlingException"}},
		{"slow down", apiError("S3", 503, "SlowDown", "Please reduce your request rate.", nil), "", CodeThrottled, false, operator, retrying, []string{"SlowDown"}},
		{"503 without code", apiError("S3", 503, "", "", nil), "", CodeThrottled, false, operator, retrying, []string{"503"}},
		{"internal error", apiError("S3", 500, "InternalError", "We encountered an internal error.", nil), "", CodeServerError, false, operator, retrying, []string{"500"}},
		{"bad gateway", apiError("S3", 502, "", "", nil), "", CodeServerError, false, operator, retrying, []string{"502"}},
		{"request timeout", apiError("S3", 400, "RequestTimeout", "Your socket connection to the server was not read from or written to within the timeout period.", nil),
			"", CodeTimeout, false, operator, retrying, []string{"RequestTimeout"}},
		{"invalid bucket name", apiError("S3", 400, "InvalidBucketName", "The specified bucket is not valid.", nil), "", CodeInvalidBucket, true, customer, []string{"acme-data"}, nil},
		{"invalid access key", apiError("S3", 403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", nil), "", CodeCredentials, true, operator,
			operatorFix, []string{"InvalidAccessKeyId", "credentials of the j1ds deployment"}},
		{"unknown 4xx", apiError("S3", 400, "InvalidArgument", "bad", nil), "", CodeUnknown, false, operator, operatorFix, nil},
		{"missing credentials", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject",
			Err: fmt.Errorf("get identity: %w", fmt.Errorf("get credentials: %w", noCredentials))},
			"", CodeCredentials, true, operator, operatorFix, []string{"own AWS credentials", "AWS_ACCESS_KEY_ID", "--assume-role-arn"}},
		{"assume role denied", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &v4.SigningError{
			Err: fmt.Errorf("failed to retrieve credentials: %w", fmt.Errorf("failed to refresh cached credentials, %w",
				apiError("STS", 403, "AccessDenied", "not authorized to perform sts:AssumeRole", nil)))}},
			"", CodeCredentials, true, operator, operatorFix, []string{"own AWS credentials", "--assume-role-arn", "trust policy"}},
		{"assume role unreachable", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &v4.SigningError{
			Err: fmt.Errorf("failed to retrieve credentials: %w", sendError(&net.DNSError{Err: "no such host", Name: "sts.amazonaws.com"}))}},
			"", CodeCredentials, false, operator, retrying, []string{"own AWS credentials", "sts.amazonaws.com"}},
		{"connection refused", sendError(&net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}),
			"", CodeNetwork, false, operator, retrying, []string{"refused", "--s3-endpoint"}},
		{"connection reset", sendError(&net.OpError{Op: "read", Net: "tcp", Err: &os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}}),
			"", CodeNetwork, false, operator, retrying, []string{"reset"}},
		{"unexpected eof", sendError(io.ErrUnexpectedEOF), "", CodeNetwork, false, operator, retrying, []string{"closed early"}},
		{"dns", sendError(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "s3.example.com", IsNotFound: true}}),
			"", CodeNetwork, false, operator, retrying, []string{"s3.example.com", "--s3-endpoint"}},
		{"unknown authority", sendError(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), "", CodeTLS, true, operator,
			operatorFix, []string{"unknown authority", "AWS_CA_BUNDLE"}},
		{"hostname mismatch", sendError(&tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "s3.example.com"}}),
			"", CodeTLS, true, operator, operatorFix, []string{"s3.example.com"}},
		{"plain http server", sendError(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), "", CodeTLS, true, operator, operatorFix, []string{"TLS", "--s3-endpoint"}},
		{"context deadline", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &smithy.CanceledError{Err: context.DeadlineExceeded}},
			"", CodeTimeout, false, operator, retrying, nil},
		{"dial timeout", sendError(&net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}), "", CodeTimeout, false, operator, retrying, nil},
		{"canceled", &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: &smithy.CanceledError{Err: context.Canceled}},
			"", CodeUnknown, false, operator, []string{"canceled", "retrying"}, nil},
		{"anything else", errors.New("boom"), "", CodeUnknown, false, operator, operatorFix, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wrapped := fmt.Errorf("put object k: %w", tc.err)
			e := classifyFor(wrapped, target, "us-east-1", tc.kmsKeyID)
			if e.Code != tc.code || e.Permanent != tc.permanent || e.ActionBy != tc.by {
				t.Fatalf("Classify = %s permanent=%v by %s (%q), want %s permanent=%v by %s", e.Code, e.Permanent, e.ActionBy, e.Message, tc.code, tc.permanent, tc.by)
			}
			for _, s := range tc.says {
				if !strings.Contains(e.Message, s) {
					t.Errorf("message %q does not say %q", e.Message, s)
				}
			}
			for _, s := range tc.detail {
				if !strings.Contains(e.Detail, s) {
					t.Errorf("operator's detail %q does not say %q", e.Detail, s)
				}
				if !strings.Contains(e.Error(), s) {
					t.Errorf("the logged error %q does not say %q", e.Error(), s)
				}
			}
			for _, s := range []string{"--", "AWS_", "j1ds", "169.254", "dial", "tcp"} {
				if strings.Contains(e.Message, s) {
					t.Errorf("the customer's message %q holds the operator's detail %q", e.Message, s)
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
