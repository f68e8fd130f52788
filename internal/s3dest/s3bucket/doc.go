// Package s3bucket holds what j1ds knows of a customer's S3 bucket without
// talking to S3: the naming rules of buckets and AWS account ids, the
// target an account streams to (bucket and owner) and its opaque form the
// exporter carries, the IAM role j1ds writes as, the bucket policy
// customers apply, and the key of the connection test.
//
// It is the half of s3dest that imports no AWS SDK, so that settings and
// storage backends can use its rules without linking the SDK; s3dest, the
// writer, builds on it.
package s3bucket
