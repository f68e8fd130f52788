package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/audit"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/syncjobs"
	"github.com/j1ds/j1ds/internal/web"
)

// DefaultMaxBody is the default limit of a request body, after gzip
// decoding. The JupiterOne SDK splits uploads at about 5 MB.
const DefaultMaxBody = 32 << 20

// Config holds what the API serves.
type Config struct {
	Graph    graph.Graph
	Log      changelog.Source
	Accounts accounts.Store
	Jobs     *syncjobs.Service
	// OperatorKey enables the operator API; empty disables it, unless
	// OperatorKeyHash is set.
	OperatorKey string
	// OperatorKeyHash is the SHA-256 of the operator key, for a key whose
	// hash alone is kept (generated on a database); used when OperatorKey
	// is empty.
	OperatorKeyHash []byte
	// MaxBody limits request bodies (after decompression); DefaultMaxBody
	// when zero.
	MaxBody int64
	// MaxBodyMemory is the budget of decoded body bytes that requests in
	// progress hold together; a body that would take more is answered 503
	// with Retry-After. DefaultMaxBodyMemory when zero.
	MaxBodyMemory int64
	// MaxRequestsPerKey is how many requests with a body one API key (the
	// operator; one remote address before authentication) may have in
	// progress; more are answered 429 with Retry-After.
	// DefaultMaxRequestsPerKey when zero.
	MaxRequestsPerKey int
	// MaxGzipRatio is the largest ratio of decoded to sent bytes of a gzip
	// body beyond its first MiB; DefaultMaxGzipRatio when zero.
	MaxGzipRatio int
	// MaxPageBytes is the budget of the objects of a list page, which
	// stops there and gives nextCursor; DefaultMaxPageBytes when zero.
	MaxPageBytes int64
	Logger       *slog.Logger
	// Registerer and Gatherer serve /metrics; metrics are off when nil.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// Ready reports whether the service can take traffic (for /readyz).
	Ready func() error
	// Unavailable reports whether an error of the stores means that their
	// database cannot be reached; such a request is answered 503
	// DATABASE_UNAVAILABLE. Nil when the stores have no database to reach.
	Unavailable func(error) bool
	// Streaming enables the Data Streaming settings API; nil leaves it off.
	Streaming *Streaming
	// Cluster, in cluster mode (--store), shows the nodes
	// (GET /operator/v1/cluster) and which node exports each account; nil
	// on the embedded store, where one process does everything.
	Cluster Cluster
	// Audit writes the audit log; nil logs it to Logger with the default
	// rate limits.
	Audit *audit.Logger
}

// Cluster is the cluster as the API shows it (cluster.Manager).
type Cluster interface {
	View(ctx context.Context) (cluster.View, error)
	Owner(account string) (cluster.Node, bool)
}

// Server is the HTTP API of j1ds.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	log     *slog.Logger
	metrics *metrics
	tests   testLimiter
	limits  *bodyLimits
	audit   *audit.Logger
	// unavailableLogged is when the last request that failed for an
	// unreachable database was logged (Unix nanoseconds).
	unavailableLogged atomic.Int64
}

// New returns the API handler.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodyMemory <= 0 {
		cfg.MaxBodyMemory = max(DefaultMaxBodyMemory, cfg.MaxBody)
	}
	if cfg.MaxRequestsPerKey <= 0 {
		cfg.MaxRequestsPerKey = DefaultMaxRequestsPerKey
	}
	if cfg.MaxGzipRatio <= 0 {
		cfg.MaxGzipRatio = DefaultMaxGzipRatio
	}
	if cfg.MaxPageBytes <= 0 {
		cfg.MaxPageBytes = DefaultMaxPageBytes
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.New(cfg.Logger, audit.Config{})
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, metrics: newMetrics(cfg.Registerer), audit: cfg.Audit}
	s.limits = newBodyLimits(cfg.MaxBodyMemory, cfg.MaxRequestsPerKey, cfg.MaxGzipRatio)
	s.limits.register(cfg.Registerer)
	s.routes()
	return s
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Gatherer != nil {
		m.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	m.HandleFunc("GET /openapi.json", serveOpenAPI)

	// Operator API.
	m.HandleFunc("POST /operator/v1/accounts", s.operator(s.createAccount))
	m.HandleFunc("GET /operator/v1/accounts", s.operator(s.listAccounts))
	m.HandleFunc("GET /operator/v1/accounts/{account}", s.operator(s.getAccount))
	m.HandleFunc("PUT /operator/v1/accounts/{account}/entitlements", s.operator(s.setEntitlements))
	m.HandleFunc("POST /operator/v1/accounts/{account}/api-keys", s.operator(s.createKey))
	m.HandleFunc("GET /operator/v1/accounts/{account}/api-keys", s.operator(s.listKeys))
	m.HandleFunc("DELETE /operator/v1/accounts/{account}/api-keys/{key}", s.operator(s.revokeKey))
	m.HandleFunc("GET /operator/v1/cluster", s.operator(s.getCluster))
	m.HandleFunc("GET /operator/v1/accounts/{account}/jobs", s.operator(s.listAccountJobs))
	m.HandleFunc("POST /operator/v1/accounts/{account}/jobs/{job}/abort", s.operator(s.abortAccountJob))

	// Synchronization jobs API, as JupiterOne's integration SDK calls it.
	const jobs = "/persister/synchronization/jobs"
	m.HandleFunc("POST "+jobs, s.syncAccount(s.createJob))
	m.HandleFunc("GET "+jobs+"/{job}", s.syncAccount(s.getJob))
	m.HandleFunc("POST "+jobs+"/{job}/entities", s.syncAccount(s.uploadEntities))
	m.HandleFunc("POST "+jobs+"/{job}/relationships", s.syncAccount(s.uploadRelationships))
	m.HandleFunc("POST "+jobs+"/{job}/upload", s.syncAccount(s.upload))
	m.HandleFunc("POST "+jobs+"/{job}/finalize", s.syncAccount(s.finalizeJob))
	m.HandleFunc("POST "+jobs+"/{job}/abort", s.syncAccount(s.abortJob))
	m.HandleFunc("POST "+jobs+"/{job}/events", s.syncAccount(s.jobEvents))

	// Single-object REST API.
	for _, k := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
		base := "/api/v1/accounts/{account}/" + plural(k)
		m.HandleFunc("POST "+base, s.pathAccount(roleAny, s.createObject(k)))
		m.HandleFunc("GET "+base, s.pathAccount(roleAny, s.listObjects(k)))
		m.HandleFunc("GET "+base+"/{id}", s.pathAccount(roleAny, s.getObject(k)))
		m.HandleFunc("PATCH "+base+"/{id}", s.pathAccount(roleAny, s.patchObject(k)))
		m.HandleFunc("DELETE "+base+"/{id}", s.pathAccount(roleAny, s.deleteObject(k)))
	}

	s.streamingRoutes()
	if s.cfg.Streaming != nil {
		web.Register(m)
	}

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no API at %s %s; see /openapi.json for the paths j1ds serves", r.Method, truncate(r.URL.Path, 200)))
	})
}

// ServeHTTP serves the API, recording metrics per route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// No answer of j1ds is for a browser to sniff as a script or a page.
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	le := &lease{l: s.limits}
	defer le.release()
	r = withLease(r, le)
	if p := r.URL.EscapedPath(); !canonicalPath(p) {
		// ServeMux would redirect to the cleaned path, which can name
		// another account ("/api/v1/accounts/a/../b/..."): refuse instead.
		writeError(rec, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no API at %s %s: a path must not hold '.', '..' or empty segments; see /openapi.json for the paths j1ds serves", r.Method, strconv.Quote(truncate(p, 200))))
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	s.metrics.observe(r, rec.status, time.Since(start))
}

// canonicalPath reports whether p is an absolute path without '.', '..'
// or empty segments (a trailing '/' is allowed).
func canonicalPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return p == "*"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.MaxBytesReader and http.ResponseController the
// connection's own writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, "NOT_READY", err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// ErrorBody is the shape of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, message
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeRaw(w http.ResponseWriter, status int, raw []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(raw)
	_, _ = w.Write([]byte("\n"))
}

// retryAfterQuota is the Retry-After (seconds) of a 429 of a sync job
// quota (TOO_MANY_OPEN_JOBS, STAGING_QUOTA_EXCEEDED).
const retryAfterQuota = "30"

// fail answers err: a known domain error with its 4xx, anything else with
// a 500 that does not leak the cause (which is logged).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var je *syncjobs.Error
	var ve *accounts.ValidationError
	var ie *graph.InputError
	var ee *graph.EndpointError
	switch {
	case errors.As(err, &je):
		if je.Status == http.StatusTooManyRequests {
			// A quota of the account's jobs: it frees as the account's
			// finalizations end or its jobs are aborted.
			w.Header().Set("Retry-After", retryAfterQuota)
		}
		writeError(w, je.Status, je.Code, je.Message)
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", ve.Error())
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", ie.Error())
	case errors.As(err, &ee):
		writeError(w, http.StatusBadRequest, "RELATIONSHIP_ENDPOINT_NOT_FOUND", ee.Error())
	case s.cfg.Unavailable != nil && s.cfg.Unavailable(err):
		if now := time.Now().UnixNano(); now-s.unavailableLogged.Load() >= int64(unavailableLogEvery) {
			s.unavailableLogged.Store(now)
			s.log.Warn("request failed: the database is unreachable (logged at most every 10s)", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		}
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", "j1ds cannot reach its database right now and reconnects on its own; try again in a few seconds. A write answered this way may have been stored: read it back, or send it again")
	case errors.Is(err, graph.ErrDiskFull):
		s.log.Error("write refused: data directory almost full", slog.Any("err", err))
		writeError(w, http.StatusInsufficientStorage, "DISK_FULL", "j1ds cannot store more data right now: its disk is almost full; "+written(err))
	case errors.Is(err, graph.ErrKindConflict):
		writeError(w, http.StatusConflict, "KEY_CONFLICT", err.Error())
	case errors.Is(err, graph.ErrBadCursor):
		writeError(w, http.StatusBadRequest, "INVALID_CURSOR", err.Error())
	case errors.Is(err, accounts.ErrAccountExists):
		writeError(w, http.StatusConflict, "ACCOUNT_EXISTS", err.Error())
	case errors.Is(err, accounts.ErrAccountNotFound):
		writeError(w, http.StatusNotFound, "ACCOUNT_NOT_FOUND", err.Error())
	case errors.Is(err, accounts.ErrKeyNotFound):
		writeError(w, http.StatusNotFound, "KEY_NOT_FOUND", err.Error())
	default:
		s.log.Error("request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "INTERNAL", "j1ds could not complete the request; it is logged on the server, try again later")
	}
}

// unavailableLogEvery spaces the log lines of requests that failed for an
// unreachable database: an outage fails every request.
const unavailableLogEvery = 10 * time.Second

// decodeJSON reads a JSON body into v, within the body limits (a slot of
// the caller, the global budget, the gzip ratio). A body for a struct
// with slice fields is decoded as it streams, one element at a time;
// others are read whole, then decoded. Empty bodies decode as {} when
// allowEmpty.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		writeError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", fmt.Sprintf("Content-Type %q is not supported; send application/json", truncate(ct, 60)))
		return false
	}
	le := leaseOf(r)
	if le == nil {
		// Outside ServeHTTP: the body's bytes are held while it is read.
		le = &lease{l: s.limits}
		defer le.release()
	}
	br, eb := s.openBody(w, r, le)
	if eb != nil {
		refuse(w, eb)
		return false
	}
	defer br.close()
	if st := streamTargetOf(v); st != nil {
		empty, err := st.decode(json.NewDecoder(br))
		if err != nil && br.err == nil {
			// A body too big, or not UTF-8, is refused as such wherever
			// its JSON went wrong, as when it is read whole.
			_, _ = io.Copy(io.Discard, br)
		}
		switch {
		case br.err != nil:
			refuse(w, br.err)
			return false
		case err != nil:
			writeError(w, http.StatusBadRequest, "INVALID_JSON", describeJSONError(err))
			return false
		case empty && !allowEmpty:
			writeError(w, http.StatusBadRequest, "INVALID_JSON", "the request body is empty; send a JSON object")
			return false
		}
		return true
	}
	b, eb := br.readAll(r.ContentLength)
	if eb != nil {
		refuse(w, eb)
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		if allowEmpty {
			return true
		}
		writeError(w, http.StatusBadRequest, "INVALID_JSON", "the request body is empty; send a JSON object")
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_JSON", describeJSONError(err))
		return false
	}
	return true
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("the body is not valid JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "the body"
		}
		return fmt.Sprintf("%s must be %s, not a JSON %s", field, jsonTypeName(te.Type.Kind().String()), te.Value)
	}
	return "the body is not valid JSON: " + err.Error()
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "ptr":
		return "an object"
	}
	return "a number"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="j1ds"`)
	writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", msg)
}

// operator wraps a handler of the operator API.
func (s *Server) operator(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.OperatorKey == "" && len(s.cfg.OperatorKeyHash) == 0 {
			writeError(w, http.StatusNotFound, "OPERATOR_API_DISABLED", "the operator API is off: start j1ds with --operator-key (or J1DS_OPERATOR_KEY) to enable it")
			return
		}
		tok := bearer(r)
		if tok == "" {
			s.audit.AuthFailure(remoteHost(r), "no_operator_key", "", "")
			unauthorized(w, "send the operator key as Authorization: Bearer <key>")
			return
		}
		var match bool
		if s.cfg.OperatorKey != "" {
			match = subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.OperatorKey)) == 1
		} else {
			h := sha256.Sum256([]byte(tok))
			match = subtle.ConstantTimeCompare(h[:], s.cfg.OperatorKeyHash) == 1
		}
		if !match {
			s.audit.AuthFailure(remoteHost(r), "wrong_operator_key", "", "")
			unauthorized(w, "the operator key is wrong; use the key j1ds was started with")
			return
		}
		if r.PathValue("account") == tok || r.PathValue("key") == tok {
			// Answers quote these path values: never echo the key.
			writeError(w, http.StatusBadRequest, "INVALID_INPUT", "the path holds the operator key; put the account id (or the API key's id) there")
			return
		}
		setCaller(r, "operator")
		h(w, r)
	}
}

type roleNeed int

const (
	roleAny roleNeed = iota
	roleAdmin
)

// principal is the authenticated caller of an account API.
type principal struct {
	key     accounts.Key
	account accounts.Account
}

type accountHandler func(w http.ResponseWriter, r *http.Request, p principal)

// authenticate checks an API key and that it belongs to account.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, account string, need roleNeed) (principal, bool) {
	tok := bearer(r)
	if tok == "" {
		s.authFailed(r, "no_api_key", account, "")
		unauthorized(w, "send an API key of the account as Authorization: Bearer <key>")
		return principal{}, false
	}
	k, err := s.cfg.Accounts.Authenticate(tok)
	if err != nil {
		if errors.Is(err, accounts.ErrUnknownKey) {
			s.authFailed(r, "unknown_api_key", account, "")
			unauthorized(w, "the API key is not valid: it was revoked or mistyped; ask an operator for a new key")
			return principal{}, false
		}
		s.fail(w, r, err)
		return principal{}, false
	}
	if account == "" {
		account = k.Account
	}
	if err := accounts.ValidateID(account); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_ACCOUNT_ID", err.Error())
		return principal{}, false
	}
	if k.Account != account {
		s.authFailed(r, "key_of_another_account", account, k.ID)
		shown := strconv.Quote(account)
		if account == tok || strings.HasPrefix(account, "j1ds_") {
			// An API key where the account id goes (J1_API_KEY and
			// J1_ACCOUNT swapped): never echo a secret.
			shown = "the account given, which looks like an API key (send the account id there, never a key)"
		}
		writeError(w, http.StatusForbidden, "FORBIDDEN", fmt.Sprintf("this API key belongs to another account, not %s; use a key of that account", shown))
		return principal{}, false
	}
	if need == roleAdmin && k.Role != accounts.RoleAdmin {
		s.authFailed(r, "admin_required", account, k.ID)
		writeError(w, http.StatusForbidden, "ADMIN_REQUIRED", "this needs an administrator key of the account; this key has the member role")
		return principal{}, false
	}
	a, err := s.cfg.Accounts.Account(account)
	if err != nil {
		s.fail(w, r, err)
		return principal{}, false
	}
	setCaller(r, "key:"+k.ID)
	return principal{key: k, account: a}, true
}

// pathAccount wraps a handler of /api/v1/accounts/{account}/...
func (s *Server) pathAccount(need roleNeed, h accountHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(w, r, r.PathValue("account"), need)
		if ok {
			h(w, r, p)
		}
	}
}

// syncAccount wraps a handler of the sync API, whose account comes from
// the JupiterOne-Account header (the key's account when absent).
func (s *Server) syncAccount(h accountHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.authenticate(w, r, r.Header.Get("JupiterOne-Account"), roleAny)
		if ok {
			h(w, r, p)
		}
	}
}

// plural names a kind's collection in REST paths.
func plural(k graph.Kind) string {
	if k == graph.KindEntity {
		return "entities"
	}
	return "relationships"
}
