package api_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// withJobQuotas serves the sync API from a Service of its own over the
// env's store, with small quotas.
func withJobQuotas(t *testing.T, o syncjobs.Options) func(*api.Config) {
	return func(c *api.Config) {
		var st syncjobs.Store
		switch s := c.Graph.(type) {
		case *pebblestore.Store:
			st = s.Jobs()
		case *pgstore.Store:
			st = s.Jobs()
		}
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		jobs, err := syncjobs.Open(c.Graph, st, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(jobs.Close)
		c.Jobs = jobs
	}
}

// TestJobQuotasAPI: over HTTP, on both backends, an account that keeps
// opening jobs and staging uploads it never finalizes is answered 429
// TOO_MANY_OPEN_JOBS and 429 STAGING_QUOTA_EXCEEDED, with messages that
// name the limit and say what to do, while another account goes on; the
// operator lists the account's jobs in pages with its usage, and aborts
// one, which frees its place.
func TestJobQuotasAPI(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			e := newEnvOn(t, backend, withJobQuotas(t, syncjobs.Options{MaxOpenJobs: 3, MaxStagedBytes: 20_000, ExpiryPoll: -1}))
			hog, other := e.newAccount(t, "acct-hog"), e.newAccount(t, "acct-other")
			pad := strings.Repeat("x", 900)
			things := func(prefix string, n int) []map[string]any {
				var out []map[string]any
				for i := range n {
					out = append(out, obj(fmt.Sprintf("%s-key-%04d", prefix, i), "quota_thing", "Thing", "pad", pad))
				}
				return out
			}
			var ids []string
			for i := range 3 {
				j := e.createJob(t, hog, "acct-hog", map[string]any{"scope": fmt.Sprintf("scope-%d", i)})
				ids = append(ids, j["id"].(string))
			}
			e.upload(t, hog, "acct-hog", ids[0], "entities", things("first", 10))

			r := e.sync(t, hog, "acct-hog", "POST", jobsPath, map[string]any{"scope": "scope-x"})
			wantError(t, r, http.StatusTooManyRequests, "TOO_MANY_OPEN_JOBS", "3 open synchronization jobs", "--max-open-jobs 3", "finalize or abort")
			if got := r.Header.Get("Retry-After"); got != "30" {
				t.Errorf("TOO_MANY_OPEN_JOBS: Retry-After %q, want 30", got)
			}
			r = e.sync(t, hog, "acct-hog", "POST", jobsPath+"/"+ids[1]+"/entities", map[string]any{"entities": things("second", 15)})
			wantError(t, r, http.StatusTooManyRequests, "STAGING_QUOTA_EXCEEDED", "20000 bytes", "--max-staged-bytes", "nothing of this upload was staged")
			if got := r.Header.Get("Retry-After"); got != "30" {
				t.Errorf("STAGING_QUOTA_EXCEEDED: Retry-After %q, want 30", got)
			}
			r = e.sync(t, hog, "acct-hog", "GET", jobsPath+"/"+ids[1], nil)
			wantStatus(t, r, http.StatusOK)
			if n := jobOf(t, r)["numEntitiesUploaded"]; n != 0.0 {
				t.Errorf("the refused upload was counted: numEntitiesUploaded %v", n)
			}
			// Another account is not affected.
			oj := e.createJob(t, other, "acct-other", map[string]any{"scope": "scope-o"})
			e.upload(t, other, "acct-other", oj["id"].(string), "entities", things("other", 15))

			// The operator's view: pages of the account's jobs, its usage
			// and the limits.
			var listed []string
			cursor := ""
			for page := 0; ; page++ {
				path := "/operator/v1/accounts/acct-hog/jobs?limit=2"
				if cursor != "" {
					path += "&cursor=" + cursor
				}
				r := e.op(t, "GET", path, nil)
				wantStatus(t, r, http.StatusOK)
				body := decode(t, r)
				for _, j := range body["jobs"].([]any) {
					listed = append(listed, j.(map[string]any)["id"].(string))
				}
				usage := body["usage"].(map[string]any)
				if usage["openJobs"] != 3.0 || usage["stagedBytes"].(float64) < 9_000 {
					t.Errorf("usage %v, want 3 open jobs holding the first upload", usage)
				}
				if l := body["limits"].(map[string]any); l["maxOpenJobs"] != 3.0 || l["maxStagedBytes"] != 20000.0 || l["jobExpirySeconds"] != 86400.0 {
					t.Errorf("limits %v", l)
				}
				next, _ := body["nextCursor"].(string)
				if next == "" {
					break
				}
				if page > 3 {
					t.Fatal("the pages do not end")
				}
				cursor = next
			}
			if len(listed) != 3 {
				t.Errorf("listed %v, want the 3 jobs", listed)
			}
			wantError(t, e.op(t, "GET", "/operator/v1/accounts/acct-hog/jobs?limit=1001", nil), http.StatusBadRequest, "INVALID_LIMIT")
			wantError(t, e.op(t, "GET", "/operator/v1/accounts/acct-hog/jobs?cursor=nope", nil), http.StatusBadRequest, "INVALID_CURSOR")
			wantError(t, e.op(t, "GET", "/operator/v1/accounts/acct-none/jobs", nil), http.StatusNotFound, "ACCOUNT_NOT_FOUND")

			// Aborting: another account's job id is not found under this
			// one; the account's own is aborted and frees its place.
			wantError(t, e.op(t, "POST", "/operator/v1/accounts/acct-hog/jobs/"+oj["id"].(string)+"/abort", nil), http.StatusNotFound, "JOB_NOT_FOUND")
			r = e.op(t, "POST", "/operator/v1/accounts/acct-hog/jobs/"+ids[0]+"/abort", map[string]any{"reason": "staging never finalized"})
			wantStatus(t, r, http.StatusOK)
			if j := jobOf(t, r); j["status"] != "ABORTED" || j["abortReason"] != "aborted by an operator: staging never finalized" {
				t.Errorf("aborted job: %v", j)
			}
			e.createJob(t, hog, "acct-hog", map[string]any{"scope": "scope-y"})
			e.upload(t, hog, "acct-hog", ids[1], "entities", things("second", 15))
			if j := jobOf(t, e.sync(t, other, "acct-other", "GET", jobsPath+"/"+oj["id"].(string), nil)); j["status"] != "AWAITING_UPLOADS" {
				t.Errorf("the other account's job: %v", j["status"])
			}
		})
	}
}
