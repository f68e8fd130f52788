// Package s3dest is j1ds's S3 writer: it stores each export object in a
// customer's bucket and explains failures in terms an administrator can act
// on.
//
// # Requests
//
// One Client (aws-sdk-go-v2) serves every account. It signs for the
// required region (--region, default us-east-1), so a bucket in another
// region fails with WRONG_REGION instead of being followed there. An
// S3-compatible endpoint (--s3-endpoint) is addressed path-style. Requests
// go over TLS only: an http:// endpoint is a configuration error unless
// --allow-insecure-endpoint, and a middleware refuses any plain HTTP request
// that would slip through. Trusted CAs come from the system, AWS_CA_BUNDLE
// (standard config loading) or Config.RootCAs. Credentials come from the
// standard AWS chain, optionally followed by sts:AssumeRole
// (--assume-role-arn).
//
// Every request (PutObject, CreateMultipartUpload, each UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload) carries the target's
// 12-digit AWS account id as the expected bucket owner, so a bucket of the
// same name owned by anyone else is never written (S3 answers 403).
//
// Objects carry Content-Type application/x-ndjson and Content-Encoding
// gzip; the caller writes gzip data. No server-side encryption header is
// sent by default, so the bucket's default encryption (SSE-S3 or SSE-KMS)
// applies. With --kms-key-id the SSE-KMS headers go on PutObject and
// CreateMultipartUpload only: S3 rejects them on UploadPart and
// CompleteMultipartUpload. Bodies carry their CRC32 checksum in a header,
// computed before the request (S3 refuses a body that does not match it),
// and parts are completed with their checksums.
//
// # Objects and memory
//
// An ObjectWriter buffers up to one part (--part-size, default 16 MiB; the
// buffer grows as needed, so small objects stay small). An object that fits
// is one PutObject; a larger one becomes a multipart upload whose parts are
// uploaded as they fill, so memory per object is one part whatever its
// size. A failed multipart upload is aborted, best effort: the bucket policy
// of the product grants only s3:PutObject, so AbortMultipartUpload is
// usually denied and the bucket's lifecycle rule for incomplete multipart
// uploads cleans up.
//
// # Retries and errors
//
// The SDK's standard retryer retries transient failures (5xx, SlowDown,
// resets, timeouts) with exponential backoff and jitter, at most 3 attempts
// and without a client-side retry quota; the exporter retries whole
// objects on its own slower schedule. Classify turns any failure into an
// *Error with a code (ACCESS_DENIED, NO_SUCH_BUCKET, NOT_FOUND,
// WRONG_REGION, KMS_ACCESS_DENIED, KMS_KEY_NOT_FOUND, SERVICE_CREDENTIALS,
// NETWORK, TLS, THROTTLED, SERVER_ERROR, TIMEOUT, INVALID_BUCKET, UNKNOWN),
// who must act (the customer or the operator), a message for the customer
// (what to fix in the bucket, its policy, owner, region or KMS key; or
// that the service is retrying), the operator's detail for the log (flags,
// network faults), and whether retrying soon can help. S3 answers
// AccessDenied both when the bucket policy does not grant the role and
// when the bucket has another owner, so that message names both causes.
// The client marks its credentials provider's failures (CredentialsError):
// the SDK reports them as a plain "get identity" error, which would
// otherwise read as an unknown failure.
//
// # Connection test
//
// TestConnection writes jupiterone/.connection-test exactly as an export
// would (expected owner, TLS, KMS key), which is what the settings page's
// Test Connection button runs.
package s3dest
