package e2e

// The bucket policy scoped to the account, on the real S3 server of the
// tests: a tenant who names another customer's bucket and AWS account id in
// its own settings gets the connection test through (its key is granted to
// every account) and enables streaming, but none of its objects land and
// its status shows the access-denied error; the account the policy names
// streams as before.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// versitygwPolicy is a policy j1ds serves, made fit for versitygw, which
// names principals by access key where AWS names the role: the principal
// of every statement becomes the writer's access key, and nothing else
// changes.
func versitygwPolicy(t *testing.T, p s3bucket.Policy) string {
	t.Helper()
	for i := range p.Statement {
		if p.Statement[i].Principal["AWS"] != "arn:aws:iam::"+s3Writer+":role/"+s3bucket.RoleName {
			t.Fatalf("statement %d names %v, not the role of the operator's account", i, p.Statement[i].Principal)
		}
		p.Statement[i].Principal = map[string]string{"AWS": s3Writer}
	}
	return p.JSON()
}

// TestScopedPolicyRefusesAnotherAccount: the bucket of acme's customer
// carries the policy scoped to acme, as GET .../bucket-policy?scope=account
// serves it. globex enables streaming into the same bucket with the same
// owner id; acme's changes land, globex's never do, and globex's status
// shows ACCESS_DENIED naming the bucket policy.
func TestScopedPolicyRefusesAnotherAccount(t *testing.T) {
	t.Parallel()
	const bucket = "scoped-bucket"
	e := startS3(t, "")
	j := startServe(t, streamConfig(t, e))
	acme := j.account(t, "acme", true)
	globex := j.account(t, "globex", true)

	// The policy as acme's administrator gets it from the API.
	var served s3bucket.Policy
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath("acme")+"/bucket-policy?scope=account&bucket="+bucket, acme, nil), &served)
	if len(served.Statement) != 2 || !strings.HasSuffix(served.Statement[1].Resource, "/jupiterone/graph/cdc/accountId=acme/*") {
		t.Fatalf("the scoped policy served for acme: %s", served.JSON())
	}
	e.bucket(t, bucket, s3Owner, versitygwPolicy(t, served))

	j.enable(t, acme, "acme", bucket, s3Owner)
	// The connection test's key is granted to every account: globex's
	// test passes and it enables, as an attacker who knows the bucket
	// and its owner would.
	j.enable(t, globex, "globex", bucket, s3Owner)

	a := j.create(t, acme, "acme", "entities", entity("acme-host-0001", "test_host", []string{"Host"}, "name", "acme's"))
	j.create(t, globex, "globex", "entities", entity("globex-host-0001", "test_host", []string{"Host"}, "name", "globex's"))

	waitFor(t, 60*time.Second, "acme's change in the bucket", func() bool { return len(e.keys(t, bucket, accountPrefix("acme"))) > 0 })
	compareRecords(t, "acme's objects", lines(e.objects(t, bucket, "acme")), []write{a})

	waitFor(t, 60*time.Second, "globex's export to fail", func() bool {
		st := j.state(t, globex, "globex")
		return st.Status.LastError != nil && st.Status.Failures > 0
	})
	st := j.state(t, globex, "globex")
	if p := st.Status.LastError; p.Code != "ACCESS_DENIED" || !strings.Contains(p.Message, "bucket policy") || !strings.Contains(p.Message, bucket) {
		t.Errorf("globex's last error: %+v, want ACCESS_DENIED naming the bucket policy and %s", p, bucket)
	}
	if st.Status.ObjectsExported != 0 {
		t.Errorf("globex's status counts %d objects exported, want 0", st.Status.ObjectsExported)
	}
	// globex's writes reached S3 and were refused there.
	reqs := exportRequests(e.proxy, "globex")
	if len(reqs) == 0 {
		t.Fatal("globex's export never reached S3: the test shows nothing")
	}
	for _, r := range reqs {
		if r.Status != http.StatusForbidden {
			t.Errorf("globex's %s %s answered %d, want 403", r.Method, r.Path, r.Status)
		}
	}
	if keys := e.keys(t, bucket, accountPrefix("globex")); len(keys) != 0 {
		t.Errorf("globex's objects landed in acme's customer's bucket: %q", keys)
	}
	// Nothing of globex's anywhere in the bucket, beyond the connection
	// test's object.
	for _, k := range e.keys(t, bucket, "") {
		if !strings.HasPrefix(k, accountPrefix("acme")) && k != s3bucket.ConnectionTestKey {
			t.Errorf("the bucket holds %s", k)
		}
	}
	if o := e.get(t, bucket, s3bucket.ConnectionTestKey); len(o.Lines) == 0 || !json.Valid(o.Lines[0]) {
		t.Errorf("the connection test's object: %+v", o)
	}
}
