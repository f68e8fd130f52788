package e2e

// Browser tests of Settings > Data Streaming: the system's headless
// Chromium (pagebrowser_test.go) drives the page that j1ds serves, against
// j1ds and a real versitygw started by the streaming harness
// (streamharness_test.go), following the product doc's "Enabling Data
// Streaming" steps. Every state is saved as a PNG in the directory the
// test logs.

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// secondBucket is another bucket of the owner with the right policy, to
// retarget to.
const secondBucket = "second-bucket"

func TestSettingsPage(t *testing.T) {
	browser := startBrowser(t)
	e := startS3(t, "")
	e.bucket(t, secondBucket, s3Owner, locals3.WriterPolicy(secondBucket, s3Writer))
	// A bucket whose policy lets the writer in, but under another prefix.
	e.bucket(t, "elsewhere-bucket", s3Owner, strings.Replace(locals3.WriterPolicy("elsewhere-bucket", s3Writer),
		"arn:aws:s3:::elsewhere-bucket/jupiterone/*", "arn:aws:s3:::elsewhere-bucket/exports/*", 1))
	j := startServe(t, streamConfig(t, e))
	t.Logf("screenshots of each state: %s", screenshotDir(t))

	t.Run("enable flow", func(t *testing.T) { testPageEnableFlow(t, browser, e, j) })
	t.Run("failing connection tests", func(t *testing.T) { testPageFailingTests(t, browser, j) })
	t.Run("disable and re-enable", func(t *testing.T) { testPageDisableReenable(t, browser, j) })
	t.Run("member and not entitled", func(t *testing.T) { testPageDenied(t, browser, j) })
	t.Run("keyboard only", func(t *testing.T) { testPageKeyboard(t, browser, j) })
	t.Run("narrow window", func(t *testing.T) { testPageNarrow(t, browser, j) })
}

// signIn opens the page and signs in with the account id and key.
func signIn(tb *tab, account, key string) {
	tb.t.Helper()
	tb.open()
	if !tb.visible("signin") {
		tb.t.Fatalf("the page does not start at sign-in\npage: %s", tb.describe())
	}
	tb.typeInto("signin-account", account)
	tb.typeInto("signin-key", key)
	tb.keys("\r")
	tb.waitJS("sign-in to end", uiTimeout, `!document.getElementById('app').hidden || !document.getElementById('denied').hidden || !document.getElementById('signin-error').hidden`)
}

// signInAdmin signs in and expects the settings form.
func signInAdmin(tb *tab, account, key string) {
	tb.t.Helper()
	signIn(tb, account, key)
	if !tb.visible("app") {
		tb.t.Fatalf("signed in as an administrator of %s, the settings are not shown\npage: %s", account, tb.describe())
	}
}

// statusRows reads the status panel: each term and its description.
func statusRows(tb *tab) map[string]string {
	tb.t.Helper()
	return evalJS[map[string]string](tb, `Object.fromEntries([...document.querySelectorAll('#status dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]))`)
}

// checkSaveState checks whether Save is enabled and, when not, that the
// hint says why in words containing why.
func checkSaveState(tb *tab, step string, enabled bool, why string) {
	tb.t.Helper()
	if got := !tb.disabled("save"); got != enabled {
		tb.t.Errorf("%s: Save enabled=%v, want %v\npage: %s", step, got, enabled, tb.describe())
	}
	if hint := tb.text("save-hint"); !strings.Contains(hint, why) {
		tb.t.Errorf("%s: the hint by Save says %q, want it to contain %q", step, hint, why)
	}
}

// checkPolicy checks that the S3 Bucket Policy panel shows the policy for
// bucket (the placeholder when "") with the operator's account and role.
func checkPolicy(tb *tab, step, bucket string) {
	tb.t.Helper()
	text := tb.text("policy")
	var got, want any
	if err := json.Unmarshal([]byte(text), &got); err != nil {
		tb.t.Errorf("%s: the policy panel does not hold JSON: %v\n%s", step, err, text)
		return
	}
	if err := json.Unmarshal([]byte(s3bucket.BucketPolicy(s3Writer, bucket).JSON()), &want); err != nil {
		tb.t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		tb.t.Errorf("%s: the policy panel shows\n%s\nwant\n%s", step, text, s3bucket.BucketPolicy(s3Writer, bucket).JSON())
	}
	if !strings.Contains(text, `"arn:aws:iam::`+s3Writer+`:role/jupiterone-data-streaming"`) {
		tb.t.Errorf("%s: the policy does not name the operator's role arn:aws:iam::%s:role/jupiterone-data-streaming:\n%s", step, s3Writer, text)
	}
}

// fieldError checks the validation message of an input: shown (with want
// in it) or not, tied to the input by aria-describedby, and aria-invalid
// set accordingly.
func fieldError(tb *tab, step, input, want string) {
	tb.t.Helper()
	errID := input + "-error"
	shown := tb.visible(errID)
	invalid := tb.attr(input, "aria-invalid")
	described := strings.Fields(tb.attr(input, "aria-describedby"))
	if !slices.Contains(described, errID) {
		tb.t.Errorf("%s: #%s is not tied to #%s: aria-describedby=%q", step, errID, input, described)
	}
	if want == "" {
		if shown || invalid != "" {
			tb.t.Errorf("%s: #%s shows an error %q (aria-invalid=%q), want none", step, input, tb.text(errID), invalid)
		}
		return
	}
	if !shown || !strings.Contains(tb.text(errID), want) {
		tb.t.Errorf("%s: #%s error shown=%v %q, want one containing %q", step, input, shown, tb.text(errID), want)
	}
	if invalid != "true" {
		tb.t.Errorf("%s: #%s has aria-invalid=%q, want true", step, input, invalid)
	}
}

// runTest clicks Test Connection and waits for its result; it returns
// whether it passed and the words shown.
func runTest(tb *tab) (bool, string) {
	tb.t.Helper()
	tb.click("test")
	tb.waitJS("the connection test result", uiTimeout, `(() => { const r = document.getElementById('test-result');
  return r.classList.contains('bad') || (r.classList.contains('ok') && r.textContent.includes('passed')); })()`)
	return evalJS[bool](tb, `document.getElementById('test-result').classList.contains('ok')`), tb.text("test-result")
}

// save clicks Save and waits for its result.
func save(tb *tab) (bool, string) {
	tb.t.Helper()
	evalJS[chromedp.Void](tb, `document.getElementById('save-result').replaceChildren()`)
	tb.click("save")
	tb.waitJS("the save result", uiTimeout, `document.getElementById('save-result').textContent !== ''`)
	return evalJS[bool](tb, `document.getElementById('save-result').classList.contains('ok')`), tb.text("save-result")
}

// pageLayout is where the two columns and the controls of the page are.
type pageLayout struct {
	MainLeft, MainRight, MainTop, MainBottom float64
	SideLeft, SideRight, SideTop, SideBottom float64
	ScrollWidth, InnerWidth                  float64
	Outside                                  []string
	// PolicyHidden: the policy panel hides part of the policy, to be
	// scrolled to.
	PolicyHidden bool
}

func layoutOf(tb *tab) pageLayout {
	tb.t.Helper()
	return evalJS[pageLayout](tb, `(() => {
  const r = (s) => document.querySelector(s).getBoundingClientRect();
  const m = r('.col-main'), s = r('.col-side');
  const outside = [...document.querySelectorAll('main input, main button, main label, main pre, main .card, main h1, main h2')]
    .filter((el) => el.getClientRects().length > 0)
    .filter((el) => { const b = el.getBoundingClientRect(); return b.left < -0.5 || b.right > innerWidth + 0.5; })
    .map((el) => el.id || el.className || el.tagName);
  return {MainLeft: m.left, MainRight: m.right, MainTop: m.top, MainBottom: m.bottom,
    SideLeft: s.left, SideRight: s.right, SideTop: s.top, SideBottom: s.bottom,
    ScrollWidth: document.documentElement.scrollWidth, InnerWidth: innerWidth, Outside: outside,
    PolicyHidden: (() => { const p = document.getElementById('policy'); return p.scrollWidth > p.clientWidth || p.scrollHeight > p.clientHeight; })()};
})()`)
}

// testPageEnableFlow follows the product doc's steps, one by one.
func testPageEnableFlow(t *testing.T, browser context.Context, e *s3Env, j *j1) {
	const account = "page-flow"
	key := j.account(t, account, true)
	tb := openTab(t, browser, j.url, 1280, 900)

	// Navigate to Settings > Data Streaming: the page asks to sign in.
	tb.open()
	if !tb.visible("signin") || tb.visible("app") {
		t.Fatalf("before sign-in the page shows more than the sign-in form\npage: %s", tb.describe())
	}
	if got := evalJS[string](tb, `document.querySelector('[aria-current=page]').textContent`); got != "Data Streaming" {
		t.Errorf("the breadcrumb's current page is %q", got)
	}
	tb.shot("sign-in")
	tb.typeInto("signin-account", account)
	tb.typeInto("signin-key", key)
	tb.keys("\r")
	tb.waitJS("the settings after sign-in", uiTimeout, `!document.getElementById('app').hidden`)

	// The key is in this tab's session storage only: not in a URL the page
	// loaded or requested, not in local storage, not in a cookie.
	if got := evalJS[string](tb, `sessionStorage.getItem('j1ds.key') || ''`); got != key {
		t.Errorf("session storage holds key %q, want the key signed in with", got)
	}
	if n := evalJS[int](tb, `localStorage.length`); n != 0 {
		t.Errorf("local storage holds %d items, want none", n)
	}
	urls := evalJS[[]string](tb, `[location.href, ...performance.getEntries().map((e) => e.name)]`)
	apiSeen := false
	for _, u := range urls {
		if strings.Contains(u, key) {
			t.Errorf("the key is in a URL: %s", u)
		}
		apiSeen = apiSeen || strings.Contains(u, streamingPath(account))
	}
	if !apiSeen {
		t.Errorf("no request of %s among the page's requests %q: the URL check saw nothing", streamingPath(account), urls)
	}
	if c := evalJS[string](tb, `document.cookie`); c != "" {
		t.Errorf("document.cookie = %q, want no cookie", c)
	}
	if cs := tb.cookies(j.url); len(cs) != 0 {
		t.Errorf("the browser holds %d cookies for j1ds (%s=...), want none", len(cs), cs[0].Name)
	}
	if v := evalJS[string](tb, `document.getElementById('signin-key').value`); v != "" {
		t.Errorf("the key field still holds the key after sign-in")
	}
	if got := tb.text("who-account"); got != account {
		t.Errorf("the header names account %q, want %s", got, account)
	}
	checkLabels(tb)
	tb.shot("signed-in")

	// Two columns: the form and status on the left, the panels on the
	// right.
	if l := layoutOf(tb); l.SideLeft < l.MainRight || l.ScrollWidth > l.InnerWidth || len(l.Outside) > 0 {
		t.Errorf("at 1280 px the Setup Instructions column is not on the right of the form, or the page scrolls sideways: %+v", l)
	} else if l.PolicyHidden {
		t.Error("the policy panel shows only part of the policy")
	}

	// Review the Setup Instructions panel: the required region.
	st := j.state(t, key, account)
	if st.RequiredRegion == "" {
		t.Fatal("the API names no required region")
	}
	if got := tb.text("required-region"); got != st.RequiredRegion {
		t.Errorf("Setup Instructions shows region %q, want %q", got, st.RequiredRegion)
	}
	if got := evalJS[string](tb, `document.querySelector('label[for=region] .region-name').textContent`); got != st.RequiredRegion {
		t.Errorf("the region confirmation names %q, want %q", got, st.RequiredRegion)
	}

	// The S3 Bucket Policy panel: the operator's account and role, and
	// <BUCKET_NAME> until a bucket is typed; a copy button.
	checkPolicy(tb, "before a bucket is typed", "")
	tb.click("copy")
	tb.waitJS("the copy button's answer", uiTimeout, `document.getElementById('copy-result').textContent !== ''`)

	// Save stays disabled until a test passes; while streaming is off and
	// Enable integration unchecked, there is nothing to save.
	checkSaveState(tb, "on arrival", false, "Enable integration")

	// Check Enable integration.
	tb.click("enabled")
	if !evalJS[bool](tb, `document.getElementById('enabled').checked`) {
		t.Fatal("clicking Enable integration did not check it")
	}
	checkSaveState(tb, "enabled, nothing typed", false, "Fix the bucket name")

	// Enter the S3 bucket name: errors appear as typed, and the policy
	// takes the name as typed.
	tb.typeInto("bucket", "Customer-Bucket")
	fieldError(tb, "uppercase bucket", "bucket", "lowercase")
	checkPolicy(tb, "with an invalid bucket name", "")
	tb.typeInto("bucket", "cus")
	fieldError(tb, "bucket cus", "bucket", "")
	checkPolicy(tb, "after typing cus", "cus")
	tb.keys("tomer-bucket")
	fieldError(tb, "bucket "+streamBucket, "bucket", "")
	checkPolicy(tb, "after typing "+streamBucket, streamBucket)
	if got := tb.attr("bucket", "aria-invalid"); got != "" {
		t.Errorf("a valid bucket has aria-invalid=%q", got)
	}

	// Enter the 12-digit AWS account id.
	tb.typeInto("awsaccount", s3Owner[:11])
	fieldError(tb, "11 digits", "awsaccount", "12 digits (11 so far)")
	tb.shot("invalid-account-id")
	tb.typeInto("awsaccount", "1111x")
	fieldError(tb, "a letter", "awsaccount", "digits only")
	tb.typeInto("awsaccount", s3Owner[:11])
	tb.keys(s3Owner[11:])
	fieldError(tb, "12 digits", "awsaccount", "")
	checkSaveState(tb, "region not confirmed", false, "required region")
	tb.typeInto("bucket", "Customer-Bucket")
	tb.shot("invalid-bucket")
	tb.typeInto("bucket", streamBucket)

	// Check the region confirmation.
	tb.click("region")
	checkSaveState(tb, "before Test Connection", false, "Run Test Connection")
	// Enter in a field submits the form; with Save disabled nothing is
	// saved.
	tb.click("bucket")
	tb.keys("\r")
	if got := tb.text("save-result"); got != "" {
		t.Errorf("Enter with Save disabled: the page says %q", got)
	}
	if st := j.state(t, key, account); st.Enabled {
		t.Fatal("Enter with Save disabled enabled streaming")
	}
	tb.shot("ready-to-test")

	// Click Test Connection: it passes, in words, and Save is enabled.
	ok, words := runTest(tb)
	if !ok || !strings.Contains(words, "Connection test passed") || !strings.Contains(words, streamBucket) {
		t.Fatalf("Test Connection of %s: ok=%v %q", streamBucket, ok, words)
	}
	if !slices.Contains(e.keys(t, streamBucket, "jupiterone/"), settingsConnectionTestKey) {
		t.Errorf("the passing test wrote no %s to %s", settingsConnectionTestKey, streamBucket)
	}
	checkSaveState(tb, "after a passing test", true, "")
	tb.shot("test-passed")

	// Editing the bucket disables Save again until a new test passes.
	tb.typeInto("bucket", secondBucket)
	checkSaveState(tb, "bucket edited after the test", false, "Run Test Connection")
	if got := tb.text("test-result"); got != "" {
		t.Errorf("the result of the test of another bucket still shows: %q", got)
	}
	checkPolicy(tb, "after editing the bucket", secondBucket)
	tb.shot("bucket-edited")
	if ok, words := runTest(tb); !ok {
		t.Fatalf("Test Connection of %s: %q", secondBucket, words)
	}
	checkSaveState(tb, "after a passing test of the new bucket", true, "")
	// Back to the first bucket: the last pass was for another one.
	tb.typeInto("bucket", streamBucket)
	checkSaveState(tb, "bucket edited back", false, "Run Test Connection")
	// Editing the AWS account id does the same.
	tb.typeInto("awsaccount", s3Stranger)
	checkSaveState(tb, "account id edited", false, "Run Test Connection")
	tb.typeInto("awsaccount", s3Owner)
	if ok, words := runTest(tb); !ok {
		t.Fatalf("Test Connection of %s: %q", streamBucket, words)
	}
	checkSaveState(tb, "after a new passing test", true, "")

	// Click Save: the status shows streaming enabled.
	ok, words = save(tb)
	if !ok || !strings.Contains(words, "Saved") {
		t.Fatalf("Save: ok=%v %q", ok, words)
	}
	rows := statusRows(tb)
	if h := tb.text("health-label"); h != "Streaming" || rows["Enabled since"] == "" || rows["Objects exported"] != "0" {
		t.Errorf("status after saving: badge %q, %q", h, rows)
	}
	st = j.state(t, key, account)
	if !st.Enabled || st.BucketName != streamBucket || st.AWSAccountID != s3Owner {
		t.Fatalf("after Save the API shows enabled=%v bucket %q owner %q", st.Enabled, st.BucketName, st.AWSAccountID)
	}
	tb.shot("saved")

	// A change to the graph, written through the REST API, lands in the
	// bucket, and the open page's status shows it on its own.
	j.create(t, key, account, "entities", entity("page-user-ann", "test_user", []string{"User"}, "name", "Ann"))
	tb.waitJS("the status panel to show the export", 30*time.Second, `(() => {
  const rows = Object.fromEntries([...document.querySelectorAll('#status dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));
  return Number(rows['Objects exported']) >= 1 && (rows['Last object'] || '') !== '';
})()`)
	rows = statusRows(tb)
	st = j.state(t, key, account)
	if rows["Last object"] != st.Status.LastExportKey || !keyRE.MatchString(rows["Last object"]) {
		t.Errorf("the status shows last object %q, the API %q", rows["Last object"], st.Status.LastExportKey)
	}
	if rows["Events exported"] != "1" || rows["Last export"] == "none yet" || rows["Last error"] != "none" || rows["Gaps"] != "none" {
		t.Errorf("status after an export: %q", rows)
	}
	if !slices.Contains(e.keys(t, streamBucket, accountPrefix(account)), rows["Last object"]) {
		t.Errorf("the last object %s is not in the bucket", rows["Last object"])
	}
	tb.shot("exported")
}

// checkLabels checks that every visible control has a name: a label, an
// aria-label, or its text.
func checkLabels(tb *tab) {
	tb.t.Helper()
	unnamed := evalJS[[]string](tb, `[...document.querySelectorAll('input, button, pre[tabindex]')]
  .filter((el) => el.getClientRects().length > 0)
  .filter((el) => !((el.labels && el.labels.length > 0 && el.labels[0].textContent.trim()) || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent.trim())))
  .map((el) => el.id || el.outerHTML)`)
	if len(unnamed) > 0 {
		tb.t.Errorf("controls without a label: %q", unnamed)
	}
}

// testPageFailingTests: each failed connection test says what failed, in
// words naming what to fix, and Save stays disabled.
func testPageFailingTests(t *testing.T, browser context.Context, j *j1) {
	const account = "page-fail"
	key := j.account(t, account, true)
	tb := openTab(t, browser, j.url, 1280, 900)
	signInAdmin(tb, account, key)
	tb.click("enabled")
	tb.click("region")
	cases := []struct {
		name, bucket, owner, code string
		mention                   []string
	}{
		{"wrong owner", streamBucket, s3Stranger, "ACCESS_DENIED", []string{"bucket policy", "s3:PutObject", "arn:aws:s3:::" + streamBucket + "/jupiterone/*", "not owned by AWS account " + s3Stranger, "S3 Bucket Policy panel"}},
		{"no such bucket", "no-such-bucket", s3Owner, "NO_SUCH_BUCKET", []string{`"no-such-bucket"`, "does not exist", "check the bucket name"}},
		{"policy for another prefix", "elsewhere-bucket", s3Owner, "ACCESS_DENIED", []string{"bucket policy", "arn:aws:s3:::elsewhere-bucket/jupiterone/*", s3Owner}},
	}
	for _, c := range cases {
		tb.typeInto("bucket", c.bucket)
		tb.typeInto("awsaccount", c.owner)
		ok, words := runTest(tb)
		if ok {
			t.Errorf("%s: the test passed: %q", c.name, words)
			continue
		}
		if want := "Connection test failed (" + c.code + ")"; !strings.Contains(words, want) {
			t.Errorf("%s: the result says %q, want %q", c.name, words, want)
		}
		for _, m := range c.mention {
			if !strings.Contains(words, m) {
				t.Errorf("%s: the result %q does not mention %q", c.name, words, m)
			}
		}
		checkSaveState(tb, c.name, false, "Run Test Connection")
		tb.shot(c.name)
	}
	if st := j.state(t, key, account); st.Enabled {
		t.Error("failed tests enabled streaming")
	}
}

// testPageDisableReenable: disabling is "uncheck, Save" with no test;
// re-enabling follows the API's rule, a passing test of exactly the saved
// bucket and account id within the last hour.
func testPageDisableReenable(t *testing.T, browser context.Context, j *j1) {
	const account = "page-toggle"
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)
	tb := openTab(t, browser, j.url, 1280, 900)
	signInAdmin(tb, account, key)
	form := evalJS[map[string]any](tb, `({enabled: document.getElementById('enabled').checked, bucket: document.getElementById('bucket').value,
  owner: document.getElementById('awsaccount').value, region: document.getElementById('region').checked})`)
	if want := map[string]any{"enabled": true, "bucket": streamBucket, "owner": s3Owner, "region": true}; !reflect.DeepEqual(form, want) {
		t.Errorf("the form shows %v, want the saved %v", form, want)
	}
	if h := tb.text("health-label"); h != "Streaming" {
		t.Errorf("badge of an enabled account: %q, want Streaming", h)
	}
	checkPolicy(tb, "saved bucket", streamBucket)
	tb.shot("enabled")

	// Disable: uncheck Enable integration, Save. No test needed.
	tb.click("enabled")
	checkSaveState(tb, "unchecked", true, "")
	if ok, words := save(tb); !ok || !strings.Contains(words, "Streaming is off") {
		t.Fatalf("Save after unchecking: ok=%v %q", ok, words)
	}
	if h := tb.text("health-label"); h != "Stopped" {
		t.Errorf("badge after disabling: %q, want Stopped", h)
	}
	if st := j.state(t, key, account); st.Enabled || st.Status.Enabled {
		t.Fatal("the API still shows streaming enabled after the page disabled it")
	}
	checkSaveState(tb, "disabled and unchecked", false, "Enable integration")
	tb.shot("disabled")

	// Re-enable with the same bucket and account id: the passing test of
	// exactly those values is less than an hour old, so the API takes it,
	// and the page lets it save without another.
	tb.click("enabled")
	checkSaveState(tb, "re-checked, same values", true, "")
	// An hour later the page, like the API, no longer takes that test.
	evalJS[chromedp.Void](tb, `window.__realNow = Date.now; Date.now = () => window.__realNow() + 61 * 60 * 1000`)
	tb.click("enabled")
	tb.click("enabled")
	checkSaveState(tb, "re-checked, the test an hour old", false, "Run Test Connection")
	evalJS[chromedp.Void](tb, `Date.now = window.__realNow`)
	tb.click("enabled")
	tb.click("enabled")
	checkSaveState(tb, "re-checked, same values, clock back", true, "")
	if ok, words := save(tb); !ok {
		t.Fatalf("re-enabling with the same values: %q", words)
	}
	if st := j.state(t, key, account); !st.Enabled {
		t.Fatal("re-enabling did not enable")
	}
	tb.shot("re-enabled")

	// Disable, then re-enable to another bucket: a new test is needed.
	tb.click("enabled")
	if ok, words := save(tb); !ok {
		t.Fatalf("disabling again: %q", words)
	}
	tb.typeInto("bucket", secondBucket)
	tb.click("enabled")
	checkSaveState(tb, "re-enabling to another bucket", false, "Run Test Connection")
	tb.shot("re-enable-other-bucket")
	if ok, words := runTest(tb); !ok {
		t.Fatalf("test of %s: %q", secondBucket, words)
	}
	checkSaveState(tb, "after its test", true, "")
	if ok, words := save(tb); !ok {
		t.Fatalf("re-enabling to %s: %q", secondBucket, words)
	}
	if st := j.state(t, key, account); !st.Enabled || st.BucketName != secondBucket {
		t.Fatalf("after re-enabling to %s the API shows enabled=%v bucket %q", secondBucket, st.Enabled, st.BucketName)
	}

	// Disable; a later test of other values fails. After a reload the page
	// knows the last test no longer covers the saved values, as the API
	// does.
	tb.click("enabled")
	if ok, words := save(tb); !ok {
		t.Fatalf("disabling: %q", words)
	}
	tb.typeInto("awsaccount", s3Stranger)
	if ok, words := runTest(tb); ok {
		t.Fatalf("a test with the wrong owner passed: %q", words)
	}
	tb.do("reload", chromedp.Reload())
	tb.waitJS("the settings after reload", uiTimeout, `!document.getElementById('app').hidden`)
	if got := evalJS[string](tb, `document.getElementById('awsaccount').value`); got != s3Owner {
		t.Fatalf("after reload the form shows owner %q, want the saved %s", got, s3Owner)
	}
	tb.click("enabled")
	checkSaveState(tb, "re-checked after a failed test of other values", false, "Run Test Connection")
	code, body := j.call(t, "PUT", streamingPath(account), key, map[string]any{"enabled": true, "bucketName": secondBucket, "awsAccountId": s3Owner, "regionConfirmed": true})
	if code != http.StatusConflict || !strings.Contains(string(body), "CONNECTION_TEST_REQUIRED") {
		t.Errorf("the API, asked the same: %d %s, want 409 CONNECTION_TEST_REQUIRED", code, body)
	}
	tb.shot("test-required-again")
	if ok, words := runTest(tb); !ok {
		t.Fatalf("test of %s: %q", secondBucket, words)
	}
	if ok, words := save(tb); !ok {
		t.Fatalf("re-enabling: %q", words)
	}
	if st := j.state(t, key, account); !st.Enabled {
		t.Fatal("re-enabling after a new test did not enable")
	}
}

// visibleControls lists the form controls a person can see.
func visibleControls(tb *tab) []string {
	tb.t.Helper()
	return evalJS[[]string](tb, `[...document.querySelectorAll('form, input, button, select, textarea')]
  .filter((el) => el.getClientRects().length > 0).map((el) => el.id || el.tagName)`)
}

// testPageDenied: a member key, an account without the entitlement and a
// wrong key are told so, with no form to submit.
func testPageDenied(t *testing.T, browser context.Context, j *j1) {
	const entitled, plain = "page-member", "page-plain"
	j.account(t, entitled, true)
	member := j.key(t, entitled, "member")
	plainAdmin := j.account(t, plain, false)
	plainMember := j.key(t, plain, "member")
	cases := []struct {
		name, account, key string
		heading            string
		mention            []string
	}{
		{"member", entitled, member, "Administrators only", []string{"administrators only", "member"}},
		{"not entitled", plain, plainAdmin, "Data Streaming is not available for this account", []string{"entitlement", "operator"}},
		{"not entitled member", plain, plainMember, "Data Streaming is not available for this account", []string{"entitlement", "administrator key"}},
	}
	for _, c := range cases {
		tb := openTab(t, browser, j.url, 1280, 900)
		signIn(tb, c.account, c.key)
		if !tb.visible("denied") {
			t.Errorf("%s: not told it is denied\npage: %s", c.name, tb.describe())
			continue
		}
		if got := tb.text("denied-h"); got != c.heading {
			t.Errorf("%s: heading %q, want %q", c.name, got, c.heading)
		}
		for _, m := range c.mention {
			if msg := tb.text("denied-msg"); !strings.Contains(msg, m) {
				t.Errorf("%s: the message %q does not mention %q", c.name, msg, m)
			}
		}
		if got := visibleControls(tb); !reflect.DeepEqual(got, []string{"signout"}) {
			t.Errorf("%s: visible controls %q, want only Sign out", c.name, got)
		}
		tb.shot(c.name)
	}

	// A wrong key: told so at sign-in, and nothing is kept.
	tb := openTab(t, browser, j.url, 1280, 900)
	signIn(tb, entitled, "j1k_not-a-key-of-this-account")
	if !tb.visible("signin-error") || !strings.Contains(tb.text("signin-error"), "not accepted") {
		t.Errorf("a wrong key: sign-in error %q\npage: %s", tb.text("signin-error"), tb.describe())
	}
	if n := evalJS[int](tb, `sessionStorage.length`); n != 0 {
		t.Errorf("a refused key left %d items in session storage", n)
	}
	tb.shot("wrong key")

	// Sign out forgets the key.
	admin := j.key(t, entitled, "admin")
	tb = openTab(t, browser, j.url, 1280, 900)
	signInAdmin(tb, entitled, admin)
	tb.click("signout")
	if !tb.visible("signin") || tb.visible("app") {
		t.Errorf("after sign-out\npage: %s", tb.describe())
	}
	if n := evalJS[int](tb, `sessionStorage.length`); n != 0 {
		t.Errorf("sign-out left %d items in session storage", n)
	}
}

// focusInfo is what has the focus and how its focus is drawn.
type focusInfo struct {
	ID, Tag      string
	FocusVisible bool
	Outline      string
	Width        string
}

// tabTo presses Tab until the element with id has the focus, checking that
// the focus is visible on every element it passes; it returns the number of
// presses.
func tabTo(tb *tab, id string) int {
	tb.t.Helper()
	var path []string
	for range 20 {
		tb.keys("\t")
		f := evalJS[focusInfo](tb, `(() => { const el = document.activeElement; const cs = getComputedStyle(el);
  return {ID: el.id, Tag: el.tagName, FocusVisible: el.matches(':focus-visible'), Outline: cs.outlineStyle, Width: cs.outlineWidth}; })()`)
		path = append(path, f.Tag+"#"+f.ID)
		if f.Tag != "BODY" && (!f.FocusVisible || f.Outline == "none" || f.Width == "0px") {
			tb.t.Errorf("focus on %s#%s is not visible: :focus-visible=%v outline %s %s", f.Tag, f.ID, f.FocusVisible, f.Outline, f.Width)
		}
		if f.ID == id {
			return len(path)
		}
	}
	tb.shot("tab-" + id)
	tb.t.Fatalf("Tab never reached #%s; the focus went %s", id, strings.Join(path, " → "))
	return 0
}

// testPageKeyboard: sign-in and the whole form with Tab, Space, Enter and
// typing only; the focus is always visible.
func testPageKeyboard(t *testing.T, browser context.Context, j *j1) {
	const account = "page-keys"
	key := j.account(t, account, true)
	tb := openTab(t, browser, j.url, 1280, 900)
	tb.open()
	tabTo(tb, "signin-account")
	tb.keys(account)
	tabTo(tb, "signin-key")
	tb.keys(key + "\r")
	tb.waitJS("the settings after sign-in", uiTimeout, `!document.getElementById('app').hidden`)

	tabTo(tb, "enabled")
	tb.keys(" ")
	tabTo(tb, "bucket")
	tb.keys(streamBucket)
	tabTo(tb, "awsaccount")
	tb.keys(s3Owner)
	tabTo(tb, "region")
	tb.keys(" ")
	if got := evalJS[[]bool](tb, `[document.getElementById('enabled').checked, document.getElementById('region').checked]`); !reflect.DeepEqual(got, []bool{true, true}) {
		t.Fatalf("Space did not check the boxes: %v", got)
	}
	tabTo(tb, "test")
	tb.shot("focus-on-test")
	tb.keys(" ")
	tb.waitJS("the connection test to pass", uiTimeout, `document.getElementById('test-result').textContent.includes('passed')`)
	// Test Connection keeps its place in the tab order while it runs:
	// Save is the next stop.
	if n := tabTo(tb, "save"); n != 1 {
		t.Errorf("after Test Connection, Save is %d Tab presses away, want 1", n)
	}
	tb.shot("focus-on-save")
	tb.keys(" ")
	tb.waitJS("the save result", uiTimeout, `document.getElementById('save-result').textContent.includes('Saved')`)
	if st := j.state(t, key, account); !st.Enabled || st.BucketName != streamBucket || st.AWSAccountID != s3Owner {
		t.Fatalf("after the keyboard flow the API shows enabled=%v bucket %q owner %q", st.Enabled, st.BucketName, st.AWSAccountID)
	}
	tabTo(tb, "policy")
	tb.shot("saved")
}

// testPageNarrow: at 400 px the page is one column, nothing sticks out,
// and the form still works.
func testPageNarrow(t *testing.T, browser context.Context, j *j1) {
	const account = "page-narrow"
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)
	j.create(t, key, account, "entities", entity("page-narrow-host", "test_host", []string{"Host"}, "name", "narrow"))
	waitFor(t, 30*time.Second, "an export of "+account, func() bool { return j.state(t, key, account).Status.ObjectsExported > 0 })

	tb := openTab(t, browser, j.url, 400, 860)
	tb.open()
	if l := evalJS[pageLayout](tb, `({ScrollWidth: document.documentElement.scrollWidth, InnerWidth: innerWidth})`); l.ScrollWidth > l.InnerWidth {
		t.Errorf("the sign-in screen is %v px wide in a %v px window", l.ScrollWidth, l.InnerWidth)
	}
	tb.shot("sign-in")
	signInAdmin(tb, account, key)
	l := layoutOf(tb)
	if l.InnerWidth != 400 {
		t.Fatalf("the window is %v px wide, want 400", l.InnerWidth)
	}
	oneColumn := abs(l.MainLeft-l.SideLeft) < 1 && abs(l.MainRight-l.SideRight) < 1 &&
		(l.SideBottom <= l.MainTop || l.MainBottom <= l.SideTop)
	if !oneColumn {
		t.Errorf("at 400 px the page is not one column: %+v", l)
	}
	if l.ScrollWidth > l.InnerWidth || len(l.Outside) > 0 {
		t.Errorf("at 400 px the page scrolls sideways (%v px) or these stick out: %q", l.ScrollWidth, l.Outside)
	}
	if l.PolicyHidden {
		t.Error("at 400 px the policy panel shows only part of the policy")
	}
	// A long label wrapping beside a checkbox must not shrink the box.
	if w := evalJS[[]float64](tb, `['enabled', 'region'].map((id) => document.getElementById(id).getBoundingClientRect().width)`); w[0] != w[1] || w[0] < 16 {
		t.Errorf("at 400 px the checkboxes are %v px wide, want the same, at least 16", w)
	}
	tb.shot("one-column")

	// Usable: retarget to the second bucket with clicks and typing.
	tb.typeInto("bucket", secondBucket)
	checkSaveState(tb, "narrow, bucket edited", false, "Run Test Connection")
	if ok, words := runTest(tb); !ok {
		t.Fatalf("test at 400 px: %q", words)
	}
	if ok, words := save(tb); !ok {
		t.Fatalf("save at 400 px: %q", words)
	}
	if st := j.state(t, key, account); st.BucketName != secondBucket || !st.Enabled {
		t.Errorf("after saving at 400 px the API shows bucket %q enabled=%v", st.BucketName, st.Enabled)
	}
	if l := layoutOf(tb); l.ScrollWidth > l.InnerWidth || len(l.Outside) > 0 {
		t.Errorf("with results shown the page scrolls sideways (%v px) or these stick out: %q", l.ScrollWidth, l.Outside)
	}
	tb.shot("saved")
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}
