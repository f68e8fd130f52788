package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestSettingsPageObjectSuffix: an administrator ticks "Name objects
// .jsonl.gz" on the settings page of a streaming account and saves, with
// no new connection test; the choice persists (a reload shows it ticked,
// the API returns it), the object before it in versitygw ends in .jsonl
// and the next one in .jsonl.gz, and j1ds verify reads both clean.
func TestSettingsPageObjectSuffix(t *testing.T) {
	browser := startBrowser(t)
	e := startS3(t, "")
	j := startServe(t, streamConfig(t, e))
	t.Logf("screenshots of each state: %s", screenshotDir(t))
	const account = "page-suffix"
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)
	before := j.create(t, key, account, "entities", entity("suffix-user-before", "test_user", []string{"User"}, "name", "Before"))
	st := waitExported(t, j, key, account, 1)
	if !strings.HasSuffix(st.Status.LastExportKey, ".jsonl") {
		t.Fatalf("the object before the choice is %s, want the default .jsonl", st.Status.LastExportKey)
	}

	tb := openTab(t, browser, j.url, 1280, 900)
	signInAdmin(tb, account, key)
	if evalJS[bool](tb, `document.getElementById('gzname').checked`) {
		t.Fatalf("the .jsonl.gz box is ticked for an account that chose nothing")
	}
	label := evalJS[string](tb, `document.querySelector('label[for="gzname"]').textContent`)
	hint := tb.text("gzname-hint")
	if !strings.Contains(label, ".jsonl.gz") || !strings.Contains(hint, "Athena") || !strings.Contains(hint, "DuckDB") || !strings.Contains(hint, "pandas") ||
		!strings.Contains(hint, "next object") {
		t.Errorf("the choice reads %q, its hint %q", label, hint)
	}
	tests := len(e.proxy.Requests()) // a connection test would write to the bucket
	tb.click("gzname")
	checkSaveState(tb, "box ticked", true, "")
	tb.shot("suffix-ticked")
	if ok, words := save(tb); !ok || !strings.Contains(words, ".jsonl.gz") {
		t.Fatalf("save of the choice: ok=%v %q", ok, words)
	}
	tb.shot("suffix-saved")
	for _, r := range e.proxy.Requests()[tests:] {
		if strings.Contains(r.Path, ".connection-test") {
			t.Errorf("choosing the suffix ran a connection test: %+v", r)
		}
	}

	// It persists: a fresh load of the page shows it, and so does the API.
	tb.open()
	tb.waitJS("the settings to load", uiTimeout, `!document.getElementById('app').hidden && document.getElementById('bucket').value !== ''`)
	if !evalJS[bool](tb, `document.getElementById('gzname').checked`) {
		t.Fatalf("after a reload the .jsonl.gz box is not ticked\npage: %s", tb.describe())
	}
	var v struct {
		ObjectSuffix string `json:"objectSuffix"`
	}
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account), key, nil), &v)
	if v.ObjectSuffix != ".jsonl.gz" {
		t.Fatalf("the API says objectSuffix %q after the save", v.ObjectSuffix)
	}

	after := j.create(t, key, account, "entities", entity("suffix-user-after", "test_user", []string{"User"}, "name", "After"))
	waitExported(t, j, key, account, 2)
	objs := e.objects(t, streamBucket, account)
	if len(objs) != 2 || !strings.HasSuffix(objs[0].Key, "Z.jsonl") || !strings.HasSuffix(objs[1].Key, "Z.jsonl.gz") {
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
		}
		t.Fatalf("objects %q, want one ending in .jsonl, then one in .jsonl.gz", keys)
	}
	compareRecords(t, "before the choice", objs[0].Lines, []write{before})
	compareRecords(t, "after the choice", objs[1].Lines, []write{after})

	// The customer's check reads both names.
	t.Setenv("AWS_ACCESS_KEY_ID", e.srv.RootAccess)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.srv.RootSecret)
	t.Setenv("AWS_CA_BUNDLE", e.srv.CAFile)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("J1DS_KEY", key)
	if code, out, stderr := runVerifyCLI(t, "--account", account, "--bucket", streamBucket, "--s3-endpoint", e.srv.Endpoint, "--url", j.url); code != 0 {
		t.Fatalf("verify of the two objects: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestSettingsPagePolicyPlaceholder: when the operator did not configure
// the service's AWS account (no --platform-aws-account-id, and STS did not
// answer), the policy names <PLATFORM_AWS_ACCOUNT_ID>: the page warns in
// words that name the flag, flags the policy and turns Copy policy off, for
// both policy scopes. With the account configured there is no warning.
func TestSettingsPagePolicyPlaceholder(t *testing.T) {
	browser := startBrowser(t)
	e := startS3(t, "")
	cfg := streamConfig(t, e)
	cfg.PlatformAccountID = "" // versitygw has no STS: the placeholder stays
	j := startServe(t, cfg)
	t.Logf("screenshots of each state: %s", screenshotDir(t))
	const account = "page-placeholder"
	key := j.account(t, account, true)
	tb := openTab(t, browser, j.url, 1280, 900)
	signInAdmin(tb, account, key)
	tb.waitJS("the policy to show", uiTimeout, `document.getElementById('policy').textContent !== ''`)
	for _, scope := range []string{"policy-all", "policy-account"} {
		tb.click(scope)
		if !strings.Contains(tb.text("policy"), "<PLATFORM_AWS_ACCOUNT_ID>") {
			t.Fatalf("%s: the policy does not hold the placeholder; this test needs the operator's account unconfigured:\n%s", scope, tb.text("policy"))
		}
		warning := tb.text("policy-warning")
		switch {
		case !tb.visible("policy-warning"):
			t.Errorf("%s: no warning beside a policy naming <PLATFORM_AWS_ACCOUNT_ID>\npage: %s", scope, tb.describe())
		case !strings.Contains(warning, "Do not apply") || !strings.Contains(warning, "--platform-aws-account-id") ||
			!strings.Contains(warning, "<PLATFORM_AWS_ACCOUNT_ID>") || !strings.Contains(warning, "operator"):
			t.Errorf("%s: the warning reads %q", scope, warning)
		}
		if tb.attr("policy-warning", "role") != "alert" {
			t.Errorf("%s: the warning is not announced (role=%q)", scope, tb.attr("policy-warning", "role"))
		}
		if !tb.disabled("copy") {
			t.Errorf("%s: Copy policy is enabled for a policy that names no account", scope)
		}
		tb.shot("placeholder-" + scope)
	}

	// Configured: no warning, Copy policy on.
	ok := startServe(t, streamConfig(t, e))
	okKey := ok.account(t, account, true)
	tb2 := openTab(t, browser, ok.url, 1280, 900)
	signInAdmin(tb2, account, okKey)
	tb2.waitJS("the policy to show", uiTimeout, `document.getElementById('policy').textContent !== ''`)
	if strings.Contains(tb2.text("policy"), "<PLATFORM_AWS_ACCOUNT_ID>") || tb2.visible("policy-warning") || tb2.disabled("copy") {
		t.Errorf("with --platform-aws-account-id set: warning shown %v, copy disabled %v\n%s", tb2.visible("policy-warning"), tb2.disabled("copy"), tb2.text("policy"))
	}
}
