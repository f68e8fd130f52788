package e2e

// A small driver of the system's headless Chromium for the tests of the
// Settings > Data Streaming page (page_test.go): one browser for the whole
// test, a fresh tab in a fresh browser context (no shared storage or
// cookies) for each subtest, real mouse and keyboard events, bounded waits,
// and a PNG screenshot of each state in a directory outside the repository.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which .ci/run installs with apt;
// J1DS_CHROMIUM names another binary.
func chromiumPath() string {
	if p := os.Getenv("J1DS_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

const (
	// actionTimeout bounds one browser action (a click, a key, a script).
	actionTimeout = 15 * time.Second
	// uiTimeout bounds a wait for the page to show something that needs
	// no more than a request or two to j1ds.
	uiTimeout = 20 * time.Second
)

// startBrowser starts headless Chromium for the test: no sandbox (CI runs
// as root), no GPU, no QUIC, no background networking of any kind (the
// machine has no network beyond loopback), and a profile in a temporary
// directory. It fails the test when Chromium is missing.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("the page tests need Chromium at %s (%v): install it: apt-get install chromium", path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first Do starts the browser and binds it to bctx, so it runs on
	// bctx itself; the wait for it is bounded here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", path, err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s did not start within a minute", path)
	}
	return bctx
}

var (
	screensOnce sync.Once
	screensPath string
	screensErr  error
)

// screenshotDir is $J1DS_SCREENSHOTS, else j1ds-page-screens in the
// temporary directory: never inside the repository.
func screenshotDir(t *testing.T) string {
	t.Helper()
	screensOnce.Do(func() {
		screensPath = os.Getenv("J1DS_SCREENSHOTS")
		if screensPath == "" {
			screensPath = filepath.Join(os.TempDir(), "j1ds-page-screens")
		}
		screensErr = os.MkdirAll(screensPath, 0o755)
	})
	if screensErr != nil {
		t.Fatalf("screenshot directory %s: %v", screensPath, screensErr)
	}
	return screensPath
}

// tab is one browser tab showing the page, for one subtest.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string // j1ds's URL

	mu     sync.Mutex
	jsErrs []string
	shots  int
}

// pageURL is where j1ds serves the page.
const pagePath = "/settings/data-streaming"

// cspProbe records Content-Security-Policy violations in the page, where
// the test reads them.
const cspProbe = `document.addEventListener('securitypolicyviolation', (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(e.violatedDirective + ' ' + e.blockedURI);
});`

// openTab opens a tab in a new browser context of the browser, at the
// given viewport size, and collects the page's uncaught exceptions and
// console errors; the test fails on any when it ends.
func openTab(t *testing.T, browser context.Context, base string, width, height int64) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	tb := &tab{t: t, ctx: ctx, base: base}
	t.Cleanup(func() {
		if !t.Failed() {
			tb.checkClean()
		}
		cancel()
	})
	// The first Do opens the tab and binds it to ctx, so it runs on ctx
	// itself; the wait for it is bounded here.
	opened := make(chan error, 1)
	go func() { opened <- chromedp.Do(ctx) }()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatalf("open a tab: %v", err)
		}
	case <-time.After(actionTimeout):
		t.Fatalf("the browser opened no tab within %s", actionTimeout)
	}
	tb.do("set up the tab", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe})
		return err
	}), chromedp.EmulateViewport(width, height))
	if err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			tb.mu.Lock()
			tb.jsErrs = append(tb.jsErrs, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
			tb.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, a.Description+string(a.Value))
				}
				tb.mu.Lock()
				tb.jsErrs = append(tb.jsErrs, "console.error: "+strings.Join(parts, " "))
				tb.mu.Unlock()
			}
		}
	}); err != nil {
		t.Fatalf("listen to the tab: %v", err)
	}
	return tb
}

// checkClean fails the test when the page threw, logged an error, or
// broke its Content-Security-Policy.
func (tb *tab) checkClean() {
	tb.t.Helper()
	tb.mu.Lock()
	errs := append([]string(nil), tb.jsErrs...)
	tb.mu.Unlock()
	for _, e := range errs {
		tb.t.Errorf("the page: %s", e)
	}
	if v := evalJS[[]string](tb, `window.__cspViolations || []`); len(v) > 0 {
		tb.t.Errorf("Content-Security-Policy violations: %q", v)
	}
}

// do runs actions with a bounded wait, failing the test on an error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v\npage: %s", what, err, tb.describe())
	}
}

// evalJS evaluates a JavaScript expression in the page.
func evalJS[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// describe is a summary of what the page shows, for failure messages.
func (tb *tab) describe() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
  const $ = (id) => document.getElementById(id);
  const vis = ['signin', 'denied', 'app'].filter((id) => $(id) && !$(id).hidden);
  const v = (id) => $(id) ? JSON.stringify($(id).textContent.trim()) : '-';
  return 'shown=' + vis.join(',') + ' signin-error=' + v('signin-error') + ' denied=' + v('denied') +
    ' test-result=' + v('test-result') + ' save-result=' + v('save-result') +
    ' save.disabled=' + ($('save') && $('save').disabled) + ' save-hint=' + v('save-hint') + ' status=' + v('status');
})()`))
	if err != nil {
		return "(page unreadable: " + err.Error() + ")"
	}
	return s
}

// waitJS waits until the JavaScript expression is true.
func (tb *tab) waitJS(what string, timeout time.Duration, expr string) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	for !evalJS[bool](tb, "!!("+expr+")") {
		if time.Now().After(deadline) {
			tb.shot("timeout")
			tb.t.Fatalf("timed out after %s waiting for %s\npage: %s", timeout, what, tb.describe())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// open loads the page.
func (tb *tab) open() {
	tb.t.Helper()
	tb.do("open "+pagePath, chromedp.Navigate(tb.base+pagePath))
	tb.waitJS("the page's script to show a screen", uiTimeout,
		`!document.getElementById('signin').hidden || !document.getElementById('app').hidden || !document.getElementById('denied').hidden`)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// shot saves a full-page PNG screenshot of the current state.
func (tb *tab) shot(state string) {
	tb.t.Helper()
	tb.mu.Lock()
	tb.shots++
	n := tb.shots
	tb.mu.Unlock()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Errorf("screenshot %s: %v", state, err)
		return
	}
	name := fmt.Sprintf("%s-%02d-%s.png", unsafeName.ReplaceAllString(tb.t.Name(), "_"), n, unsafeName.ReplaceAllString(state, "_"))
	path := filepath.Join(screenshotDir(tb.t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Errorf("screenshot %s: %v", state, err)
	}
}

// click clicks an element with the mouse, at its centre.
func (tb *tab) click(id string) {
	tb.t.Helper()
	tb.do("click #"+id, chromedp.Click(chromedp.ID(id)))
}

// typeInto replaces the text of an input as a person does: click into it,
// select what it holds, type (each key a real key event).
func (tb *tab) typeInto(id, text string) {
	tb.t.Helper()
	tb.click(id)
	evalJS[chromedp.Void](tb, `document.getElementById(`+jsString(id)+`).select()`)
	if text == "" {
		tb.keys("\b")
		return
	}
	tb.keys(text)
}

// keys types keys into whatever has the focus.
func (tb *tab) keys(keys string) {
	tb.t.Helper()
	tb.do(fmt.Sprintf("type %q", keys), chromedp.KeyEvent(keys))
}

func (tb *tab) text(id string) string {
	tb.t.Helper()
	return evalJS[string](tb, `(document.getElementById(`+jsString(id)+`) || {textContent: ''}).textContent.trim()`)
}

// visible reports whether an element is rendered.
func (tb *tab) visible(id string) bool {
	tb.t.Helper()
	return evalJS[bool](tb, `(() => { const el = document.getElementById(`+jsString(id)+`);
  return !!el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden'; })()`)
}

func (tb *tab) disabled(id string) bool {
	tb.t.Helper()
	return evalJS[bool](tb, `document.getElementById(`+jsString(id)+`).disabled`)
}

func (tb *tab) attr(id, name string) string {
	tb.t.Helper()
	return evalJS[string](tb, `document.getElementById(`+jsString(id)+`).getAttribute(`+jsString(name)+`) || ''`)
}

// cookies lists every cookie the browser holds for url.
func (tb *tab) cookies(url string) []*network.Cookie {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, actionTimeout)
	defer cancel()
	cs, err := chromedp.Run(ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		r, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
		return r.Cookies, err
	}))
	if err != nil {
		tb.t.Fatalf("read cookies: %v", err)
	}
	return cs
}

func jsString(s string) string { return mustJSON(s) }
