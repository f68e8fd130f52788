package s3bucket

import (
	"fmt"
	"strings"
)

// ConnectionTestKey is the object Test Connection writes.
const ConnectionTestKey = "jupiterone/.connection-test"

// Target is one customer's destination.
type Target struct {
	// Bucket is the bucket name.
	Bucket string
	// Owner is the customer's 12-digit AWS account id. It is sent as the
	// expected bucket owner on every request, so a bucket of that name
	// owned by anyone else is never written.
	Owner string
}

// String returns the target as the exporter carries it, opaque:
// the bucket name and the owner, separated by a slash (neither contains
// one). ParseTarget reads it back.
func (t Target) String() string { return t.Bucket + "/" + t.Owner }

// ParseTarget reads a target written by Target.String and validates it.
func ParseTarget(s string) (Target, error) {
	bucket, owner, ok := strings.Cut(s, "/")
	if !ok {
		return Target{}, fmt.Errorf("target %q is not bucket/owner", s)
	}
	t := Target{Bucket: bucket, Owner: owner}
	return t, t.Validate()
}

// Validate checks the bucket name against S3's naming rules for general
// purpose buckets and the owner against the 12-digit account id format.
// Errors name the field (bucketName, awsAccountId) and say what is wrong.
func (t Target) Validate() error {
	if err := ValidateBucketName(t.Bucket); err != nil {
		return err
	}
	return ValidateAWSAccountID(t.Owner)
}
