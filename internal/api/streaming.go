package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/failpoint"
	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
)

// Streaming is what the Data Streaming settings API needs.
type Streaming struct {
	Settings *settings.Service
	// Exporter applies saved settings and reports live status.
	Exporter interface {
		Reload(account string) error
		Status(account string) exporter.Live
	}
	// TestConnection writes body to jupiterone/.connection-test in bucket
	// with owner as the expected bucket owner.
	TestConnection func(ctx context.Context, bucket, owner string, body []byte) error
	// Explain turns a failed test into the problem the customer reads: a
	// code, a message that says what to fix (or that the fault is the
	// operator's) and who must act. The operator's detail stays in err,
	// which the API logs.
	Explain func(err error, bucket, owner string) stream.Problem
	// RequiredRegion is the region buckets must be in.
	RequiredRegion string
	// PlatformAccountID is the operator's AWS account id, for the policy.
	PlatformAccountID string
	FlushInterval     time.Duration
	// DefaultObjectSuffix ends the object keys of the accounts that chose
	// no suffix (serve's --object-suffix).
	DefaultObjectSuffix string
	Now                 func() time.Time
}

// Connection tests write to the customer's bucket: at most one at a time
// per account, and a bounded number per minute.
const (
	testsPerMinute = 10
	testTimeout    = 30 * time.Second
)

type testLimiter struct {
	mu      sync.Mutex
	running map[string]bool
	recent  map[string][]time.Time
}

func (l *testLimiter) acquire(account string, now time.Time) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running == nil {
		l.running, l.recent = map[string]bool{}, map[string][]time.Time{}
	}
	var kept []time.Time
	for _, t := range l.recent[account] {
		if now.Sub(t) < time.Minute {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		delete(l.recent, account)
	} else {
		l.recent[account] = kept
	}
	if l.running[account] || len(kept) >= testsPerMinute {
		return nil, false
	}
	l.running[account] = true
	l.recent[account] = append(kept, now)
	return func() {
		l.mu.Lock()
		delete(l.running, account)
		l.mu.Unlock()
	}, true
}

func (s *Server) streamingRoutes() {
	if s.cfg.Streaming == nil {
		return
	}
	s.requireEntitlement()
	base := "/api/v1/accounts/{account}/data-streaming"
	// An administrator can always read the settings and disable the
	// stream; enabling, testing a connection and changing the bucket need
	// the entitlement (PUT checks its body).
	s.mux.HandleFunc("GET "+base, s.streamingAdmin(false, s.getStreaming))
	s.mux.HandleFunc("PUT "+base, s.streamingAdmin(false, s.putStreaming))
	s.mux.HandleFunc("POST "+base+"/test-connection", s.streamingAdmin(true, s.testConnection))
	s.mux.HandleFunc("GET "+base+"/bucket-policy", s.streamingAdmin(false, s.bucketPolicy))
	s.mux.HandleFunc("GET "+base+"/history", s.streamingAdmin(false, s.streamingHistory))
}

// notEntitledMessage answers an administrator who asked, without the
// data-streaming entitlement, for what needs it.
const notEntitledMessage = "this account does not have the data-streaming entitlement, which enabling streaming, testing a connection and changing the bucket need: ask your JupiterOne operator to add it, then enable streaming again. Without it you can still read these settings and disable streaming"

// streamingAdmin wraps the settings API: an administrator key of the
// account, and, when entitled is set, the account's data-streaming
// entitlement.
func (s *Server) streamingAdmin(entitled bool, h accountHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(w, r, r.PathValue("account"), roleAny)
		if !ok {
			return
		}
		admin := p.key.Role == accounts.RoleAdmin
		has := p.account.Entitled(accounts.EntitlementDataStreaming)
		if !admin {
			s.authFailed(r, "admin_required", p.account.ID, p.key.ID)
		}
		switch {
		case !has && !admin:
			writeError(w, http.StatusForbidden, "NOT_ENTITLED", "this account does not have the data-streaming entitlement, and Data Streaming settings need an administrator key: ask your JupiterOne operator to add the entitlement, then use an administrator key")
		case !admin:
			writeError(w, http.StatusForbidden, "ADMIN_REQUIRED", "Data Streaming settings are for administrators only; this key has the member role: use an administrator key of the account")
		case entitled && !has:
			writeError(w, http.StatusForbidden, "NOT_ENTITLED", notEntitledMessage)
		default:
			h(w, r, p)
		}
	}
}

// streamingView is the answer of GET and PUT: the settings at the top
// level, then what the page shows beside them.
type streamingView struct {
	settings.Settings
	// ObjectSuffix is the suffix of the account's next object: its choice,
	// else DefaultObjectSuffix.
	ObjectSuffix string `json:"objectSuffix"`
	// DefaultObjectSuffix is the deployment's suffix, which an account
	// that chose none follows.
	DefaultObjectSuffix string `json:"defaultObjectSuffix"`
	// Entitled is whether the account has the data-streaming entitlement:
	// without it the stream can be disabled, not enabled.
	Entitled             bool                     `json:"entitled"`
	RequiredRegion       string                   `json:"requiredRegion"`
	BucketPolicy         s3bucket.Policy          `json:"bucketPolicy"`
	AccountBucketPolicy  s3bucket.Policy          `json:"accountBucketPolicy"`
	LastConnectionTest   *settings.ConnectionTest `json:"lastConnectionTest"`
	FlushIntervalSeconds float64                  `json:"flushIntervalSeconds"`
	Status               streamStatus             `json:"status"`
}

type streamStatus struct {
	// Health is the badge: stopped, failing, delayed or streaming
	// (exporter.HealthOf).
	Health          exporter.Health   `json:"health"`
	Enabled         bool              `json:"enabled"`
	EnabledSince    *time.Time        `json:"enabledSince"`
	LastExportTime  *time.Time        `json:"lastExportTime"`
	LastExportKey   string            `json:"lastExportKey,omitempty"`
	ObjectsExported int64             `json:"objectsExported"`
	EventsExported  int64             `json:"eventsExported"`
	PendingSince    *time.Time        `json:"pendingSince"`
	LagSeconds      float64           `json:"lagSeconds"`
	Lagging         bool              `json:"lagging"` // exporter.Lagging: waited over two flush intervals
	NextAttempt     *time.Time        `json:"nextAttempt"`
	Failures        int               `json:"failures"`
	LastError       *stream.Problem   `json:"lastError"`
	Gaps            []stream.Gap      `json:"gaps"`
	Periods         []settings.Period `json:"periods"`
	// ExportNode is the node that exports the account, in cluster mode
	// (null on one node, or while no live node holds its group).
	ExportNode *cluster.Node `json:"exportNode,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (s *Server) view(r settings.Record, entitled bool) streamingView {
	st := s.cfg.Streaming
	now := st.Now()
	live := st.Exporter.Status(r.Account)
	v := streamingView{
		Settings:             r.Settings,
		ObjectSuffix:         r.Settings.ObjectSuffix,
		DefaultObjectSuffix:  st.DefaultObjectSuffix,
		Entitled:             entitled,
		RequiredRegion:       st.RequiredRegion,
		BucketPolicy:         s3bucket.BucketPolicy(st.PlatformAccountID, r.Settings.BucketName),
		AccountBucketPolicy:  s3bucket.AccountBucketPolicy(st.PlatformAccountID, r.Settings.BucketName, []string{r.Account}),
		LastConnectionTest:   r.LastTest,
		FlushIntervalSeconds: st.FlushInterval.Seconds(),
		Status: streamStatus{
			Enabled:         r.Settings.Enabled,
			LastExportTime:  timePtr(r.Stream.LastExportAt),
			LastExportKey:   r.Stream.LastExportKey,
			ObjectsExported: r.Stream.ObjectsExported,
			EventsExported:  r.Stream.EventsExported,
			LastError:       r.Stream.LastError,
			Gaps:            r.Stream.Gaps,
			Periods:         r.Periods,
			Failures:        live.Failures,
		},
	}
	if c := s.cfg.Cluster; c != nil && r.Settings.Enabled {
		if n, ok := c.Owner(r.Account); ok {
			v.Status.ExportNode = &n
		}
		if !live.Enabled {
			// Another node exports it: what waits is read from the log.
			live.PendingSince = s.pendingSince(r.Account, r.Stream.Cursor)
		}
	}
	if r.Settings.Enabled {
		v.Status.EnabledSince = timePtr(r.Stream.EnabledAt)
		v.Status.PendingSince = timePtr(live.PendingSince)
		v.Status.NextAttempt = timePtr(live.NextAttempt)
		if !live.PendingSince.IsZero() {
			v.Status.LagSeconds = max(0, now.Sub(live.PendingSince).Seconds())
			v.Status.Lagging = exporter.Lagging(now.Sub(live.PendingSince), st.FlushInterval)
		}
	}
	v.Status.Health = exporter.HealthOf(r.Settings.Enabled, live.Failures > 0 || r.Stream.LastError != nil, v.Status.Lagging)
	if v.DefaultObjectSuffix == "" {
		v.DefaultObjectSuffix = settings.SuffixJSONL // the exporter's default
	}
	if v.ObjectSuffix == "" {
		v.ObjectSuffix = v.DefaultObjectSuffix
	}
	if v.Status.Gaps == nil {
		v.Status.Gaps = []stream.Gap{}
	}
	if v.Status.Periods == nil {
		v.Status.Periods = []settings.Period{}
	}
	return v
}

// historyView is the answer of GET .../history: the last 24 hours of the
// account's exports in fixed buckets (stream.HistoryBucketWidth), oldest
// first, the last one holding now.
type historyView struct {
	BucketSeconds float64 `json:"bucketSeconds"`
	WindowSeconds float64 `json:"windowSeconds"`
	// LagThresholdSeconds is the lag past which the stream is delayed
	// (exporter.LagFactor flush intervals).
	LagThresholdSeconds float64                `json:"lagThresholdSeconds"`
	Buckets             []stream.HistoryBucket `json:"buckets"`
}

func (s *Server) streamingHistory(w http.ResponseWriter, r *http.Request, p principal) {
	rec, err := s.cfg.Streaming.Settings.Get(p.account.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st := s.cfg.Streaming
	writeJSON(w, http.StatusOK, historyView{
		BucketSeconds:       stream.HistoryBucketWidth.Seconds(),
		WindowSeconds:       stream.HistoryWindow.Seconds(),
		LagThresholdSeconds: (exporter.LagFactor * st.FlushInterval).Seconds(),
		Buckets:             rec.Stream.HistoryAt(st.Now()),
	})
}

// pendingSince is the commit time of the account's oldest change after the
// cursor, read from the log; zero when none (or unreadable: the status is
// shown without it).
func (s *Server) pendingSince(account string, cursor uint64) time.Time {
	if s.cfg.Log == nil {
		return time.Time{}
	}
	ct, ok, err := s.cfg.Log.NextCommit(account, cursor)
	if err != nil || !ok {
		return time.Time{}
	}
	return time.UnixMicro(ct).UTC()
}

func (s *Server) getStreaming(w http.ResponseWriter, r *http.Request, p principal) {
	rec, err := s.cfg.Streaming.Settings.Get(p.account.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(rec, p.account.Entitled(accounts.EntitlementDataStreaming)))
}

// settingsBody is the body of PUT; pointers tell a missing field from a
// zero one.
type settingsBody struct {
	Enabled         *bool   `json:"enabled"`
	BucketName      *string `json:"bucketName"`
	AWSAccountID    *string `json:"awsAccountId"`
	RegionConfirmed *bool   `json:"regionConfirmed"`
	ObjectSuffix    *string `json:"objectSuffix"`
}

func (s *Server) decodeStrict(w http.ResponseWriter, r *http.Request, v any) bool {
	var raw json.RawMessage
	if !s.decodeJSON(w, r, &raw, false) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_JSON", describeJSONError(err))
		return false
	}
	return true
}

func (s *Server) putStreaming(w http.ResponseWriter, r *http.Request, p principal) {
	var b settingsBody
	if !s.decodeStrict(w, r, &b) {
		return
	}
	entitled := p.account.Entitled(accounts.EntitlementDataStreaming)
	if b.Enabled == nil && !entitled {
		writeError(w, http.StatusForbidden, "NOT_ENTITLED", notEntitledMessage)
		return
	}
	if b.Enabled == nil {
		writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", `enabled: required, true to stream or false to stop`)
		return
	}
	st := s.cfg.Streaming
	cur, err := st.Settings.Get(p.account.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A field left out keeps its saved value, so "uncheck, Save" with
	// {"enabled": false} keeps the bucket for the next enable.
	n := cur.Settings
	n.Enabled = *b.Enabled
	if b.BucketName != nil {
		n.BucketName = *b.BucketName
	}
	if b.AWSAccountID != nil {
		n.AWSAccountID = *b.AWSAccountID
	}
	if b.RegionConfirmed != nil {
		n.RegionConfirmed = *b.RegionConfirmed
	}
	if b.ObjectSuffix != nil {
		n.ObjectSuffix = *b.ObjectSuffix
	}
	// Without the entitlement an administrator may only disable, or save
	// a disabled stream as it is.
	if !entitled && (n.Enabled || n.BucketName != cur.Settings.BucketName || n.AWSAccountID != cur.Settings.AWSAccountID) {
		writeError(w, http.StatusForbidden, "NOT_ENTITLED", notEntitledMessage)
		return
	}
	// Given values are checked even when disabling: nothing invalid is
	// stored.
	if err := settings.ValidateObjectSuffix(n.ObjectSuffix); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", err.Error())
		return
	}
	if b.BucketName != nil && *b.BucketName != "" {
		if err := s3bucket.ValidateBucketName(n.BucketName); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", err.Error())
			return
		}
	}
	if b.AWSAccountID != nil && *b.AWSAccountID != "" {
		if err := s3bucket.ValidateAWSAccountID(n.AWSAccountID); err != nil {
			writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", err.Error())
			return
		}
	}
	rec, err := st.Settings.Apply(p.account.ID, n, func() (uint64, error) { return s.cfg.Log.End(p.account.ID) })
	var fe *settings.FieldError
	switch {
	case errors.As(err, &fe):
		writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", fe.Error())
		return
	case errors.Is(err, settings.ErrTestRequired):
		writeError(w, http.StatusConflict, "CONNECTION_TEST_REQUIRED", err.Error())
		return
	case errors.Is(err, settings.ErrNotEntitled):
		// Removed since the request was authenticated.
		writeError(w, http.StatusForbidden, "NOT_ENTITLED", notEntitledMessage)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	failpoint.Hit("settings-after-save")
	if err := st.Exporter.Reload(p.account.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.auditSettings(p.account.ID, p.key.ID, cur.Settings, n)
	writeJSON(w, http.StatusOK, s.view(rec, p.account.Entitled(accounts.EntitlementDataStreaming)))
}

type testResult struct {
	OK    bool            `json:"ok"`
	Error *stream.Problem `json:"error,omitempty"`
}

func (s *Server) testConnection(w http.ResponseWriter, r *http.Request, p principal) {
	var b struct {
		BucketName      string `json:"bucketName"`
		AWSAccountID    string `json:"awsAccountId"`
		RegionConfirmed bool   `json:"regionConfirmed"`
	}
	if !s.decodeStrict(w, r, &b) {
		return
	}
	for _, err := range []error{s3bucket.ValidateBucketName(b.BucketName), s3bucket.ValidateAWSAccountID(b.AWSAccountID)} {
		if err != nil {
			writeError(w, http.StatusUnprocessableEntity, "INVALID_SETTINGS", err.Error())
			return
		}
	}
	st := s.cfg.Streaming
	now := st.Now()
	release, ok := s.tests.acquire(p.account.ID, now)
	if !ok {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, "TOO_MANY_TESTS", fmt.Sprintf("a connection test is running or %d ran in the last minute; wait a minute and test again", testsPerMinute))
		return
	}
	defer release()
	body, _ := json.Marshal(map[string]string{"account": p.account.ID, "time": now.UTC().Format(time.RFC3339Nano), "purpose": "JupiterOne data streaming connection test"})
	ctx, cancel := context.WithTimeout(r.Context(), testTimeout)
	defer cancel()
	res := testResult{OK: true}
	if err := st.TestConnection(ctx, b.BucketName, b.AWSAccountID, body); err != nil {
		prob := st.Explain(err, b.BucketName, b.AWSAccountID)
		prob.At = now.UTC()
		res = testResult{Error: &prob}
		level := slog.LevelInfo // the customer's to fix; they read it
		if prob.ActionBy != stream.ActionCustomer {
			level = slog.LevelWarn // the operator's: only the log says what
		}
		s.log.Log(r.Context(), level, "connection test failed", slog.String("account", p.account.ID), slog.String("code", prob.Code),
			slog.String("action_by", prob.ActionBy), slog.String("bucket", b.BucketName), slog.Any("err", err))
	}
	if _, err := st.Settings.SaveTest(p.account.ID, settings.ConnectionTest{
		OK: res.OK, At: now.UTC(), BucketName: b.BucketName, AWSAccountID: b.AWSAccountID, Error: res.Error,
	}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
