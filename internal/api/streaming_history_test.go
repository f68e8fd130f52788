package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/stream"
)

// historyAnswer is the answer of GET .../data-streaming/history.
type historyAnswer struct {
	BucketSeconds       float64                `json:"bucketSeconds"`
	WindowSeconds       float64                `json:"windowSeconds"`
	LagThresholdSeconds float64                `json:"lagThresholdSeconds"`
	Buckets             []stream.HistoryBucket `json:"buckets"`
}

// TestStreamingHistoryAndHealth records exports and failures in an
// account's stream state as the exporter does (the checkpoint of the API's
// own store), and reads them back: the history holds 96 buckets of 15
// minutes ending at the API's now, with the sums of each, and nothing older
// than 24 hours; the status's health follows the last attempt: failing
// after a failure, streaming after an export, stopped once disabled.
func TestStreamingHistoryAndHealth(t *testing.T) {
	var cp stream.Checkpoint
	e := newEnv(t, withStreaming(&streamStub{}, nil), func(c *api.Config) { cp = c.Graph.(*pebblestore.Store).Settings() })
	const acct = "acme"
	base := "/api/v1/accounts/" + acct + "/data-streaming"
	admin := e.newAccount(t, acct)
	wantStatus(t, e.rest(t, admin, "POST", base+"/test-connection", map[string]any{"bucketName": "acme-bucket", "awsAccountId": "123456789012"}), http.StatusOK)
	wantStatus(t, e.rest(t, admin, "PUT", base, map[string]any{"enabled": true, "bucketName": "acme-bucket", "awsAccountId": "123456789012", "regionConfirmed": true}), http.StatusOK)
	st, err := cp.Load(acct)
	if err != nil {
		t.Fatal(err)
	}
	health := func() string {
		t.Helper()
		r := e.rest(t, admin, "GET", base, nil)
		wantStatus(t, r, http.StatusOK)
		var v struct {
			Status struct {
				Health string `json:"health"`
			} `json:"status"`
		}
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatal(err)
		}
		return v.Status.Health
	}
	if h := health(); h != "streaming" {
		t.Errorf("enabled, nothing attempted: health %q, want streaming", h)
	}

	now := streamNow() // 08:00, the start of the last bucket
	lsn := st.Cursor
	advance := func(at time.Time, events int, lag time.Duration) {
		t.Helper()
		lsn += uint64(events)
		if err := cp.Advance(acct, st.Generation, lsn, events, "k", at, lag); err != nil {
			t.Fatal(err)
		}
	}
	advance(now.Add(-30*time.Hour), 100, time.Minute)                // dropped: over 24 hours old when the next is written
	advance(now.Add(-23*time.Hour-40*time.Minute), 7, 2*time.Minute) // 08:20 yesterday: the first bucket, 08:15
	advance(now.Add(-20*time.Minute), 3, 90*time.Second)
	advance(now.Add(-25*time.Minute), 4, 30*time.Second) // the same bucket, 07:30
	if err := cp.SetError(acct, st.Generation, &stream.Problem{Code: "ACCESS_DENIED", Message: "denied", At: now.Add(time.Minute)}, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if h := health(); h != "failing" {
		t.Errorf("after a failed attempt: health %q, want failing", h)
	}

	r := e.rest(t, admin, "GET", base+"/history", nil)
	wantStatus(t, r, http.StatusOK)
	var h historyAnswer
	if err := json.Unmarshal(r.Body, &h); err != nil {
		t.Fatal(err)
	}
	if h.BucketSeconds != 900 || h.WindowSeconds != 86400 || h.LagThresholdSeconds != 120 || len(h.Buckets) != 96 {
		t.Fatalf("history: bucket %vs, window %vs, lag threshold %vs, %d buckets; want 900, 86400, 120 (2 flush intervals of a minute) and 96",
			h.BucketSeconds, h.WindowSeconds, h.LagThresholdSeconds, len(h.Buckets))
	}
	first, last := h.Buckets[0], h.Buckets[95]
	if !first.Start.Equal(now.Add(-95*15*time.Minute)) || !last.Start.Equal(now) {
		t.Fatalf("history spans %s to %s, want %s to %s", first.Start, last.Start, now.Add(-95*15*time.Minute), now)
	}
	want := map[time.Time]stream.HistoryBucket{
		now.Add(-24 * time.Hour).Add(15 * time.Minute): {Objects: 1, Events: 7, MaxLagSeconds: 120},
		now.Add(-30 * time.Minute):                     {Objects: 2, Events: 7, MaxLagSeconds: 90},
		now:                                            {Failures: 1, MaxLagSeconds: 600},
	}
	var objects int64
	for _, b := range h.Buckets {
		objects += b.Objects
		w := want[b.Start]
		w.Start = b.Start
		if b != w {
			t.Errorf("bucket %s = %+v, want %+v", b.Start, b, w)
		}
	}
	if objects != 3 {
		t.Errorf("the history counts %d objects, want 3 (the one 30 hours old is dropped)", objects)
	}
	if st, _ := cp.Load(acct); len(st.History) != 3 {
		t.Errorf("the stored history holds %d buckets, want 3: %+v", len(st.History), st.History)
	}

	advance(now.Add(2*time.Minute), 1, time.Second)
	if h := health(); h != "streaming" {
		t.Errorf("after an export following the failure: health %q, want streaming", h)
	}
	wantStatus(t, e.rest(t, admin, "PUT", base, map[string]any{"enabled": false}), http.StatusOK)
	if h := health(); h != "stopped" {
		t.Errorf("disabled: health %q, want stopped", h)
	}
	// Disabled, the history is still served.
	r = e.rest(t, admin, "GET", base+"/history", nil)
	wantStatus(t, r, http.StatusOK)
	if err := json.Unmarshal(r.Body, &h); err != nil || h.Buckets[95].Objects != 1 {
		t.Errorf("history once disabled: last bucket %+v (%v), want the export of 08:02", h.Buckets[95], err)
	}
}

// TestStatusShowsDelayed: a lagging account without failures is delayed.
func TestStatusShowsDelayed(t *testing.T) {
	stub := &lagStub{streamStub: &streamStub{}, lag: time.Hour}
	e := newEnv(t, withStreaming(stub.streamStub, nil), func(c *api.Config) { c.Streaming.Exporter = stub })
	const acct = "acme"
	base := "/api/v1/accounts/" + acct + "/data-streaming"
	admin := e.newAccount(t, acct)
	wantStatus(t, e.rest(t, admin, "POST", base+"/test-connection", map[string]any{"bucketName": "acme-bucket", "awsAccountId": "123456789012"}), http.StatusOK)
	wantStatus(t, e.rest(t, admin, "PUT", base, map[string]any{"enabled": true, "bucketName": "acme-bucket", "awsAccountId": "123456789012", "regionConfirmed": true}), http.StatusOK)
	r := e.rest(t, admin, "GET", base, nil)
	wantStatus(t, r, http.StatusOK)
	var v struct {
		Status struct {
			Health string `json:"health"`
		} `json:"status"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatal(err)
	}
	if v.Status.Health != "delayed" {
		t.Errorf("lagging an hour with a flush interval of a minute: health %q, want delayed", v.Status.Health)
	}
}
