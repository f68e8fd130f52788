package e2e

// The stream's status at a glance: the health badge and the 24-hour
// history of GET .../data-streaming/history, recorded by real exports to
// versitygw on both backends, and shown by the settings page (the badge
// and the chart it draws) in the healthy and the failing states.

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// statusHealth is the part of GET .../data-streaming these tests read.
type statusHealth struct {
	Status struct {
		Health          string   `json:"health"`
		ObjectsExported int64    `json:"objectsExported"`
		EventsExported  int64    `json:"eventsExported"`
		Failures        int      `json:"failures"`
		LastError       *problem `json:"lastError"`
	} `json:"status"`
}

func (j *j1) health(t *testing.T, key, account string) statusHealth {
	t.Helper()
	var v statusHealth
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account), key, nil), &v)
	return v
}

// exportHistory is the answer of GET .../data-streaming/history.
type exportHistory struct {
	BucketSeconds       float64 `json:"bucketSeconds"`
	LagThresholdSeconds float64 `json:"lagThresholdSeconds"`
	Buckets             []struct {
		Start         time.Time `json:"start"`
		Objects       int64     `json:"objects"`
		Events        int64     `json:"events"`
		Failures      int64     `json:"failures"`
		MaxLagSeconds float64   `json:"maxLagSeconds"`
	} `json:"buckets"`
}

func (j *j1) history(t *testing.T, key, account string) exportHistory {
	t.Helper()
	var h exportHistory
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account)+"/history", key, nil), &h)
	return h
}

// totals sums the history's buckets.
func (h exportHistory) totals() (objects, events, failures int64, maxLag float64) {
	for _, b := range h.Buckets {
		objects += b.Objects
		events += b.Events
		failures += b.Failures
		maxLag = max(maxLag, b.MaxLagSeconds)
	}
	return
}

// denyWriter replaces the bucket's policy with one that lets the writer
// put objects under exports/ only: j1ds's writes under jupiterone/ are
// denied, as when a customer edits the policy after enabling.
func denyWriter(t *testing.T, e *s3Env, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	policy := strings.Replace(locals3.WriterPolicy(bucket, s3Writer), "arn:aws:s3:::"+bucket+"/jupiterone/*", "arn:aws:s3:::"+bucket+"/exports/*", 1)
	if err := e.srv.PutBucketPolicy(ctx, bucket, policy); err != nil {
		t.Fatal(err)
	}
}

// TestStreamHistory: exports to versitygw are counted in the history as
// the status counts them, with their lag; the history survives a restart
// of j1ds (it is kept in the store); once the bucket's policy denies the
// writes, the health turns failing and the history counts the failed
// attempts.
func TestStreamHistory(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamHistory)
}

func testStreamHistory(t *testing.T, bk backend) {
	e := startS3(t, "")
	cfg := bk.config(t, e)
	j := startServe(t, cfg)
	const account = "acme"
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)
	if h := j.health(t, key, account).Status.Health; h != "streaming" {
		t.Errorf("enabled, nothing exported yet: health %q, want streaming", h)
	}
	for i := range 3 {
		j.create(t, key, account, "entities", entity("history-user-"+strconv.Itoa(i), "test_user", []string{"User"}, "n", i))
		waitFor(t, 30*time.Second, "the change to be exported", func() bool {
			return j.health(t, key, account).Status.EventsExported == int64(i+1)
		})
	}
	st := j.health(t, key, account)
	h := j.history(t, key, account)
	objects, events, failures, maxLag := h.totals()
	if len(h.Buckets) != 96 || h.BucketSeconds != 900 {
		t.Fatalf("history: %d buckets of %vs, want 96 of 900s", len(h.Buckets), h.BucketSeconds)
	}
	if objects != st.Status.ObjectsExported || events != 3 || failures != 0 || maxLag <= 0 {
		t.Errorf("history counts %d objects, %d events, %d failures, greatest lag %vs; the status %d objects, 3 events, no failure; want equal counts and a lag above 0",
			objects, events, failures, maxLag, st.Status.ObjectsExported)
	}
	if st.Status.Health != "streaming" {
		t.Errorf("after exports: health %q, want streaming", st.Status.Health)
	}

	// Restarted on the same store, j1ds serves the same history.
	j.stop()
	j = startServe(t, cfg)
	if o, ev, _, _ := j.history(t, key, account).totals(); o != objects || ev != events {
		t.Errorf("after a restart the history counts %d objects and %d events, want %d and %d", o, ev, objects, events)
	}

	denyWriter(t, e, streamBucket)
	j.create(t, key, account, "entities", entity("history-user-denied", "test_user", []string{"User"}, "n", 9))
	waitFor(t, 30*time.Second, "the health to turn failing", func() bool {
		return j.health(t, key, account).Status.Health == "failing"
	})
	if p := j.health(t, key, account).Status.LastError; p == nil || p.Code != "ACCESS_DENIED" {
		t.Errorf("failing, the last error is %+v, want ACCESS_DENIED", p)
	}
	h = j.history(t, key, account)
	o, ev, f, _ := h.totals()
	if o != objects || ev != events || f < 1 {
		t.Errorf("after a denied write the history counts %d objects, %d events, %d failures; want %d, %d and at least 1", o, ev, f, objects, events)
	}
	for _, b := range h.Buckets {
		if b.Failures > 0 && b.MaxLagSeconds <= 0 {
			t.Errorf("bucket %s counts %d failures with no lag: the failed batch's lag is missing", b.Start, b.Failures)
		}
	}
}

// TestSettingsPageStatus: the Status panel of the page shows the health
// badge, in colour and words, and the 24-hour chart drawn from the
// history: "Streaming" for an account whose exports land in the bucket,
// "Failing" with the error for one whose bucket policy denies them.
// Screenshots of both are saved.
func TestSettingsPageStatus(t *testing.T) {
	browser := startBrowser(t)
	e := startS3(t, "")
	const deniedBucket = "denied-bucket"
	e.bucket(t, deniedBucket, s3Owner, locals3.WriterPolicy(deniedBucket, s3Writer))
	j := startServe(t, streamConfig(t, e))
	t.Logf("screenshots of each state: %s", screenshotDir(t))

	// badge reads the badge: its state, words, colour and the chart's
	// summary line and bars.
	type badge struct {
		Health, Label, Detail, Background, Summary string
		Bars, Failed                               int
	}
	readBadge := func(tb *tab) badge {
		return evalJS[badge](tb, `(() => {
  const h = document.getElementById('health');
  return { Health: h.dataset.health || '', Label: document.getElementById('health-label').textContent, Detail: document.getElementById('health-detail').textContent,
    Background: getComputedStyle(document.getElementById('health-label')).backgroundColor,
    Summary: document.getElementById('history').hidden ? '' : document.getElementById('history-summary').textContent,
    Bars: document.querySelectorAll('#history-chart .bar-objects').length, Failed: document.querySelectorAll('#history-chart .bar-failures').length };
})()`)
	}

	t.Run("healthy", func(t *testing.T) {
		const account = "status-ok"
		key := j.account(t, account, true)
		j.enable(t, key, account, streamBucket, s3Owner)
		for i := range 2 {
			j.create(t, key, account, "entities", entity("status-ok-user-"+strconv.Itoa(i), "test_user", []string{"User"}, "n", i))
			waitFor(t, 30*time.Second, "the change to be exported", func() bool {
				return j.health(t, key, account).Status.EventsExported == int64(i+1)
			})
		}
		tb := openTab(t, browser, j.url, 1280, 1100)
		signInAdmin(tb, account, key)
		tb.waitJS("the chart", uiTimeout, `!document.getElementById('history').hidden`)
		b := readBadge(tb)
		if b.Health != "streaming" || b.Label != "Streaming" || !strings.Contains(b.Detail, "exported to your bucket") {
			t.Errorf("healthy account: badge %+v, want Streaming", b)
		}
		if b.Background != "rgb(23, 113, 58)" { // --ok
			t.Errorf("the Streaming badge's colour is %s, want green rgb(23, 113, 58)", b.Background)
		}
		if b.Bars < 1 || b.Failed != 0 || !strings.Contains(b.Summary, "2 events, 0 failed attempts") {
			t.Errorf("healthy account: chart with %d object bars, %d failure bars, summary %q; want bars of 2 events and no failure", b.Bars, b.Failed, b.Summary)
		}
		if rows := statusRows(tb); rows["Objects exported"] == "0" {
			t.Errorf("status rows: %q", rows)
		}
		tb.shot("healthy")
	})

	t.Run("failing", func(t *testing.T) {
		const account = "status-denied"
		key := j.account(t, account, true)
		j.enable(t, key, account, deniedBucket, s3Owner)
		j.create(t, key, account, "entities", entity("status-first-user", "test_user", []string{"User"}, "n", 1))
		waitFor(t, 30*time.Second, "the change to be exported", func() bool {
			return j.health(t, key, account).Status.EventsExported == 1
		})
		tb := openTab(t, browser, j.url, 1280, 1100)
		signInAdmin(tb, account, key)
		tb.waitJS("the Streaming badge", uiTimeout, `document.getElementById('health').dataset.health === 'streaming'`)

		// The customer's policy stops allowing the writes: the open page
		// turns to Failing on its own.
		denyWriter(t, e, deniedBucket)
		j.create(t, key, account, "entities", entity("status-denied-user", "test_user", []string{"User"}, "n", 2))
		tb.waitJS("the Failing badge", 30*time.Second, `document.getElementById('health').dataset.health === 'failing'`)
		tb.waitJS("the failure in the chart", uiTimeout, `document.querySelectorAll('#history-chart .bar-failures').length > 0`)
		b := readBadge(tb)
		if b.Label != "Failing" || !strings.Contains(b.Detail, "Exports to your bucket are failing") || !strings.Contains(b.Detail, "bucket policy") {
			t.Errorf("failing account: badge %+v, want Failing with the error naming the bucket policy", b)
		}
		if b.Background != "rgb(179, 38, 30)" { // --bad
			t.Errorf("the Failing badge's colour is %s, want red rgb(179, 38, 30)", b.Background)
		}
		if b.Bars < 1 || !strings.Contains(b.Summary, "1 event,") || strings.Contains(b.Summary, " 0 failed attempts") {
			t.Errorf("failing account: chart with %d object bars, summary %q; want the export before and the failed attempts", b.Bars, b.Summary)
		}
		tb.shot("failing")
	})
}
