// Package locals3 runs a real S3 server on loopback for tests and for
// `j1ds demo`: versitygw v1.8.0 (Apache-2.0) with its posix backend, its
// internal IAM and TLS from a certificate authority that the package makes
// for each server. It also offers Proxy, a TLS reverse proxy between a client
// and that server which records every request and can inject faults.
//
// # How the server is obtained
//
// Build compiles versitygw once from the tools module in tools/versitygw (its
// own go.mod, so versitygw's dependencies stay out of j1ds's) into
// os.UserCacheDir()/j1ds/versitygw-v1.8.0/versitygw. The first build takes
// a few minutes on a fresh machine; later calls reuse the binary. The
// environment variable J1DS_VERSITYGW, when set, names a binary to use
// instead and nothing is built.
//
// # How the server starts
//
// Start writes ca.pem, server.pem and server-key.pem into Options.Dir/certs
// and runs
//
//	versitygw --port 127.0.0.1:PORT --cert DIR/certs/server.pem --key DIR/certs/server-key.pem \
//	    --region REGION --iam-dir DIR/iam --iam-cache-disable --health /health \
//	    posix DIR/data
//
// with the root credentials in ROOT_ACCESS_KEY_ID and ROOT_SECRET_ACCESS_KEY
// and its output in DIR/versitygw.log. With no --admin-port the admin API
// (PATCH /create-user, PATCH /BUCKET/create with x-vgw-owner) is served on the
// S3 port; this package signs those calls itself with SigV4 rather than run
// `versitygw admin`, which would trust the CA only through SSL_CERT_FILE.
// Start returns once GET /health answers 200 over TLS.
//
// versitygw runs in a process group of its own, so that the Ctrl-C a
// terminal sends to its foreground group reaches only the process that
// started it, which stops the server with Close when nothing needs it any
// more (j1ds demo: after j1ds's final flush). On Linux the kernel still
// kills it when that process dies. ShellCommand gives the command line that
// starts versitygw again on the same directory, for a user who reads a
// kept bucket by hand.
//
// # What versitygw enforces, and how it answers
//
// Accounts made by CreateAccount have a 12-digit AWS account id as their
// access key, so that x-amz-expected-bucket-owner, which versitygw compares
// with the bucket owner's access key, behaves as on AWS. Bucket policies name
// principals by access key only, hence WriterPolicy. The answers below were
// observed against v1.8.0 with aws-sdk-go-v2; the tests pin them:
//
//   - wrong expected bucket owner, on PutObject and on each multipart step
//     (CreateMultipartUpload, UploadPart, CompleteMultipartUpload):
//     403 AccessDenied "Access Denied.". With a body of a MiB or more,
//     versitygw answers before reading the body and closes the connection,
//     so the sender sometimes sees "connection reset by peer" instead of
//     the 403: an owner mismatch on a large upload can look transient.
//   - no policy statement allows the call (no policy at all, a policy for
//     another prefix, a read by the write-only principal): the same
//     403 AccessDenied "Access Denied.". Owner mismatch and missing policy
//     cannot be told apart by the answer.
//   - once a bucket has a policy, versitygw evaluates only the policy: the
//     bucket owner itself gets 403 for what the policy does not grant it
//     (AWS would also honour the owner's IAM permissions). Read objects back
//     with RootClient.
//   - no such bucket: 404 NoSuchBucket "The specified bucket does not
//     exist."; HeadBucket: 404 with no body (the SDK reports NotFound).
//   - signed for another region: 400 AuthorizationHeaderMalformed "The
//     authorization header is malformed; the region \"us-east-1\" is wrong;
//     expecting \"eu-west-1\"" (both regions in double quotes), and no
//     x-amz-bucket-region header; HeadBucket gets 400 with no body (the SDK
//     reports BadRequest "Bad Request").
//   - PutObject over plain HTTP to a bucket whose policy requires
//     aws:SecureTransport: 403 AccessDenied "Access Denied." (the condition
//     works; Options.PlainHTTP lets a test show it).
//   - plain HTTP sent to the TLS port: no HTTP answer; the connection is
//     closed or reset.
//   - wrong secret: 403 SignatureDoesNotMatch; unknown access key: 403
//     InvalidAccessKeyId.
//   - a body the SDK cannot seek (an io.Pipe) with ContentLength set is sent
//     chunked with content-length signed, and versitygw answers 403
//     SignatureDoesNotMatch: give PutObject and UploadPart an io.ReadSeeker.
package locals3
