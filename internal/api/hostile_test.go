package api_test

// Hostile input: bodies too big (plainly or as a gzip bomb), too deep or
// too long, bytes that are not UTF-8, NUL bytes, huge headers, paths that
// try to leave their account, and bodies that are not JSON. Each is
// answered with a 4xx whose error names the problem, and leaves nothing
// behind: the account's log end, objects, job and settings are as before.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/settings"
)

const hostileMaxBody = 64 << 10

// hostileEnv is a server with a 64 KiB body limit and the Data Streaming
// API, an entitled account with an admin key, an open job and an entity.
type hostileEnv struct {
	*env
	st     *settings.Service
	key    string
	job    string
	entity string // id of an entity of the account
	base   string // /api/v1/accounts/<account>
}

const hostileAcct = "hostile-acct"

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	return newHostileEnvMax(t, hostileMaxBody)
}

func newHostileEnvMax(t *testing.T, maxBody int64) *hostileEnv {
	t.Helper()
	h := &hostileEnv{base: "/api/v1/accounts/" + hostileAcct}
	h.env = newEnv(t, func(c *api.Config) { c.MaxBody = maxBody }, withStreaming(&streamStub{}, &h.st))
	h.key = h.newAccountWith(t, hostileAcct, accounts.EntitlementDataStreaming)
	h.job = h.createJob(t, h.key, hostileAcct, map[string]any{"source": "api", "scope": "hostile"})["id"].(string)
	r := h.rest(t, h.key, "POST", h.base+"/entities", obj("hostile-thing-0001", "hostile_thing", "Thing", "n", 1))
	wantStatus(t, r, http.StatusCreated)
	h.entity = decode(t, r)["_id"].(string)
	return h
}

// snapshot is what a refused request must not change.
func (h *hostileEnv) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "end %d\n", h.end(t, hostileAcct))
	for _, k := range []graph.Kind{graph.KindEntity, graph.KindRelationship} {
		items, _, err := h.store.List(hostileAcct, k, "", "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			fmt.Fprintf(&b, "%s\n", it)
		}
	}
	j, err := h.jobs.Get(hostileAcct, h.job)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(j)
	rec, err := h.st.Get(hostileAcct)
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := json.Marshal(rec)
	as, err := h.accts.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "job %s\nsettings %s\naccounts %v\n", js, rs, as)
	return b.String()
}

// bodyRoute is a route that reads a JSON body.
type bodyRoute struct {
	name, method, path string
	sync               bool // a sync API route: sends JupiterOne-Account
	operator           bool
}

func (h *hostileEnv) bodyRoutes() []bodyRoute {
	jp := jobsPath + "/" + h.job
	return []bodyRoute{
		{"create job", "POST", jobsPath, true, false},
		{"upload", "POST", jp + "/upload", true, false},
		{"upload entities", "POST", jp + "/entities", true, false},
		{"upload relationships", "POST", jp + "/relationships", true, false},
		{"job events", "POST", jp + "/events", true, false},
		{"create entity", "POST", h.base + "/entities", false, false},
		{"create relationship", "POST", h.base + "/relationships", false, false},
		{"patch entity", "PATCH", h.base + "/entities/" + h.entity, false, false},
		{"put settings", "PUT", h.base + "/data-streaming", false, false},
		{"test connection", "POST", h.base + "/data-streaming/test-connection", false, false},
		{"create account", "POST", "/operator/v1/accounts", false, true},
		{"set entitlements", "PUT", "/operator/v1/accounts/" + hostileAcct + "/entitlements", false, true},
		{"create key", "POST", "/operator/v1/accounts/" + hostileAcct + "/api-keys", false, true},
	}
}

// send sends body (raw bytes) to rt with the right key and extra headers.
func (h *hostileEnv) send(t *testing.T, rt bodyRoute, body []byte, extra ...string) response {
	t.Helper()
	key := h.key
	if rt.operator {
		key = operatorKey
	}
	hd := hdr{"Authorization", "Bearer " + key}
	if rt.sync {
		hd = append(hd, "JupiterOne-Account", hostileAcct)
	}
	return h.do(t, rt.method, rt.path, body, append(hd, extra...))
}

// refused checks a 4xx answer with its code and message, and that the
// store did not change.
func (h *hostileEnv) refused(t *testing.T, before string, r response, status int, code string, substrs ...string) {
	t.Helper()
	wantError(t, r, status, code, substrs...)
	if after := h.snapshot(t); after != before {
		t.Errorf("a refused request changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bigEntities is a valid upload body of about n bytes.
func bigEntities(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"entities":[`)
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"_key":"big-entity-%06d","_type":"hostile_thing","_class":"Thing","pad":"%s"}`, i, strings.Repeat("x", 200))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func TestHostileOversizeBodies(t *testing.T) {
	h := newHostileEnv(t)
	plain := bigEntities(hostileMaxBody + 1)
	plainGz := gzipBytes(t, plain)
	// A gzip bomb: 4 MiB of zeros in a JSON string, a few KiB
	// compressed; the server must stop reading at the limit.
	bomb := gzipBytes(t, append(append([]byte(`{"entities":[{"_key":"`), make([]byte, 4<<20)...), `"}]}`...))
	if len(bomb) > 16<<10 {
		t.Fatalf("the bomb is %d bytes compressed", len(bomb))
	}
	for _, rt := range h.bodyRoutes() {
		t.Run(rt.name, func(t *testing.T) {
			before := h.snapshot(t)
			r := h.send(t, rt, plain)
			h.refused(t, before, r, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("exceeds %d bytes", hostileMaxBody))
			r = h.send(t, rt, plainGz, "Content-Encoding", "gzip")
			h.refused(t, before, r, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("exceeds %d bytes", hostileMaxBody))
			r = h.send(t, rt, bomb, "Content-Encoding", "gzip")
			h.refused(t, before, r, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", fmt.Sprintf("exceeds %d bytes", hostileMaxBody))
		})
	}
	// A body of unknown length (chunked) is cut off the same way.
	t.Run("chunked", func(t *testing.T) {
		before := h.snapshot(t)
		req, _ := http.NewRequest("POST", h.srv.URL+h.base+"/entities", io.MultiReader(bytes.NewReader(plain)))
		req.Header.Set("Authorization", "Bearer "+h.key)
		req.Header.Set("Content-Type", "application/json")
		res, err := h.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		h.refused(t, before, response{res.StatusCode, res.Header, b}, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	})
	// Other encodings and broken gzip.
	t.Run("encodings", func(t *testing.T) {
		before := h.snapshot(t)
		rt := h.bodyRoutes()[1]
		r := h.send(t, rt, []byte(`{"entities":[]}`), "Content-Encoding", "br")
		h.refused(t, before, r, http.StatusUnsupportedMediaType, "UNSUPPORTED_ENCODING", `"br"`)
		r = h.send(t, rt, []byte(`{"entities":[]}`), "Content-Encoding", "gzip")
		h.refused(t, before, r, http.StatusBadRequest, "INVALID_BODY", "not gzip")
		trunc := gzipBytes(t, []byte(`{"entities":[]}`))
		r = h.send(t, rt, trunc[:len(trunc)-6], "Content-Encoding", "gzip")
		h.refused(t, before, r, http.StatusBadRequest, "INVALID_BODY", "could not read")
	})
}

func TestHostileNesting(t *testing.T) {
	h := newHostileEnvMax(t, 1<<20)
	deepArrays := []byte(strings.Repeat("[", 100000))
	deepObjects := []byte(strings.Repeat(`{"a":`, 100000))
	balanced := []byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000))
	for _, rt := range h.bodyRoutes() {
		t.Run(rt.name, func(t *testing.T) {
			before := h.snapshot(t)
			for _, body := range [][]byte{deepArrays, deepObjects, balanced} {
				r := h.send(t, rt, body)
				h.refused(t, before, r, http.StatusBadRequest, "INVALID_JSON")
			}
		})
	}
	// Nesting inside an object: properties are flat, and the _rawData the
	// SDK sends (dropped) may nest only so deep.
	deepRaw := `{"_key":"nested-thing-0001","_type":"hostile_thing","_class":"Thing","_rawData":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`
	for _, tc := range []struct {
		name, body, substr string
	}{
		{"array in array", `{"_key":"nested-thing-0001","_type":"hostile_thing","_class":"Thing","p":[[1]]}`, `"p": item 0 is an array`},
		{"object property", `{"_key":"nested-thing-0001","_type":"hostile_thing","_class":"Thing","p":{"q":1}}`, `"p": is a nested object`},
		{"deep _rawData", deepRaw, "nested deeper than 64 levels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot(t)
			r := h.rest(t, h.key, "POST", h.base+"/entities", tc.body)
			h.refused(t, before, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", tc.substr)
			r = h.sync(t, h.key, hostileAcct, "POST", jobsPath+"/"+h.job+"/upload", `{"entities":[`+tc.body+`]}`)
			h.refused(t, before, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", tc.substr)
		})
	}
}

func TestHostileHugeArrays(t *testing.T) {
	h := newHostileEnv(t)
	before := h.snapshot(t)
	jp := jobsPath + "/" + h.job
	// More objects than one upload may hold.
	many := `{"entities":[` + strings.TrimSuffix(strings.Repeat("{},", 10001), ",") + `]}`
	r := h.sync(t, h.key, hostileAcct, "POST", jp+"/entities", many)
	h.refused(t, before, r, http.StatusRequestEntityTooLarge, "TOO_MANY_OBJECTS", "10001", "10000")
	// A property array longer than allowed.
	long := `{"_key":"array-thing-0001","_type":"hostile_thing","_class":"Thing","p":[` + strings.TrimSuffix(strings.Repeat("1,", 10001), ",") + `]}`
	r = h.rest(t, h.key, "POST", h.base+"/entities", long)
	h.refused(t, before, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", `"p": array has more than 10000 items`)
	// Too many events.
	ev := `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"name":"e","description":"d"},`, 1001), ",") + `]}`
	r = h.sync(t, h.key, hostileAcct, "POST", jp+"/events", ev)
	h.refused(t, before, r, http.StatusRequestEntityTooLarge, "TOO_MANY_EVENTS", "1001")
	// One bad object among good ones: the whole upload is refused.
	mixed := `{"entities":[` + validEntity + `,{"_key":"mixed-entity-0002","_type":"hostile_thing","_class":"Thing"},{"_key":"x"}]}`
	r = h.sync(t, h.key, hostileAcct, "POST", jp+"/entities", mixed)
	h.refused(t, before, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", "_key")
}

func TestHostileUTF8AndNUL(t *testing.T) {
	h := newHostileEnv(t)
	ent := func(key, extra string) string {
		return `{"_key":"` + key + `","_type":"hostile_thing","_class":"Thing"` + extra + `}`
	}
	for _, tc := range []struct {
		name, body, code string
		substrs          []string
	}{
		{"invalid UTF-8 in _key", ent("bad-utf8-\xff\xfe-key", ""), "INVALID_JSON", []string{"not UTF-8 at byte"}},
		{"invalid UTF-8 in a value", ent("bad-utf8-value-01", ",\"name\":\"a\xc3\""), "INVALID_JSON", []string{"not UTF-8"}},
		{"invalid UTF-8 in a name", ent("bad-utf8-name-001", ",\"na\x80me\":\"a\""), "INVALID_JSON", []string{"not UTF-8"}},
		{"overlong encoding", ent("bad-utf8-overlong", ",\"name\":\"\xc0\xaf\""), "INVALID_JSON", []string{"not UTF-8"}},
		{"surrogate half", ent("bad-utf8-surrog-1", ",\"name\":\"\xed\xa0\x80\""), "INVALID_JSON", []string{"not UTF-8"}},
		{"raw NUL in a value", ent("raw-nul-value-001", ",\"name\":\"a\x00b\""), "INVALID_JSON", []string{"invalid character"}},
		{"raw NUL in a key", ent("raw-nul-\x00-key-01", ""), "INVALID_JSON", []string{"invalid character"}},
		{"escaped NUL in _key", ent(`esc-nul-\u0000-key-01`, ""), "INVALID_GRAPH_OBJECT", []string{"_key", "control character"}},
		{"escaped NUL in _type", `{"_key":"esc-nul-type-0001","_type":"hostile\u0000thing","_class":"Thing"}`, "INVALID_GRAPH_OBJECT", []string{"_type", "control character"}},
		{"escaped NUL in _class", `{"_key":"esc-nul-class-001","_type":"hostile_thing","_class":"Th\u0000ing"}`, "INVALID_GRAPH_OBJECT", []string{"_class", "control character"}},
		{"escaped NUL in a name", ent("esc-nul-name-0001", `,"na\u0000me":"a"`), "INVALID_GRAPH_OBJECT", []string{"property name", "control character"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot(t)
			r := h.rest(t, h.key, "POST", h.base+"/entities", tc.body)
			h.refused(t, before, r, http.StatusBadRequest, tc.code, tc.substrs...)
			r = h.sync(t, h.key, hostileAcct, "POST", jobsPath+"/"+h.job+"/upload", `{"entities":[`+tc.body+`]}`)
			h.refused(t, before, r, http.StatusBadRequest, tc.code, tc.substrs...)
			if strings.Contains(tc.name, "UTF-8") {
				r = h.rest(t, h.key, "PATCH", h.base+"/entities/"+h.entity, "{\"na\xffme\":\"a\"}")
				h.refused(t, before, r, http.StatusBadRequest, tc.code, tc.substrs...)
			}
		})
	}
	// The sync API takes the scope from the job; REST checks _scope.
	t.Run("escaped NUL in _scope", func(t *testing.T) {
		before := h.snapshot(t)
		r := h.rest(t, h.key, "POST", h.base+"/entities", ent("esc-nul-scope-001", `,"_scope":"a\u0000b"`))
		h.refused(t, before, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", "_scope", "control character")
	})
	// An escaped NUL inside a property value is data, kept as sent.
	t.Run("escaped NUL in a value is kept", func(t *testing.T) {
		r := h.rest(t, h.key, "POST", h.base+"/entities", ent("esc-nul-value-001", `,"name":"a\u0000b"`))
		wantStatus(t, r, http.StatusCreated)
		if got := decode(t, r)["name"]; got != "a\x00b" {
			t.Errorf("name = %q, want %q", got, "a\x00b")
		}
	})
	// NUL and friends in account ids and job ids.
	for _, tc := range []struct {
		name, method, path, header string
		status                     int
		code                       string
	}{
		{"NUL in the path's account", "GET", "/api/v1/accounts/hostile%00acct/entities", "", 400, "INVALID_ACCOUNT_ID"},
		{"NUL in the job id", "GET", jobsPath + "/%00", hostileAcct, 404, "JOB_NOT_FOUND"},
		{"invalid UTF-8 in the path's account", "GET", "/api/v1/accounts/%ff%fe/entities", "", 400, "INVALID_ACCOUNT_ID"},
		{"invalid UTF-8 in the account header", "POST", jobsPath, "hostile-\xff", 400, "INVALID_ACCOUNT_ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot(t)
			hd := hdr{"Authorization", "Bearer " + h.key}
			if tc.header != "" {
				hd = append(hd, "JupiterOne-Account", tc.header)
			}
			var body any
			if tc.method == "POST" {
				body = map[string]any{"source": "api"}
			}
			r := h.do(t, tc.method, tc.path, body, hd)
			h.refused(t, before, r, tc.status, tc.code)
		})
	}
	// A NUL in a header: net/http refuses the request before j1ds sees it.
	t.Run("NUL in the account header", func(t *testing.T) {
		before := h.snapshot(t)
		status := rawRequest(t, h.srv.Listener.Addr().String(),
			"POST "+jobsPath+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+h.key+"\r\nJupiterOne-Account: hostile\x00acct\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
		if status != http.StatusBadRequest {
			t.Errorf("got HTTP %d, want 400", status)
		}
		if after := h.snapshot(t); after != before {
			t.Errorf("store changed:\n%s\n%s", before, after)
		}
	})
}

// rawRequest writes req on a new connection and returns the answer's
// status.
func rawRequest(t *testing.T, addr, req string) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestHostileLongHeaders(t *testing.T) {
	h := newHostileEnv(t)
	long := strings.Repeat("a", 200<<10)
	before := h.snapshot(t)
	for _, tc := range []struct {
		name   string
		hd     hdr
		status int
		code   string
	}{
		{"long key", hdr{"Authorization", "Bearer j1ds_" + long, "JupiterOne-Account", hostileAcct}, 401, "UNAUTHORIZED"},
		{"long scheme", hdr{"Authorization", long, "JupiterOne-Account", hostileAcct}, 401, "UNAUTHORIZED"},
		{"long account header", hdr{"Authorization", "Bearer " + h.key, "JupiterOne-Account", long}, 400, "INVALID_ACCOUNT_ID"},
		{"long content type", hdr{"Authorization", "Bearer " + h.key, "JupiterOne-Account", hostileAcct, "Content-Type", "text/" + long}, 415, "UNSUPPORTED_MEDIA_TYPE"},
		{"long content encoding", hdr{"Authorization", "Bearer " + h.key, "JupiterOne-Account", hostileAcct, "Content-Encoding", long}, 415, "UNSUPPORTED_ENCODING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, "POST", jobsPath, map[string]any{"source": "api"}, tc.hd)
			h.refused(t, before, r, tc.status, tc.code)
			// The answer does not echo the value in full.
			if len(r.Body) > 1024 {
				t.Errorf("answer is %d bytes: %.300s...", len(r.Body), r.Body)
			}
		})
	}
	// A long path.
	r := h.rest(t, h.key, "GET", h.base+"/entities/"+long, nil)
	h.refused(t, before, r, http.StatusNotFound, "NOT_FOUND")
	if len(r.Body) > 1024 {
		t.Errorf("answer is %d bytes", len(r.Body))
	}
	r = h.rest(t, h.key, "GET", "/no/such/"+long, nil)
	h.refused(t, before, r, http.StatusNotFound, "NOT_FOUND")
	if len(r.Body) > 1024 {
		t.Errorf("answer is %d bytes", len(r.Body))
	}
}

func TestHostilePathTraversal(t *testing.T) {
	h := newHostileEnv(t)
	other := h.newAccountWith(t, "victim-acct", accounts.EntitlementDataStreaming)
	r := h.rest(t, other, "POST", "/api/v1/accounts/victim-acct/entities", obj("victim-thing-0001", "hostile_thing", "Thing"))
	wantStatus(t, r, http.StatusCreated)
	victimEnd := h.end(t, "victim-acct")
	// A client that shows redirects instead of following them.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(t *testing.T, method, rawPath string, body string, hd ...string) response {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, h.srv.URL+"/", rd)
		if err != nil {
			t.Fatal(err)
		}
		// Opaque keeps the path exactly as written: no client-side
		// cleaning or re-escaping.
		req.URL.Opaque = rawPath
		req.Header.Set("Authorization", "Bearer "+h.key)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hd); i += 2 {
			req.Header.Set(hd[i], hd[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{res.StatusCode, res.Header, b}
	}
	ent := `{"_key":"traversal-thing-01","_type":"hostile_thing","_class":"Thing"}`
	for _, tc := range []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"encoded dots and slash in account", "POST", "/api/v1/accounts/%2e%2e%2fvictim-acct/entities", 400, "INVALID_ACCOUNT_ID"},
		{"encoded slash in account", "POST", "/api/v1/accounts/hostile-acct%2fvictim-acct/entities", 400, "INVALID_ACCOUNT_ID"},
		{"encoded backslash in account", "POST", "/api/v1/accounts/hostile-acct%5c..%5cvictim-acct/entities", 400, "INVALID_ACCOUNT_ID"},
		{"dots in account", "POST", "/api/v1/accounts/..%2fvictim-acct/entities", 400, "INVALID_ACCOUNT_ID"},
		{"double-encoded", "POST", "/api/v1/accounts/%252e%252e%252fvictim-acct/entities", 400, "INVALID_ACCOUNT_ID"},
		{"colon in account", "POST", "/api/v1/accounts/hostile-acct:victim-acct/entities", 400, "INVALID_ACCOUNT_ID"},
		{"equals in account", "POST", "/api/v1/accounts/accountId=victim-acct/entities", 400, "INVALID_ACCOUNT_ID"},
		{"a/b account", "POST", "/api/v1/accounts/a/b/entities", 404, "NOT_FOUND"},
		{"dot-dot segment", "POST", "/api/v1/accounts/hostile-acct/../victim-acct/entities", 404, "NOT_FOUND"},
		{"dot segment", "POST", "/api/v1/accounts/./victim-acct/entities", 404, "NOT_FOUND"},
		{"double slash", "POST", "/api/v1/accounts//victim-acct/entities", 404, "NOT_FOUND"},
		{"encoded slash in id", "GET", "/api/v1/accounts/hostile-acct/entities/..%2f..%2fvictim-acct", 404, "NOT_FOUND"},
		{"dot-dot id", "GET", "/api/v1/accounts/hostile-acct/entities/..", 404, "NOT_FOUND"},
		{"traversal job id", "GET", jobsPath + "/..%2f..%2fvictim", 404, "JOB_NOT_FOUND"},
		{"dot-dot job id", "POST", jobsPath + "/../jobs", 404, "NOT_FOUND"},
		{"encoded traversal in operator account", "GET", "/operator/v1/accounts/..%2fhostile-acct", 400, "INVALID_INPUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := h.snapshot(t)
			body := ""
			if tc.method == "POST" {
				body = ent
			}
			hd := []string{"JupiterOne-Account", hostileAcct}
			if strings.HasPrefix(tc.path, "/operator/") {
				hd = append(hd, "Authorization", "Bearer "+operatorKey)
			}
			r := send(t, tc.method, tc.path, body, hd...)
			h.refused(t, before, r, tc.status, tc.code)
			if got := h.end(t, "victim-acct"); got != victimEnd {
				t.Errorf("the victim's log moved from %d to %d", victimEnd, got)
			}
		})
	}
	// The JupiterOne-Account header is checked the same way.
	for _, acct := range []string{"../victim-acct", "%2e%2e%2fvictim-acct", "a/b", "hostile-acct/../victim-acct", `a\b`, "victim acct", "victim-acct\t-x"} {
		t.Run("header "+acct, func(t *testing.T) {
			before := h.snapshot(t)
			r := h.sync(t, h.key, acct, "POST", jobsPath, map[string]any{"source": "api"})
			h.refused(t, before, r, http.StatusBadRequest, "INVALID_ACCOUNT_ID")
		})
	}
	// HTTP drops the blanks around a header value: " victim-acct " names
	// the victim, whose data this key may not touch.
	for _, acct := range []string{"victim-acct ", " victim-acct", "victim-acct\t"} {
		t.Run("header "+acct, func(t *testing.T) {
			before := h.snapshot(t)
			r := h.sync(t, h.key, acct, "POST", jobsPath, map[string]any{"source": "api"})
			h.refused(t, before, r, http.StatusForbidden, "FORBIDDEN", `"victim-acct"`)
		})
	}
	// Bucket names that would leave the bucket or the host.
	for _, b := range []string{"../evil", "a/b", "evil%2fbucket", "bucket..name", "bucket/../x", "127.0.0.1", "evil.com:443", "Bucket", "b", strings.Repeat("b", 64), "bucket\x00x", "bücket"} {
		t.Run("bucket "+b, func(t *testing.T) {
			before := h.snapshot(t)
			r := h.rest(t, h.key, "PUT", h.base+"/data-streaming", map[string]any{"enabled": false, "bucketName": b})
			h.refused(t, before, r, http.StatusUnprocessableEntity, "INVALID_SETTINGS", "bucketName")
			r = h.rest(t, h.key, "POST", h.base+"/data-streaming/test-connection", map[string]any{"bucketName": b, "awsAccountId": "123456789012"})
			h.refused(t, before, r, http.StatusUnprocessableEntity, "INVALID_SETTINGS", "bucketName")
			r = h.rest(t, h.key, "GET", h.base+"/data-streaming/bucket-policy?bucket="+urlQueryEscape(b), nil)
			h.refused(t, before, r, http.StatusUnprocessableEntity, "INVALID_SETTINGS", "bucketName")
		})
	}
}

func urlQueryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func TestHostileContentTypes(t *testing.T) {
	h := newHostileEnv(t)
	for _, rt := range h.bodyRoutes() {
		t.Run(rt.name, func(t *testing.T) {
			before := h.snapshot(t)
			for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/octet-stream"} {
				r := h.send(t, rt, []byte(`{"entities":[]}`), "Content-Type", ct)
				h.refused(t, before, r, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", fmt.Sprintf("%q", ct), "application/json")
			}
			// Not JSON at all, declared as JSON.
			for _, body := range []string{"<xml/>", "a=b&c=d", "\xef\xbb\xbf{}", "{} {}", "{", "\"just a string\""} {
				r := h.send(t, rt, []byte(body))
				if r.Status < 400 || r.Status > 499 {
					t.Errorf("body %q: got %s, want 4xx", body, r)
					continue
				}
				var shape ErrorShape
				if json.Unmarshal(r.Body, &shape) != nil || shape.Error.Code == "" || shape.Error.Message == "" {
					t.Errorf("body %q: answer is not an error: %s", body, r)
				}
				if after := h.snapshot(t); after != before {
					t.Errorf("body %q changed the store", body)
				}
			}
		})
	}
}

// ErrorShape is the error answer's shape.
type ErrorShape = api.ErrorBody
