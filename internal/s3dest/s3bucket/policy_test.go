package s3bucket_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// TestBucketPolicies pins both policies as a customer pastes them:
// the product's (all of jupiterone/) and the one scoped to two accounts
// (a statement per account's folder, one for the connection test's key),
// each write-only over TLS for the same role. Golden files in testdata.
func TestBucketPolicies(t *testing.T) {
	for _, tc := range []struct {
		file string
		p    s3bucket.Policy
	}{
		{"policy-product.json", s3bucket.BucketPolicy("123456789012", "customer-bucket")},
		{"policy-accounts.json", s3bucket.AccountBucketPolicy("123456789012", "customer-bucket", []string{"acme", "globex-2", "acme"})},
		{"policy-accounts-placeholder.json", s3bucket.AccountBucketPolicy("123456789012", "", []string{"acme"})},
	} {
		t.Run(tc.file, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.p.JSON() + "\n"; got != string(want) {
				t.Errorf("policy:\n%s\nwant (testdata/%s):\n%s", got, tc.file, want)
			}
		})
	}
}

// TestAccountPolicySids: statement ids are letters and digits, and
// distinct even when two account ids differ only in '-' and '_' or one
// reads like another's disambiguated id.
func TestAccountPolicySids(t *testing.T) {
	p := s3bucket.AccountBucketPolicy("123456789012", "b-bucket", []string{"a-b", "ab", "a_b", "abN2", "AB"})
	seen := map[string]bool{}
	for _, s := range p.Statement {
		for _, c := range s.Sid {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				t.Errorf("Sid %q holds %q", s.Sid, c)
			}
		}
		if seen[s.Sid] {
			t.Errorf("Sid %q appears twice", s.Sid)
		}
		seen[s.Sid] = true
	}
	if len(p.Statement) != 6 {
		t.Errorf("%d statements, want the connection test's and 5 accounts'", len(p.Statement))
	}
}

// TestAccountPrefixHoldsTheExportersKeys: the folder the scoped policy
// grants holds every key the exporter writes for the account, and no
// other account's.
func TestAccountPrefixHoldsTheExportersKeys(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	for _, suffix := range []string{".jsonl.gz", ".jsonl"} {
		key := exporter.ObjectKey("acme", at, suffix)
		if !strings.HasPrefix(key, s3bucket.AccountPrefix("acme")) {
			t.Errorf("key %s is not under %s", key, s3bucket.AccountPrefix("acme"))
		}
		if strings.HasPrefix(exporter.ObjectKey("acme-2", at, suffix), s3bucket.AccountPrefix("acme")) {
			t.Errorf("account acme-2's key is under acme's folder")
		}
	}
}

// TestAccountPolicyFitsS3: a policy of MaxPolicyAccounts accounts of the
// longest ids, for a bucket of the longest name, stays under the 20 KB S3
// allows a bucket policy, even as indented for pasting.
func TestAccountPolicyFitsS3(t *testing.T) {
	var ids []string
	for i := range s3bucket.MaxPolicyAccounts {
		ids = append(ids, strings.Repeat("a", 62)+string(rune('A'+i/26))+string(rune('a'+i%26)))
	}
	p := s3bucket.AccountBucketPolicy("123456789012", strings.Repeat("b", 63), ids)
	if n := len(p.JSON()); n > 20*1024 {
		t.Errorf("policy of %d accounts is %d bytes, more than the 20 KB of S3", len(ids), n)
	}
	if len(p.Statement) != s3bucket.MaxPolicyAccounts+1 {
		t.Errorf("%d statements, want %d", len(p.Statement), s3bucket.MaxPolicyAccounts+1)
	}
}

// TestParseAccounts: the account list of a scoped policy.
func TestParseAccounts(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{"acme", "[acme]", ""},
		{" acme , globex-2,acme,", "[acme globex-2]", ""},
		{"", "", "no account id given"},
		{" , ", "", "no account id given"},
		{"acme,../x", "", "account id"},
		{"acme,a/b", "", "account id"},
		{many(s3bucket.MaxPolicyAccounts + 1), "", "33 account ids, more than the 32"},
		{many(s3bucket.MaxPolicyAccounts), fmt.Sprint(strings.Split(many(s3bucket.MaxPolicyAccounts), ",")), ""},
	} {
		ids, err := s3bucket.ParseAccounts(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseAccounts(%q): %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseAccounts(%q): error %v, want one with %q", tc.in, err, tc.err)
		case tc.err == "" && fmt.Sprint(ids) != tc.want:
			t.Errorf("ParseAccounts(%q) = %v, want %s", tc.in, ids, tc.want)
		}
	}
}

func many(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("account-%02d", i)
	}
	return strings.Join(ids, ",")
}
