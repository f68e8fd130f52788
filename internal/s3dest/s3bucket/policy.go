package s3bucket

import "encoding/json"

// RoleName is the IAM role j1ds writes as, the same for every deployment;
// the bucket policy grants it s3:PutObject on jupiterone/*.
const RoleName = "jupiterone-data-streaming"

// BucketPlaceholder stands for the bucket until one is given.
const BucketPlaceholder = "<BUCKET_NAME>"

// Policy is an S3 bucket policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a bucket policy.
type Statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    string                       `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition"`
}

// BucketPolicy returns the policy a customer applies to their bucket: the
// role jupiterone-data-streaming of the operator's AWS account may
// s3:PutObject (which covers every multipart step) under jupiterone/ and
// nothing else, only over TLS. An empty bucket gives <BUCKET_NAME>.
func BucketPolicy(platformAccountID, bucket string) Policy {
	if bucket == "" {
		bucket = BucketPlaceholder
	}
	return Policy{
		Version: "2012-10-17",
		Statement: []Statement{{
			Sid:       "JupiterOneDataStreamingWrite",
			Effect:    "Allow",
			Principal: map[string]string{"AWS": "arn:aws:iam::" + platformAccountID + ":role/" + RoleName},
			Action:    "s3:PutObject",
			Resource:  "arn:aws:s3:::" + bucket + "/jupiterone/*",
			Condition: map[string]map[string]string{"Bool": {"aws:SecureTransport": "true"}},
		}},
	}
}

// JSON renders the policy indented, ready to paste.
func (p Policy) JSON() string {
	b, _ := json.MarshalIndent(p, "", "  ")
	return string(b)
}
