package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// TestBucketPolicyScopes: the bucket-policy endpoint serves the product's
// policy by default and, with scope=account, the policy scoped to the
// account's folder (or to each of accounts) plus the connection test's
// key; GET of the settings shows both for the saved bucket. Bad scopes
// and account lists are 422 naming the parameter.
func TestBucketPolicyScopes(t *testing.T) {
	e := newEnv(t, withStreaming(&streamStub{}, nil))
	admin := e.newAccount(t, acct)
	base := "/api/v1/accounts/" + acct + "/data-streaming"
	policy := func(query string) s3bucket.Policy {
		t.Helper()
		r := e.rest(t, admin, "GET", base+"/bucket-policy"+query, nil)
		wantStatus(t, r, http.StatusOK)
		var p s3bucket.Policy
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	resources := func(p s3bucket.Policy) string {
		var rs []string
		for _, s := range p.Statement {
			rs = append(rs, s.Resource)
		}
		return strings.Join(rs, " ")
	}
	for _, q := range []string{"?bucket=customer-bucket", "?bucket=customer-bucket&scope=all"} {
		if got := resources(policy(q)); got != "arn:aws:s3:::customer-bucket/jupiterone/*" {
			t.Errorf("%s: resources %s, want the product's jupiterone/*", q, got)
		}
	}
	if got, want := resources(policy("?bucket=customer-bucket&scope=account")),
		"arn:aws:s3:::customer-bucket/jupiterone/.connection-test arn:aws:s3:::customer-bucket/jupiterone/graph/cdc/accountId=acme/*"; got != want {
		t.Errorf("scope=account: resources %s, want %s", got, want)
	}
	if got, want := resources(policy("?scope=account&accounts=acme,acme-eu")),
		"arn:aws:s3:::<BUCKET_NAME>/jupiterone/.connection-test arn:aws:s3:::<BUCKET_NAME>/jupiterone/graph/cdc/accountId=acme/* arn:aws:s3:::<BUCKET_NAME>/jupiterone/graph/cdc/accountId=acme-eu/*"; got != want {
		t.Errorf("scope=account&accounts: resources %s, want %s", got, want)
	}
	p := policy("?scope=account")
	for _, s := range p.Statement {
		if s.Action != "s3:PutObject" || s.Condition["Bool"]["aws:SecureTransport"] != "true" ||
			s.Principal["AWS"] != "arn:aws:iam::111122223333:role/jupiterone-data-streaming" {
			t.Errorf("statement %+v is not write-only over TLS for the role", s)
		}
	}

	for _, tc := range []struct{ query, mention string }{
		{"?scope=everything", `scope: "everything" is not a policy scope`},
		{"?accounts=acme", "accounts: names the accounts of the policy scoped to their folders: add scope=account"},
		{"?scope=account&accounts=acme,../etc", "accounts: "},
		{"?scope=account&accounts=,", "accounts: no account id given"},
		{"?scope=account&bucket=Bad_Bucket", "Bad_Bucket"},
	} {
		wantError(t, e.rest(t, admin, "GET", base+"/bucket-policy"+tc.query, nil), http.StatusUnprocessableEntity, "INVALID_SETTINGS", tc.mention)
	}

	// The settings show both policies.
	r := e.rest(t, admin, "GET", base, nil)
	wantStatus(t, r, http.StatusOK)
	var view struct {
		BucketPolicy, AccountBucketPolicy s3bucket.Policy
	}
	if err := json.Unmarshal(r.Body, &view); err != nil {
		t.Fatal(err)
	}
	if got := resources(view.BucketPolicy); got != "arn:aws:s3:::<BUCKET_NAME>/jupiterone/*" {
		t.Errorf("bucketPolicy resources %s", got)
	}
	if got := resources(view.AccountBucketPolicy); got != "arn:aws:s3:::<BUCKET_NAME>/jupiterone/.connection-test arn:aws:s3:::<BUCKET_NAME>/jupiterone/graph/cdc/accountId=acme/*" {
		t.Errorf("accountBucketPolicy resources %s", got)
	}
}
