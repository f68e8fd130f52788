package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/j1ds/j1ds/internal/syncjobs"
)

// jobLimits are the quotas of every account's jobs, as the operator API
// shows them.
type jobLimits struct {
	MaxOpenJobs      int   `json:"maxOpenJobs"`
	MaxStagedBytes   int64 `json:"maxStagedBytes"`
	JobExpirySeconds int64 `json:"jobExpirySeconds"`
}

// jobsPage is the answer of GET /operator/v1/accounts/{account}/jobs.
type jobsPage struct {
	Jobs []syncjobs.Job `json:"jobs"`
	// NextCursor, when set, is the cursor of the next page.
	NextCursor string         `json:"nextCursor,omitempty"`
	Usage      syncjobs.Usage `json:"usage"`
	Limits     jobLimits      `json:"limits"`
}

// listAccountJobs answers a page of an account's sync jobs, of every
// status, in id order, with what its open jobs hold against the quotas.
func (s *Server) listAccountJobs(w http.ResponseWriter, r *http.Request) {
	account := r.PathValue("account")
	q := r.URL.Query()
	limit := defaultPageSize
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > syncjobs.MaxListJobs {
			writeError(w, http.StatusBadRequest, "INVALID_LIMIT", fmt.Sprintf("limit %s must be a whole number from 1 to %d", strconv.Quote(truncate(v, 20)), syncjobs.MaxListJobs))
			return
		}
		limit = n
	}
	if _, err := s.cfg.Accounts.Account(account); err != nil {
		s.fail(w, r, err)
		return
	}
	jobs, next, err := s.cfg.Jobs.List(account, q.Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.cfg.Jobs.Usage(account)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	l := s.cfg.Jobs.Limits()
	if jobs == nil {
		jobs = []syncjobs.Job{}
	}
	writeJSON(w, http.StatusOK, jobsPage{Jobs: jobs, NextCursor: next, Usage: u,
		Limits: jobLimits{MaxOpenJobs: l.MaxOpenJobs, MaxStagedBytes: l.MaxStagedBytes, JobExpirySeconds: int64(l.JobExpiry.Seconds())}})
}

// abortAccountJob aborts an account's job that awaits uploads, as the
// account's own abort does, its reason saying an operator aborted it.
func (s *Server) abortAccountJob(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reason string `json:"reason"`
	}
	if !s.decodeJSON(w, r, &body, true) {
		return
	}
	account := r.PathValue("account")
	if _, err := s.cfg.Accounts.Account(account); err != nil {
		s.fail(w, r, err)
		return
	}
	reason := "aborted by an operator"
	if body.Reason != "" {
		reason += ": " + body.Reason
	}
	j, err := s.cfg.Jobs.Abort(account, r.PathValue("job"), reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, jobResponse{j})
}
