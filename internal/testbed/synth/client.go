package synth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// BatchSize is the most objects Sync sends in one upload request.
const BatchSize = 250

// Job statuses Sync waits for.
const (
	StatusFinished     = "FINISHED"
	StatusErrorBadData = "ERROR_BAD_DATA"
	StatusAborted      = "ABORTED"
)

// ErrJobFailed is returned, wrapped, by Sync when the job ended in
// ERROR_BAD_DATA or ABORTED; the returned Job says why.
var ErrJobFailed = errors.New("sync job failed")

// Client speaks j1ds's synchronization jobs API, as JupiterOne's
// integration SDK does.
type Client struct {
	// BaseURL is the API's base URL, e.g. "http://localhost:8080".
	BaseURL string
	// Account is sent as the JupiterOne-Account header, APIKey as the
	// bearer token.
	Account, APIKey string
	// HTTP sends the requests; http.DefaultClient when nil.
	HTTP *http.Client
}

// Job is a synchronization job as the API shows it.
type Job struct {
	ID                       string    `json:"id"`
	Status                   string    `json:"status"`
	Source                   string    `json:"source"`
	Scope                    string    `json:"scope"`
	SyncMode                 string    `json:"syncMode"`
	IntegrationInstanceID    string    `json:"integrationInstanceId,omitempty"`
	StartTimestamp           int64     `json:"startTimestamp"`
	EndTimestamp             int64     `json:"endTimestamp,omitempty"`
	NumEntitiesUploaded      int       `json:"numEntitiesUploaded"`
	NumEntitiesCreated       int       `json:"numEntitiesCreated"`
	NumEntitiesUpdated       int       `json:"numEntitiesUpdated"`
	NumEntitiesDeleted       int       `json:"numEntitiesDeleted"`
	NumRelationshipsUploaded int       `json:"numRelationshipsUploaded"`
	NumRelationshipsCreated  int       `json:"numRelationshipsCreated"`
	NumRelationshipsUpdated  int       `json:"numRelationshipsUpdated"`
	NumRelationshipsDeleted  int       `json:"numRelationshipsDeleted"`
	Error                    *APIError `json:"error,omitempty"`
}

// APIError is an error answer of the API, {"error":{"code","message"}},
// or the error of a failed job.
type APIError struct {
	Status  int    `json:"-"` // HTTP status; 0 for a job's error
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return e.Code + ": " + e.Message
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

const jobsPath = "/persister/synchronization/jobs"

// Poll intervals while waiting for a finalizing job.
const (
	pollFirst = 25 * time.Millisecond
	pollMax   = time.Second
)

// Sync runs one DIFF job for scope: it creates the job as an
// integration-managed source with integrationInstanceId scope, uploads the
// entities then the relationships in batches of at most BatchSize, finalizes
// it, and polls the job until it is FINISHED or ERROR_BAD_DATA (or ctx
// ends). It returns the job as it last saw it. A job that ends in
// ERROR_BAD_DATA or ABORTED is returned with an error wrapping
// ErrJobFailed; an error answer of the API is an *APIError. When an upload
// or the finalize fails, Sync aborts the job before returning.
func (c *Client) Sync(ctx context.Context, scope string, entities, relationships []map[string]any) (Job, error) {
	var job Job
	err := c.call(ctx, http.MethodPost, jobsPath, map[string]string{"source": "integration-managed", "integrationInstanceId": scope}, &job)
	if err != nil {
		return Job{}, fmt.Errorf("create sync job for scope %s: %w", scope, err)
	}
	if job.ID == "" {
		return Job{}, fmt.Errorf("create sync job for scope %s: the answer has no job id", scope)
	}
	base := jobsPath + "/" + job.ID
	for _, up := range []struct {
		list string
		objs []map[string]any
	}{{"entities", entities}, {"relationships", relationships}} {
		for i := 0; i < len(up.objs); i += BatchSize {
			batch := up.objs[i:min(i+BatchSize, len(up.objs))]
			if err := c.call(ctx, http.MethodPost, base+"/"+up.list, map[string]any{up.list: batch}, nil); err != nil {
				return c.abort(job, fmt.Errorf("upload %s %d to %d to job %s: %w", up.list, i, i+len(batch)-1, job.ID, err))
			}
		}
	}
	if err := c.call(ctx, http.MethodPost, base+"/finalize", struct{}{}, &job); err != nil {
		return c.abort(job, fmt.Errorf("finalize job %s: %w", job.ID, err))
	}
	wait := pollFirst
	for !terminal(job.Status) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return job, fmt.Errorf("wait for job %s (status %s): %w", job.ID, job.Status, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, pollMax)
		var next Job
		if err := c.call(ctx, http.MethodGet, base, nil, &next); err != nil {
			return job, fmt.Errorf("get job %s: %w", job.ID, err)
		}
		job = next
	}
	if job.Status != StatusFinished {
		reason := "no reason given"
		if job.Error != nil {
			reason = job.Error.Error()
		}
		return job, fmt.Errorf("job %s for scope %s ended %s (%s): %w", job.ID, scope, job.Status, reason, ErrJobFailed)
	}
	return job, nil
}

func terminal(status string) bool {
	return status == StatusFinished || status == StatusErrorBadData || status == StatusAborted
}

// abort aborts a job after err, so it does not wait for uploads forever,
// and returns err. It runs even when err came from a cancelled context.
func (c *Client) abort(job Job, err error) (Job, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if aerr := c.call(ctx, http.MethodPost, jobsPath+"/"+job.ID+"/abort", map[string]string{"reason": "synth: " + truncate(err.Error(), 300)}, &job); aerr != nil {
		return job, fmt.Errorf("%w (and abort failed: %v)", err, aerr)
	}
	return job, err
}

// call sends one request. body, when not nil, is sent as JSON; a 2xx answer
// {"job": {...}} is decoded into job when it is not nil.
func (c *Client) call(ctx context.Context, method, path string, body any, job *Job) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("JupiterOne-Account", c.Account)
	if c.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode/100 != 2 {
		var eb struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
			eb.Error.Status = res.StatusCode
			return eb.Error
		}
		code := strings.ToUpper(strings.ReplaceAll(http.StatusText(res.StatusCode), " ", "_"))
		if code == "" {
			code = "HTTP_ERROR"
		}
		return &APIError{Status: res.StatusCode, Code: code, Message: snippet(raw)}
	}
	if job == nil {
		return nil
	}
	var jb struct {
		Job *Job `json:"job"`
	}
	if err := json.Unmarshal(raw, &jb); err != nil || jb.Job == nil {
		return fmt.Errorf("answer is not {\"job\": {...}}: %s", snippet(raw))
	}
	*job = *jb.Job
	return nil
}

func snippet(b []byte) string {
	if s := strings.TrimSpace(string(b)); s != "" {
		return truncate(s, 200)
	}
	return "(empty body)"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
