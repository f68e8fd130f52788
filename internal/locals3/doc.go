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
// Start writes ca.pem, server.pem and server-key.pem into Options.Dir and runs
//
//	versitygw --port 127.0.0.1:PORT --cert DIR/certs/server.pem --key DIR/certs/server-key.pem \
//	    --region REGION --iam-dir DIR/iam --iam-cache-disable --health /health --quiet \
//	    posix DIR/data
//
// with the root credentials in ROOT_ACCESS_KEY_ID and ROOT_SECRET_ACCESS_KEY.
// With no --admin-port the admin API (create-user, create-bucket) is served
// on the S3 port; this package signs those calls itself with SigV4 instead
// of running `versitygw admin`, which would trust the CA only through
// SSL_CERT_FILE. Start returns once GET /health answers 200 over TLS.
//
// # What versitygw enforces, and how it answers
//
// Accounts made by CreateAccount have a 12-digit AWS account id as their
// access key, so that the x-amz-expected-bucket-owner header, which
// versitygw compares with the bucket owner's access key, behaves as on AWS.
// Bucket policies name principals by access key only, hence WriterPolicy.
// The answers below were observed against v1.8.0 by this package's tests
// (TestErrorAnswers pins them):
//
//   - wrong expected bucket owner, on PutObject and on every multipart step:
//     403 AccessDenied "Access Denied.";
//   - no policy statement grants the caller (no policy, another prefix, or
//     a read by a write-only principal): 403 AccessDenied "Access Denied.";
//     the two cases cannot be told apart by the answer;
//   - no such bucket: 404 NoSuchBucket "The specified bucket does not exist";
//   - a request signed for another region: 400 AuthorizationHeaderMalformed
//     "The authorization header is malformed; the region 'us-east-1' is wrong;
//     expecting 'eu-west-1'." with no x-amz-bucket-region header; see
//     RegionMismatchAnswer;
//   - a request over plain HTTP to a policy that requires
//     aws:SecureTransport: 403 AccessDenied "Access Denied.";
//   - plain HTTP sent to the TLS port: no HTTP answer, the connection is
//     closed (clients see EOF or "connection reset by peer").
package locals3
