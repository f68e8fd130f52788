package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// policyOutput runs j1ds policy with args and returns what it printed.
func policyOutput(t *testing.T, args ...string) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	runErr := runPolicy(context.Background(), args)
	os.Stdout = stdout
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out), runErr
}

// TestPolicyCommand: j1ds policy prints the product's policy, and with
// --account the policy scoped to those accounts' folders, a statement
// each; a bad account id is a usage error naming the flag.
func TestPolicyCommand(t *testing.T) {
	out, err := policyOutput(t, "--bucket", "customer-bucket", "--platform-aws-account-id", "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	if want := s3bucket.BucketPolicy("123456789012", "customer-bucket").JSON() + "\n"; out != want {
		t.Errorf("product policy:\n%s\nwant\n%s", out, want)
	}

	out, err = policyOutput(t, "--bucket", "customer-bucket", "--platform-aws-account-id", "123456789012", "--account", "acme,globex")
	if err != nil {
		t.Fatal(err)
	}
	var p s3bucket.Policy
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("output is not a policy: %v\n%s", err, out)
	}
	var resources []string
	for _, s := range p.Statement {
		resources = append(resources, s.Resource)
		if s.Action != "s3:PutObject" || s.Condition["Bool"]["aws:SecureTransport"] != "true" ||
			s.Principal["AWS"] != "arn:aws:iam::123456789012:role/jupiterone-data-streaming" {
			t.Errorf("statement %+v is not write-only over TLS for the role", s)
		}
	}
	want := []string{
		"arn:aws:s3:::customer-bucket/jupiterone/.connection-test",
		"arn:aws:s3:::customer-bucket/jupiterone/graph/cdc/accountId=acme/*",
		"arn:aws:s3:::customer-bucket/jupiterone/graph/cdc/accountId=globex/*",
	}
	if strings.Join(resources, " ") != strings.Join(want, " ") {
		t.Errorf("resources %q, want %q", resources, want)
	}

	for _, bad := range []string{"acme,a/b", ","} {
		_, err = policyOutput(t, "--platform-aws-account-id", "123456789012", "--account", bad)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--account") {
			t.Errorf("--account %q: %v, want a usage error naming --account", bad, err)
		}
	}
}
