package api_test

// The authorization matrix: every route of openapi.json (read from the
// served document, so a new route is covered the day it is documented, and
// fails here until it has an expectation) called by every kind of caller.
// Exactly the intended cells succeed; every other answers 401, 403 or 404
// with the {"error":{code,message}} shape and leaves the store as it was.
// Then the tenant boundary: one account's admin key never reads or changes
// another account's graph, settings, status or jobs.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// streamStub stands in for the exporter and for S3 behind the Data
// Streaming API. The tests that use it are about who may call that API and
// what it accepts, not about S3: TestConnection records the bucket and
// owner it was asked to test and writes nothing anywhere; it answers err.
type streamStub struct {
	mu      sync.Mutex
	tests   []string // "bucket owner" of each connection test
	reloads []string
	err     error
}

func (s *streamStub) Reload(account string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads = append(s.reloads, account)
	return nil
}

func (s *streamStub) Status(string) exporter.Live { return exporter.Live{} }

func (s *streamStub) TestConnection(_ context.Context, bucket, owner string, _ []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tests = append(s.tests, bucket+" "+owner)
	return s.err
}

func (s *streamStub) testsSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.tests)
}

// streamNow is the clock of the Data Streaming API and its settings store
// in these tests: a passing connection test stays valid for the whole test.
func streamNow() time.Time { return time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC) }

// withStreaming turns on the Data Streaming API over stub, and /metrics.
// The settings store is returned through st when it is not nil.
func withStreaming(stub *streamStub, st **settings.Service) func(*api.Config) {
	return func(c *api.Config) {
		ss := settings.New(c.Graph.(*pebblestore.Store).Settings(), streamNow)
		if st != nil {
			*st = ss
		}
		c.Streaming = &api.Streaming{
			Settings: ss, Exporter: stub, TestConnection: stub.TestConnection,
			Explain: func(err error, bucket, owner string) stream.Problem {
				return stream.Problem{Code: "CONNECTION_FAILED", Message: "the connection test failed", ActionBy: stream.ActionCustomer}
			},
			RequiredRegion: "us-east-1", PlatformAccountID: "111122223333",
			FlushInterval: time.Minute, Now: streamNow,
		}
		if c.Registerer == nil {
			reg := prometheus.NewRegistry()
			c.Registerer, c.Gatherer = reg, reg
		}
	}
}

// newAccountWith creates an account with the given entitlements through the
// operator API and returns an admin key of it.
func (e *env) newAccountWith(t *testing.T, id string, entitlements ...string) string {
	t.Helper()
	if entitlements == nil {
		entitlements = []string{}
	}
	r := e.op(t, "POST", "/operator/v1/accounts", map[string]any{"id": id, "entitlements": entitlements})
	wantStatus(t, r, http.StatusCreated)
	return e.newKey(t, id, "admin")
}

// documentedRoutes returns "METHOD /path" of every operation of the
// served openapi.json, sorted.
func documentedRoutes(t *testing.T, e *env) []string {
	t.Helper()
	r := e.do(t, "GET", "/openapi.json", nil, nil)
	wantStatus(t, r, http.StatusOK)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	var out []string
	for path, item := range doc.Paths {
		for m := range item {
			switch m {
			case "get", "put", "post", "patch", "delete", "head", "options", "trace":
				out = append(out, strings.ToUpper(m)+" "+path)
			}
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		t.Fatal("openapi.json documents no routes")
	}
	return out
}

// access is who a route is for.
type access int

const (
	accessPublic         access = iota // anyone, no key
	accessOperator                     // the operator key only
	accessAccount                      // any key (admin or member) of the account
	accessStreaming                    // an admin key of an account with the data-streaming entitlement
	accessStreamingAdmin               // an admin key of the account, entitled or not (read the settings, disable)
)

// routeSpec is the expectation of one documented route and how to call it
// successfully.
type routeSpec struct {
	access access
	// body builds a valid body for a call on account acct; nil sends none.
	body func(f *authzFixture, acct string) any
	// query is appended to the path.
	query string
}

// authzRoutes holds an expectation for every documented route. A route of
// openapi.json missing here fails TestAuthorizationMatrix.
var authzRoutes = map[string]routeSpec{
	"GET /healthz":      {access: accessPublic},
	"GET /readyz":       {access: accessPublic},
	"GET /metrics":      {access: accessPublic},
	"GET /openapi.json": {access: accessPublic},

	"POST /operator/v1/accounts": {access: accessOperator, body: func(f *authzFixture, _ string) any {
		return map[string]any{"id": f.unique("new-acct"), "entitlements": []string{}}
	}},
	"GET /operator/v1/accounts":           {access: accessOperator},
	"GET /operator/v1/cluster":            {access: accessOperator},
	"GET /operator/v1/accounts/{account}": {access: accessOperator},
	"PUT /operator/v1/accounts/{account}/entitlements": {access: accessOperator, body: func(*authzFixture, string) any {
		// Keeps the target's entitlement: the matrix runs on.
		return map[string]any{"entitlements": []string{accounts.EntitlementDataStreaming}}
	}},
	"POST /operator/v1/accounts/{account}/api-keys": {access: accessOperator, body: func(*authzFixture, string) any {
		return map[string]any{"role": "member"}
	}},
	"GET /operator/v1/accounts/{account}/api-keys":          {access: accessOperator},
	"DELETE /operator/v1/accounts/{account}/api-keys/{key}": {access: accessOperator},
	"GET /operator/v1/accounts/{account}/jobs":              {access: accessOperator},
	"POST /operator/v1/accounts/{account}/jobs/{job}/abort": {access: accessOperator, body: func(*authzFixture, string) any {
		return map[string]any{"reason": "authz"}
	}},

	"POST /persister/synchronization/jobs": {access: accessAccount, body: func(*authzFixture, string) any {
		return map[string]any{"source": "api", "scope": "authz"}
	}},
	"GET /persister/synchronization/jobs/{job}": {access: accessAccount},
	"POST /persister/synchronization/jobs/{job}/entities": {access: accessAccount, body: func(f *authzFixture, _ string) any {
		return map[string]any{"entities": []any{obj(f.unique("sync-entity"), "authz_thing", "Thing")}}
	}},
	"POST /persister/synchronization/jobs/{job}/relationships": {access: accessAccount, body: func(f *authzFixture, _ string) any {
		return map[string]any{"relationships": []any{rel(f.unique("sync-rel"), "authz_thing_has_thing", "HAS", "authz-thing-one", "authz-thing-two")}}
	}},
	"POST /persister/synchronization/jobs/{job}/upload": {access: accessAccount, body: func(f *authzFixture, _ string) any {
		return map[string]any{"entities": []any{obj(f.unique("sync-entity"), "authz_thing", "Thing")}}
	}},
	"POST /persister/synchronization/jobs/{job}/finalize": {access: accessAccount, body: func(*authzFixture, string) any { return map[string]any{} }},
	"POST /persister/synchronization/jobs/{job}/abort":    {access: accessAccount, body: func(*authzFixture, string) any { return map[string]any{"reason": "authz"} }},
	"POST /persister/synchronization/jobs/{job}/events": {access: accessAccount, body: func(*authzFixture, string) any {
		return map[string]any{"events": []any{map[string]any{"name": "step", "description": "authz"}}}
	}},

	"POST /api/v1/accounts/{account}/entities": {access: accessAccount, body: func(f *authzFixture, _ string) any {
		return obj(f.unique("rest-entity"), "authz_thing", "Thing", "n", 1)
	}},
	"GET /api/v1/accounts/{account}/entities":      {access: accessAccount},
	"GET /api/v1/accounts/{account}/entities/{id}": {access: accessAccount},
	"PATCH /api/v1/accounts/{account}/entities/{id}": {access: accessAccount, body: func(f *authzFixture, _ string) any {
		return map[string]any{"n": f.unique("v")}
	}},
	"DELETE /api/v1/accounts/{account}/entities/{id}": {access: accessAccount},
	"POST /api/v1/accounts/{account}/relationships": {access: accessAccount, body: func(f *authzFixture, _ string) any {
		return rel(f.unique("rest-rel"), "authz_thing_has_thing", "HAS", "authz-thing-one", "authz-thing-two")
	}},
	"GET /api/v1/accounts/{account}/relationships":      {access: accessAccount},
	"GET /api/v1/accounts/{account}/relationships/{id}": {access: accessAccount},
	"PATCH /api/v1/accounts/{account}/relationships/{id}": {access: accessAccount, body: func(f *authzFixture, _ string) any {
		return map[string]any{"n": f.unique("v")}
	}},
	"DELETE /api/v1/accounts/{account}/relationships/{id}": {access: accessAccount},

	"GET /api/v1/accounts/{account}/data-streaming": {access: accessStreamingAdmin},
	"PUT /api/v1/accounts/{account}/data-streaming": {access: accessStreaming, body: func(*authzFixture, string) any {
		return map[string]any{"enabled": false, "bucketName": "authz-bucket", "awsAccountId": "123456789012"}
	}},
	"POST /api/v1/accounts/{account}/data-streaming/test-connection": {access: accessStreaming, body: func(*authzFixture, string) any {
		return map[string]any{"bucketName": "authz-bucket", "awsAccountId": "123456789012", "regionConfirmed": true}
	}},
	"GET /api/v1/accounts/{account}/data-streaming/bucket-policy": {access: accessStreamingAdmin, query: "?bucket=authz-bucket"},
	"GET /api/v1/accounts/{account}/data-streaming/history":       {access: accessStreamingAdmin},
}

// authzFixture holds the accounts and keys of the matrix.
type authzFixture struct {
	e     *env
	stub  *streamStub
	st    *settings.Service
	admin map[string]string // account -> admin key
	n     int
}

const (
	tenantEntitled   = "entitled-acct" // has data-streaming
	tenantUnentitled = "plain-acct"    // has no entitlement
	tenantOther      = "other-acct"    // has data-streaming; its admin calls the others
)

func (f *authzFixture) unique(prefix string) string {
	f.n++
	return fmt.Sprintf("%s-%06d", prefix, f.n)
}

func newAuthzFixture(t *testing.T) *authzFixture {
	t.Helper()
	f := &authzFixture{stub: &streamStub{}, admin: map[string]string{}}
	f.e = newEnv(t, withStreaming(f.stub, &f.st), withCluster(t))
	f.admin[tenantEntitled] = f.e.newAccountWith(t, tenantEntitled, accounts.EntitlementDataStreaming)
	f.admin[tenantUnentitled] = f.e.newAccountWith(t, tenantUnentitled)
	f.admin[tenantOther] = f.e.newAccountWith(t, tenantOther, accounts.EntitlementDataStreaming)
	for acct, key := range f.admin {
		// The ends of the relationships the matrix creates.
		for _, k := range []string{"authz-thing-one", "authz-thing-two"} {
			r := f.e.rest(t, key, "POST", "/api/v1/accounts/"+acct+"/entities", obj(k, "authz_thing", "Thing"))
			wantStatus(t, r, http.StatusCreated)
		}
	}
	return f
}

// fill replaces the path parameters of a route pattern with values of
// acct, creating a fresh job, object or key for each call so that a call
// that succeeds does not change what the next one finds.
func (f *authzFixture) fill(t *testing.T, pattern, acct string) string {
	t.Helper()
	e := f.e
	path := strings.ReplaceAll(pattern, "{account}", acct)
	if strings.Contains(path, "{job}") {
		j, err := e.jobs.Create(acct, syncjobs.CreateRequest{Source: "api", Scope: "authz"})
		if err != nil {
			t.Fatalf("create job: %v", err)
		}
		path = strings.ReplaceAll(path, "{job}", j.ID)
	}
	if strings.Contains(path, "{id}") {
		var body any
		list := "entities"
		if strings.Contains(path, "/relationships/") {
			list = "relationships"
			body = rel(f.unique("target-rel"), "authz_thing_has_thing", "HAS", "authz-thing-one", "authz-thing-two")
		} else {
			body = obj(f.unique("target-entity"), "authz_thing", "Thing", "n", 0)
		}
		r := e.rest(t, f.admin[acct], "POST", "/api/v1/accounts/"+acct+"/"+list, body)
		wantStatus(t, r, http.StatusCreated)
		path = strings.ReplaceAll(path, "{id}", decode(t, r)["_id"].(string))
	}
	if strings.Contains(path, "{key}") {
		_, k, err := e.accts.CreateKey(acct, accounts.RoleMember)
		if err != nil {
			t.Fatalf("create key: %v", err)
		}
		path = strings.ReplaceAll(path, "{key}", k.ID)
	}
	return path
}

// stateOf is what a refused request must leave as it was: every account's
// log end, settings, keys and record, the account list, and the job of the
// path if any.
func (f *authzFixture) stateOf(t *testing.T, path string) string {
	t.Helper()
	e := f.e
	var b strings.Builder
	as, err := e.accts.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "accounts %v\n", as)
	for _, a := range as {
		rec, err := f.st.Get(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		ks, err := e.accts.Keys(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(rec)
		fmt.Fprintf(&b, "%s end %d keys %v settings %s\n", a.ID, e.end(t, a.ID), ks, js)
	}
	if i := strings.Index(path, jobsPath+"/"); i >= 0 {
		id, _, _ := strings.Cut(path[len(jobsPath)+1:], "/")
		for _, a := range as {
			if j, err := e.jobs.Get(a.ID, id); err == nil {
				js, _ := json.Marshal(j)
				fmt.Fprintf(&b, "job %s\n", js)
			}
		}
	}
	return b.String()
}

// matrixCaller is one kind of caller: the headers it sends and the account
// whose paths (or JupiterOne-Account header) it calls.
type matrixCaller struct {
	name    string
	auth    func(f *authzFixture) string // Authorization header; "" sends none
	account string
	// want gives the refusal for a route it may not call: status and code
	// (status 0: the call succeeds).
	want func(a access) (int, string)
}

func matrixCallers(t *testing.T, f *authzFixture) []matrixCaller {
	e := f.e
	member := e.newKey(t, tenantEntitled, "member")
	revoked, rk, err := e.accts.CreateKey(tenantEntitled, accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.accts.RevokeKey(tenantEntitled, rk.ID); err != nil {
		t.Fatal(err)
	}
	unauthenticated := func(a access) (int, string) {
		if a == accessPublic {
			return 0, ""
		}
		return http.StatusUnauthorized, "UNAUTHORIZED"
	}
	bearer := func(k string) func(*authzFixture) string { return func(*authzFixture) string { return "Bearer " + k } }
	return []matrixCaller{
		{"no key", func(*authzFixture) string { return "" }, tenantEntitled, unauthenticated},
		{"malformed Authorization (Basic scheme)", func(f *authzFixture) string { return "Basic " + f.admin[tenantEntitled] }, tenantEntitled, unauthenticated},
		{"malformed Authorization (Bearer, no token)", func(*authzFixture) string { return "Bearer " }, tenantEntitled, unauthenticated},
		{"bad key", bearer("j1ds_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), tenantEntitled, unauthenticated},
		{"revoked key", bearer(revoked), tenantEntitled, unauthenticated},
		{"other account's admin", func(f *authzFixture) string { return "Bearer " + f.admin[tenantOther] }, tenantEntitled, func(a access) (int, string) {
			switch a {
			case accessPublic:
				return 0, ""
			case accessOperator:
				return http.StatusUnauthorized, "UNAUTHORIZED"
			}
			return http.StatusForbidden, "FORBIDDEN"
		}},
		{"member of the account", bearer(member), tenantEntitled, func(a access) (int, string) {
			switch a {
			case accessOperator:
				return http.StatusUnauthorized, "UNAUTHORIZED"
			case accessStreaming, accessStreamingAdmin:
				return http.StatusForbidden, "ADMIN_REQUIRED"
			}
			return 0, ""
		}},
		{"admin of a non-entitled account", func(f *authzFixture) string { return "Bearer " + f.admin[tenantUnentitled] }, tenantUnentitled, func(a access) (int, string) {
			switch a {
			case accessOperator:
				return http.StatusUnauthorized, "UNAUTHORIZED"
			case accessStreaming:
				return http.StatusForbidden, "NOT_ENTITLED"
			}
			return 0, ""
		}},
		{"admin of the entitled account", func(f *authzFixture) string { return "Bearer " + f.admin[tenantEntitled] }, tenantEntitled, func(a access) (int, string) {
			if a == accessOperator {
				return http.StatusUnauthorized, "UNAUTHORIZED"
			}
			return 0, ""
		}},
		{"operator key", bearer(operatorKey), tenantEntitled, func(a access) (int, string) {
			if a == accessAccount || a == accessStreaming || a == accessStreamingAdmin {
				return http.StatusUnauthorized, "UNAUTHORIZED"
			}
			return 0, ""
		}},
	}
}

func TestAuthorizationMatrix(t *testing.T) {
	f := newAuthzFixture(t)
	e := f.e
	routes := documentedRoutes(t, e)
	for _, rt := range routes {
		if _, ok := authzRoutes[rt]; !ok {
			t.Errorf("route %s of openapi.json has no expectation in authzRoutes: add who may call it", rt)
		}
	}
	for rt := range authzRoutes {
		if !slices.Contains(routes, rt) {
			t.Errorf("authzRoutes expects %s, which openapi.json does not document", rt)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	callers := matrixCallers(t, f)
	succeeded := map[string][]string{} // route -> callers that succeeded
	for _, rt := range routes {
		spec := authzRoutes[rt]
		method, pattern, _ := strings.Cut(rt, " ")
		for _, c := range callers {
			t.Run(rt+"/"+c.name, func(t *testing.T) {
				path := f.fill(t, pattern, c.account) + spec.query
				var body any
				if spec.body != nil {
					body = spec.body(f, c.account)
				}
				h := hdr{}
				if a := c.auth(f); a != "" {
					h = append(h, "Authorization", a)
				}
				if strings.HasPrefix(pattern, jobsPath) {
					h = append(h, "JupiterOne-Account", c.account)
				}
				wantStatusCode, wantCode := c.want(spec.access)
				before := f.stateOf(t, path)
				r := e.do(t, method, path, body, h)
				if wantStatusCode == 0 {
					if r.Status < 200 || r.Status > 299 {
						t.Fatalf("%s %s as %s: got %s, want 2xx", method, path, c.name, r)
					}
					succeeded[rt] = append(succeeded[rt], c.name)
					return
				}
				wantError(t, r, wantStatusCode, wantCode)
				if wantStatusCode == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
				if after := f.stateOf(t, path); after != before {
					t.Errorf("a refused %s %s changed the store:\nbefore:\n%s\nafter:\n%s", method, path, before, after)
				}
			})
		}
	}
	// Only the entitled admin's call reached the connection test.
	if got, want := f.stub.testsSeen(), []string{"authz-bucket 123456789012"}; !reflect.DeepEqual(got, want) {
		t.Errorf("connection tests run: %q, want %q (the entitled admin's only)", got, want)
	}
	if testing.Verbose() {
		for _, rt := range routes {
			t.Logf("%-70s %s", rt, strings.Join(succeeded[rt], ", "))
		}
	}
}

// tenantSnapshot is everything of account a that another tenant must not
// change: its log, objects (through the store), jobs and settings.
func tenantSnapshot(t *testing.T, e *env, st *settings.Service, a string, jobIDs []string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "end %d\n", e.end(t, a))
	for _, k := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
		items, _, err := e.store.List(a, k, "", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			fmt.Fprintf(&b, "%s\n", it)
		}
	}
	for _, id := range jobIDs {
		j, err := e.jobs.Get(a, id)
		if err != nil {
			t.Fatalf("job %s of %s: %v", id, a, err)
		}
		js, _ := json.Marshal(j)
		fmt.Fprintf(&b, "job %s\n", js)
	}
	rec, err := st.Get(a)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(rec)
	fmt.Fprintf(&b, "settings %s\n", js)
	ks, err := e.accts.Keys(a)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "keys %v\n", ks)
	return b.String()
}

func TestTenantIsolation(t *testing.T) {
	stub := &streamStub{}
	var st *settings.Service
	e := newEnv(t, withStreaming(stub, &st))
	const a, b = "tenant-a", "tenant-b"
	keyA := e.newAccountWith(t, a, accounts.EntitlementDataStreaming)
	keyB := e.newAccountWith(t, b, accounts.EntitlementDataStreaming)
	memberB := e.newKey(t, b, "member")
	routes := documentedRoutes(t, e)

	// Tenant A: objects, an open job with uploads, a finalized job,
	// streaming enabled to its bucket.
	baseA := "/api/v1/accounts/" + a
	var entityA, relA string
	for i, k := range []string{"tenant-a-thing-1", "tenant-a-thing-2"} {
		r := e.rest(t, keyA, "POST", baseA+"/entities", obj(k, "tenant_thing", "Thing", "secret", "of A"))
		wantStatus(t, r, http.StatusCreated)
		if i == 0 {
			entityA = decode(t, r)["_id"].(string)
		}
	}
	r := e.rest(t, keyA, "POST", baseA+"/relationships", rel("tenant-a-rel-1", "tenant_thing_has_thing", "HAS", "tenant-a-thing-1", "tenant-a-thing-2"))
	wantStatus(t, r, http.StatusCreated)
	relA = decode(t, r)["_id"].(string)
	open := e.createJob(t, keyA, a, map[string]any{"source": "api", "scope": "tenant-a"})["id"].(string)
	e.upload(t, keyA, a, open, "entities", []map[string]any{obj("tenant-a-staged-1", "tenant_thing", "Thing")})
	done := e.createJob(t, keyA, a, map[string]any{"source": "api", "scope": "tenant-a-done"})["id"].(string)
	e.upload(t, keyA, a, done, "entities", []map[string]any{obj("tenant-a-synced-1", "tenant_thing", "Thing")})
	e.finalize(t, keyA, a, done, nil)
	settingsA := map[string]any{"bucketName": "tenant-a-bucket", "awsAccountId": "111111111111", "regionConfirmed": true}
	r = e.rest(t, keyA, "POST", baseA+"/data-streaming/test-connection", settingsA)
	wantStatus(t, r, http.StatusOK)
	settingsA["enabled"] = true
	r = e.rest(t, keyA, "PUT", baseA+"/data-streaming", settingsA)
	wantStatus(t, r, http.StatusOK)
	jobsA := []string{open, done}
	before := tenantSnapshot(t, e, st, a, jobsA)
	testsBefore := len(stub.testsSeen())

	// bodyFor is a body that would be valid for A; B's answers must not
	// depend on it being wrong.
	bodyFor := func(rt string) any {
		spec := authzRoutes[rt]
		if spec.body == nil {
			return nil
		}
		return spec.body(&authzFixture{n: 900000}, a)
	}
	fillA := func(pattern string) string {
		p := strings.ReplaceAll(pattern, "{account}", a)
		p = strings.ReplaceAll(p, "{job}", open)
		if strings.Contains(p, "/relationships/") {
			return strings.ReplaceAll(p, "{id}", relA)
		}
		return strings.ReplaceAll(p, "{id}", entityA)
	}

	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		spec, ok := authzRoutes[rt]
		if !ok || spec.access == accessPublic || spec.access == accessOperator {
			continue
		}
		for _, key := range []struct{ name, key string }{{"admin", keyB}, {"member", memberB}} {
			if strings.HasPrefix(pattern, jobsPath) {
				// B's key with A in the JupiterOne-Account header.
				t.Run(rt+"/B "+key.name+" with A's header", func(t *testing.T) {
					r := e.sync(t, key.key, a, method, fillA(pattern), bodyFor(rt))
					wantError(t, r, http.StatusForbidden, "FORBIDDEN", `"tenant-a"`)
				})
				if strings.Contains(pattern, "{job}") {
					// B's own account, A's job id: no such job in B.
					t.Run(rt+"/B "+key.name+" on A's job id", func(t *testing.T) {
						r := e.sync(t, key.key, "", method, fillA(pattern), bodyFor(rt))
						wantError(t, r, http.StatusNotFound, "JOB_NOT_FOUND")
					})
				}
				continue
			}
			// B's key on A's paths.
			t.Run(rt+"/B "+key.name+" on A's path", func(t *testing.T) {
				r := e.rest(t, key.key, method, fillA(pattern), bodyFor(rt))
				wantError(t, r, http.StatusForbidden, "FORBIDDEN", `"tenant-a"`)
			})
			// B's own path with A's object ids: not there.
			if strings.Contains(pattern, "{id}") {
				t.Run(rt+"/B "+key.name+" on A's object id", func(t *testing.T) {
					p := strings.Replace(fillA(pattern), "/accounts/"+a+"/", "/accounts/"+b+"/", 1)
					r := e.rest(t, key.key, method, p, bodyFor(rt))
					wantError(t, r, http.StatusNotFound, "NOT_FOUND")
				})
			}
		}
	}
	// B's views of its own account show nothing of A.
	if items := e.listAll(t, keyB, "/api/v1/accounts/"+b+"/entities"); len(items) != 0 {
		t.Errorf("B lists A's entities: %v", keysOf(items))
	}
	r = e.rest(t, keyB, "GET", "/api/v1/accounts/"+b+"/data-streaming", nil)
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(string(r.Body), "tenant-a") {
		t.Errorf("B's Data Streaming settings mention tenant A: %s", r.Body)
	}
	// B may create an object with A's key in its own account: a different
	// object, and A's is untouched.
	r = e.rest(t, keyB, "POST", "/api/v1/accounts/"+b+"/entities", obj("tenant-a-thing-1", "tenant_thing", "Thing", "secret", "of B"))
	wantStatus(t, r, http.StatusCreated)
	if id := decode(t, r)["_id"]; id == entityA {
		t.Errorf("B's object has A's id %s", id)
	}

	if after := tenantSnapshot(t, e, st, a, jobsA); after != before {
		t.Errorf("tenant B changed tenant A:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := len(stub.testsSeen()); n != testsBefore {
		t.Errorf("tenant B ran %d connection tests for A's account", n-testsBefore)
	}
	if rec, _ := st.Get(a); !rec.Settings.Enabled || rec.Settings.BucketName != "tenant-a-bucket" {
		t.Errorf("A's streaming settings changed: %+v", rec.Settings)
	}
}
