package syncjobstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// clock is a time tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// apiCode returns the code of a job error, or the error's text.
func apiCode(err error) string {
	if err == nil {
		return "ok"
	}
	if je, ok := errors.AsType[*syncjobs.Error](err); ok {
		return fmt.Sprintf("%d %s", je.Status, je.Code)
	}
	return err.Error()
}

// thingsOf returns n entities whose _key starts with prefix, each with a
// property of pad bytes.
func thingsOf(prefix string, n, pad int) []json.RawMessage {
	var out []json.RawMessage
	for i := range n {
		out = append(out, json.RawMessage(fmt.Sprintf(`{"_key":"%s-key-%05d","_type":"test_thing","_class":"Thing","pad":%q}`, prefix, i, strings.Repeat("x", pad))))
	}
	return out
}

// usage returns the Store's usage of an account as "<open jobs> jobs <bytes> bytes".
func usage(t *testing.T, st syncjobs.Store, account string) string {
	t.Helper()
	u, err := st.Usage(account)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d jobs %d bytes", u.OpenJobs, u.StagedBytes)
}

// testQuotas reproduces one account staging uploads it never finalizes,
// which without quotas fills the disk for every account: its open jobs and
// its staged bytes are bounded (429 TOO_MANY_OPEN_JOBS, 429
// STAGING_QUOTA_EXCEEDED, a refused upload staging nothing), another
// account goes on as if nothing happened, the account's usage is kept
// across a restart, and its jobs left awaiting uploads expire with their
// staging dropped, while one that took an upload since, or is being
// finalized, does not.
func testQuotas(t *testing.T, open Opener) {
	g, st, reopen := open(t)
	clk := &clock{now: time.UnixMilli(1_700_000_000_000)}
	const expiry = time.Hour
	opts := syncjobs.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.Now,
		MaxOpenJobs: 3, MaxStagedBytes: 40_000, JobExpiry: expiry, ExpiryPoll: -1,
	}
	s, err := syncjobs.Open(g, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	const hog, other = "acct-hog", "acct-other"
	create := func(account, scope string) (string, string) {
		j, err := s.Create(account, syncjobs.CreateRequest{Scope: scope})
		return j.ID, apiCode(err)
	}

	// Three open jobs, each staging about 10 KB: a fourth job is refused.
	var hogJobs []string
	for i := range 3 {
		id, code := create(hog, fmt.Sprintf("scope-%d", i))
		if code != "ok" {
			t.Fatalf("job %d: %s", i, code)
		}
		if _, err := s.Upload(hog, id, thingsOf(fmt.Sprintf("j%d", i), 10, 900), nil); err != nil {
			t.Fatal(err)
		}
		hogJobs = append(hogJobs, id)
	}
	before := usage(t, st, hog)
	if _, code := create(hog, "scope-x"); code != "429 TOO_MANY_OPEN_JOBS" {
		t.Fatalf("a job beyond the open jobs' quota: %s, want 429 TOO_MANY_OPEN_JOBS", code)
	}
	// Staging beyond the bytes' quota is refused, and stages nothing.
	_, err = s.Upload(hog, hogJobs[0], thingsOf("big", 20, 900), nil)
	if code := apiCode(err); code != "429 STAGING_QUOTA_EXCEEDED" {
		t.Fatalf("an upload beyond the staging quota: %s, want 429 STAGING_QUOTA_EXCEEDED", code)
	}
	if msg := err.Error(); !strings.Contains(msg, "finalize") || !strings.Contains(msg, "abort") {
		t.Errorf("the quota's message does not say what to do: %s", msg)
	}
	if after := usage(t, st, hog); after != before {
		t.Errorf("usage after a refused upload: %s, want %s as before", after, before)
	}
	if j, _ := s.Get(hog, hogJobs[0]); j.NumEntitiesUploaded != 10 {
		t.Errorf("the refused upload was counted: %d entities uploaded, want 10", j.NumEntitiesUploaded)
	}
	if _, ok, err := st.Staged(hog, hogJobs[0], graph.KindEntity, graph.ObjectID(hog, "scope-0", "big-key-00000")); ok || err != nil {
		t.Errorf("the refused upload's first object is staged (ok %v, err %v)", ok, err)
	}
	// An upload sent again (the SDK retries) stages nothing new and passes.
	if _, err := s.Upload(hog, hogJobs[0], thingsOf("j0", 10, 900), nil); err != nil {
		t.Errorf("an upload retried with the quota full: %v", err)
	}
	// Another account is not affected.
	oid, code := create(other, "scope-o")
	if code != "ok" {
		t.Fatalf("another account's job: %s", code)
	}
	if _, err := s.Upload(other, oid, thingsOf("o", 20, 900), nil); err != nil {
		t.Fatalf("another account's upload: %v", err)
	}

	// The usage survives a restart.
	s.Close()
	g, st = reopen()
	if got := usage(t, st, hog); got != before {
		t.Errorf("usage after a restart: %s, want %s", got, before)
	}
	if s, err = syncjobs.Open(g, st, opts); err != nil {
		t.Fatal(err)
	}

	// Aborting a job frees its place and its staging.
	if _, err := s.Abort(hog, hogJobs[2], "not needed"); err != nil {
		t.Fatal(err)
	}
	if got := usage(t, st, hog); got == before || !strings.HasPrefix(got, "2 jobs") {
		t.Errorf("usage after an abort: %s", got)
	}
	if _, err := s.Upload(hog, hogJobs[0], thingsOf("more", 10, 900), nil); err != nil {
		t.Errorf("an upload after an abort freed staging: %v", err)
	}

	// Expiry: the hog's second job is finalized (no expiry), its first
	// takes an upload late (it expires later), the other account's job
	// and a new job of the hog are left awaiting uploads.
	clk.advance(expiry / 2)
	if _, err := s.Upload(hog, hogJobs[0], thingsOf("late", 1, 10), nil); err != nil {
		t.Fatal(err)
	}
	lateID, _ := create(hog, "scope-late")
	if _, err := s.Finalize(t.Context(), hog, hogJobs[1], nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Wait(t.Context(), hogJobs[1]); err != nil {
		t.Fatal(err)
	}
	if j, _ := s.Get(hog, hogJobs[1]); j.Status != syncjobs.StatusFinished {
		t.Fatalf("finalized job: %s", counts(j))
	}
	clk.advance(expiry/2 + time.Millisecond)
	n, err := s.ExpireIdle()
	if err != nil || n != 1 {
		t.Fatalf("ExpireIdle: %d expired, err %v; want 1 (the other account's job)", n, err)
	}
	if j, _ := s.Get(other, oid); j.Status != syncjobs.StatusAborted || !strings.HasPrefix(j.AbortReason, "expired") {
		t.Errorf("the job left awaiting uploads for the expiry: %s (%q), want ABORTED, expired", j.Status, j.AbortReason)
	}
	if got := usage(t, st, other); got != "0 jobs 0 bytes" {
		t.Errorf("the other account's usage after its job expired: %s", got)
	}
	clk.advance(expiry / 2)
	if n, err := s.ExpireIdle(); err != nil || n != 2 {
		t.Fatalf("ExpireIdle half an expiry later: %d expired, err %v; want 2 (the jobs touched half an expiry later)", n, err)
	}
	for _, id := range []string{hogJobs[0], lateID} {
		j, _ := s.Get(hog, id)
		if j.Status != syncjobs.StatusAborted {
			t.Errorf("job %s: %s, want ABORTED", id, j.Status)
		}
		var staged int
		_ = st.ScanStaged(hog, id, graph.KindEntity, "", func(string, []byte) error { staged++; return nil })
		if staged != 0 {
			t.Errorf("expired job %s keeps %d staged objects", id, staged)
		}
	}
	if j, _ := s.Get(hog, hogJobs[1]); j.Status != syncjobs.StatusFinished {
		t.Errorf("the finalized job after expiry: %s", j.Status)
	}
	if got := usage(t, st, hog); got != "0 jobs 0 bytes" {
		t.Errorf("the hog's usage once its jobs ended: %s", got)
	}
	if _, code := create(hog, "scope-again"); code != "ok" {
		t.Errorf("a job once the quota is free again: %s", code)
	}
}

// testListJobs pins ListJobs: an account's jobs of every status, in id
// order, in pages, none of another account's.
func testListJobs(t *testing.T, open Opener) {
	_, st, _ := open(t)
	var want []string
	for i, s := range []syncjobs.Status{syncjobs.StatusAwaitingUploads, syncjobs.StatusFinalizingEntities, syncjobs.StatusFinished, syncjobs.StatusAborted, syncjobs.StatusAwaitingUploads} {
		j := newJob(fmt.Sprintf("job-%d", i), s)
		j.StagedBytes = int64(100 * i)
		if err := st.PutJob(j); err != nil {
			t.Fatal(err)
		}
		o := newJob(fmt.Sprintf("job-%d", i), s)
		o.AccountID = "acct-other"
		if err := st.PutJob(o); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s %s", j.ID, s))
	}
	var got []string
	after := ""
	for range 10 {
		page, err := st.ListJobs(account, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			if j.AccountID != account {
				t.Fatalf("job %s of account %s listed", j.ID, j.AccountID)
			}
			got = append(got, fmt.Sprintf("%s %s", j.ID, j.Status))
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].ID
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("listed:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Usage counts the open jobs only: 0, 1 and 4.
	if got := usage(t, st, account); got != "3 jobs 500 bytes" {
		t.Errorf("usage: %s, want 3 jobs 500 bytes", got)
	}
}
