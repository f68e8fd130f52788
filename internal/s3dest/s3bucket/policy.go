package s3bucket

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/j1ds/j1ds/internal/accounts"
)

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

// AccountPrefix is the folder of a j1ds account's objects in a bucket:
// every object the exporter writes for the account has a key under it.
func AccountPrefix(account string) string {
	return "jupiterone/graph/cdc/accountId=" + account + "/"
}

// MaxPolicyAccounts bounds the accounts of one AccountBucketPolicy: an S3
// bucket policy holds at most 20 KB, and each account's statement takes up
// to 580 bytes as JSON renders it.
const MaxPolicyAccounts = 32

// ParseAccounts reads the comma-separated j1ds account ids a scoped
// policy is for: at least one, at most MaxPolicyAccounts, each a valid
// account id. The error says what is wrong with the list.
func ParseAccounts(list string) ([]string, error) {
	var ids []string
	for _, id := range strings.Split(list, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if err := accounts.ValidateID(id); err != nil {
			return nil, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	switch {
	case len(ids) == 0:
		return nil, fmt.Errorf("no account id given: name the j1ds account ids to grant, separated by commas")
	case len(ids) > MaxPolicyAccounts:
		return nil, fmt.Errorf("%d account ids, more than the %d one bucket policy can grant within the 20 KB S3 allows: split the accounts among buckets, or use the product's policy", len(ids), MaxPolicyAccounts)
	}
	return ids, nil
}

// AccountBucketPolicy returns the bucket policy scoped to the j1ds accounts
// given (at least one, validated by the caller): the same role, action and
// TLS condition as BucketPolicy, but one statement per account granting
// only its folder (AccountPrefix), and one granting the connection test's
// key (ConnectionTestKey). A tenant of j1ds who names this bucket in its
// own settings then cannot write to it: its folder is not granted. An
// empty bucket gives <BUCKET_NAME>.
func AccountBucketPolicy(platformAccountID, bucket string, accounts []string) Policy {
	if bucket == "" {
		bucket = BucketPlaceholder
	}
	stmt := func(sid, key string) Statement {
		return Statement{
			Sid:       sid,
			Effect:    "Allow",
			Principal: map[string]string{"AWS": "arn:aws:iam::" + platformAccountID + ":role/" + RoleName},
			Action:    "s3:PutObject",
			Resource:  "arn:aws:s3:::" + bucket + "/" + key,
			Condition: map[string]map[string]string{"Bool": {"aws:SecureTransport": "true"}},
		}
	}
	p := Policy{Version: "2012-10-17", Statement: []Statement{stmt("JupiterOneDataStreamingConnectionTest", ConnectionTestKey)}}
	seen, sids := map[string]bool{}, map[string]bool{}
	for _, a := range accounts {
		if seen[a] {
			continue
		}
		seen[a] = true
		sid := accountSid(a)
		for n := 2; sids[sid]; n++ {
			sid = accountSid(a) + "N" + strconv.Itoa(n)
		}
		sids[sid] = true
		p.Statement = append(p.Statement, stmt(sid, AccountPrefix(a)+"*"))
	}
	return p
}

// accountSid names an account's statement. A Sid holds only letters and
// digits, so the '-' and '_' of an account id are left out; the caller
// tells apart two accounts that then read the same.
func accountSid(account string) string {
	sid := []byte("JupiterOneDataStreamingAccount")
	for i := 0; i < len(account); i++ {
		if c := account[i]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			sid = append(sid, c)
		}
	}
	return string(sid)
}

// JSON renders the policy indented, ready to paste.
func (p Policy) JSON() string {
	b, _ := json.MarshalIndent(p, "", "  ")
	return string(b)
}
