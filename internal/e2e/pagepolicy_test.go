package e2e

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
)

// TestSettingsPagePolicyChoice: the S3 Bucket Policy panel offers the
// product's policy (all of jupiterone/, the default) and the policy scoped
// to the account's folder (recommended); choosing one shows it, with the
// bucket typed in the form, and its words say what it grants.
func TestSettingsPagePolicyChoice(t *testing.T) {
	browser := startBrowser(t)
	e := startS3(t, "")
	j := startServe(t, streamConfig(t, e))
	const account = "page-policy"
	key := j.account(t, account, true)
	tb := openTab(t, browser, j.url, 1280, 900)
	signInAdmin(tb, account, key)

	shows := func(step string, want s3bucket.Policy) {
		t.Helper()
		text := tb.text("policy")
		var got, w any
		if err := json.Unmarshal([]byte(text), &got); err != nil {
			t.Fatalf("%s: the policy panel does not hold JSON: %v\n%s", step, err, text)
		}
		if err := json.Unmarshal([]byte(want.JSON()), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: the policy panel shows\n%s\nwant\n%s", step, text, want.JSON())
		}
	}
	labels := evalJS[[]string](tb, `['policy-all', 'policy-account'].map((id) => document.querySelector('label[for="' + id + '"]').textContent)`)
	if !strings.Contains(labels[0], "jupiterone/") || !strings.Contains(labels[0], "product default") ||
		!strings.Contains(labels[1], "this account's folder") || !strings.Contains(labels[1], "recommended") {
		t.Errorf("the choices read %q", labels)
	}
	if got := evalJS[[]bool](tb, `[document.getElementById('policy-all').checked, document.getElementById('policy-account').checked]`); !reflect.DeepEqual(got, []bool{true, false}) {
		t.Errorf("checked at sign-in (all, account): %v, want the product default", got)
	}
	shows("at sign-in", s3bucket.BucketPolicy(s3Writer, ""))
	tb.shot("policy-product")

	tb.click("policy-account")
	shows("scoped, no bucket", s3bucket.AccountBucketPolicy(s3Writer, "", []string{account}))
	if h := tb.text("policy-hint"); !strings.Contains(h, "jupiterone/graph/cdc/accountId="+account+"/") || !strings.Contains(h, "jupiterone/.connection-test") || !strings.Contains(h, "cannot write") {
		t.Errorf("the hint of the scoped policy reads %q", h)
	}
	tb.typeInto("bucket", streamBucket)
	shows("scoped, bucket typed", s3bucket.AccountBucketPolicy(s3Writer, streamBucket, []string{account}))
	tb.shot("policy-account")

	tb.click("policy-all")
	shows("back to the product's", s3bucket.BucketPolicy(s3Writer, streamBucket))
	if h := tb.text("policy-hint"); !strings.Contains(h, "all of jupiterone/*") {
		t.Errorf("the hint of the product's policy reads %q", h)
	}
}
