package api_test

// The synchronization jobs API over raw HTTP: bad input is answered with a
// 4xx {"error":{"code","message"}} naming the object and field, and leaves
// no trace in the job, the graph or the log.

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/graph"
)

const acct = "acme"

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// validEntity is sent beside the bad object of a request: a rejected
// request must not stage it either.
const validEntity = `{"_key":"valid-entity-0001","_type":"test_thing","_class":"Thing","name":"ok"}`

func TestSyncRejectsBadInput(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	truncated := gz(t, []byte(`{"entities":[`+validEntity+`]}`))
	truncated = truncated[:len(truncated)/2]

	cases := []struct {
		name    string
		route   string // entities, relationships or upload
		body    any
		header  []string
		status  int
		code    string
		substrs []string
	}{
		{"malformed JSON", "entities", `{"entities":[` + validEntity + `,`, nil, 400, "INVALID_JSON", []string{"not valid JSON"}},
		{"trailing garbage", "entities", `{"entities":[` + validEntity + `]} x`, nil, 400, "INVALID_JSON", []string{"not valid JSON"}},
		{"empty body", "entities", ``, nil, 400, "INVALID_JSON", []string{"empty"}},
		{"entities is an object", "entities", `{"entities":{}}`, nil, 400, "INVALID_JSON", []string{"entities must be an array", "object"}},
		{"entities is a string", "entities", `{"entities":"x"}`, nil, 400, "INVALID_JSON", []string{"entities must be an array", "string"}},
		{"body is an array", "entities", `[` + validEntity + `]`, nil, 400, "INVALID_JSON", []string{"the body must be an object"}},
		{"entities missing", "entities", `{}`, nil, 400, "INVALID_INPUT", []string{"entities is required"}},
		{"relationships on the entities route", "entities", `{"entities":[],"relationships":[]}`, nil, 400, "INVALID_INPUT", []string{`{"entities": [...]}`}},
		{"entities on the relationships route", "relationships", `{"entities":[` + validEntity + `]}`, nil, 400, "INVALID_INPUT", []string{`{"relationships": [...]}`}},
		{"entity is a number", "entities", `{"entities":[` + validEntity + `,7]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{"entities[1]", "must be a JSON object"}},
		{"_key missing", "entities", `{"entities":[` + validEntity + `,{"_type":"test_thing","_class":"Thing"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{"entities[1]", "_key: is required"}},
		{"_key short", "entities", `{"entities":[` + validEntity + `,{"_key":"short","_type":"test_thing","_class":"Thing"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`entities[1] (_key "short")`, "_key", "at least 10"}},
		{"_key a number", "entities", `{"entities":[` + validEntity + `,{"_key":12345678901,"_type":"test_thing","_class":"Thing"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{"entities[1]", "_key: must be a string, got a number"}},
		{"_type missing", "entities", `{"entities":[` + validEntity + `,{"_key":"no-type-entity","_class":"Thing"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`entities[1] (_key "no-type-entity")`, "_type: is required"}},
		{"_type short", "entities", `{"entities":[` + validEntity + `,{"_key":"short-type-entity","_type":"abc","_class":"Thing"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "short-type-entity")`, "_type", "at least 5"}},
		{"_class missing", "entities", `{"entities":[` + validEntity + `,{"_key":"no-class-entity","_type":"test_thing"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "no-class-entity")`, "_class: is required"}},
		{"_class empty", "entities", `{"entities":[` + validEntity + `,{"_key":"empty-class-entity","_type":"test_thing","_class":""}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "empty-class-entity")`, "_class: is required"}},
		{"_class a number", "entities", `{"entities":[` + validEntity + `,{"_key":"num-class-entity","_type":"test_thing","_class":3}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "num-class-entity")`, "_class: must be a string or an array of strings"}},
		{"nested object property", "entities", `{"entities":[` + validEntity + `,{"_key":"nested-entity-1","_type":"test_thing","_class":"Thing","owner":{"id":1}}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`entities[1] (_key "nested-entity-1")`, `"owner": is a nested object`}},
		{"array of objects", "entities", `{"entities":[` + validEntity + `,{"_key":"array-entity-1","_type":"test_thing","_class":"Thing","tags":["a",{"b":1}]}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "array-entity-1")`, `"tags": item 1 is an object`}},
		{"array of arrays", "entities", `{"entities":[` + validEntity + `,{"_key":"array-entity-2","_type":"test_thing","_class":"Thing","matrix":[[1]]}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "array-entity-2")`, `"matrix": item 0 is an array`}},
		{"control character in a property name", "entities", `{"entities":[` + validEntity + `,{"_key":"bad-name-entity","_type":"test_thing","_class":"Thing","a\u0001b":1}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "bad-name-entity")`, "property name", "control character"}},
		{"relationship without a from end", "relationships", `{"relationships":[{"_key":"rel-no-from-01","_type":"test_link","_class":"HAS","_toEntityKey":"valid-entity-0001"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`relationships[0] (_key "rel-no-from-01")`, "_fromEntityId", "_fromEntityKey"}},
		{"relationship without a to end", "relationships", `{"relationships":[{"_key":"rel-no-to-001","_type":"test_link","_class":"HAS","_fromEntityKey":"valid-entity-0001"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "rel-no-to-001")`, "_toEntityId", "_toEntityKey"}},
		{"relationship with two classes", "relationships", `{"relationships":[{"_key":"rel-two-class","_type":"test_link","_class":["HAS","USES"],"_fromEntityKey":"valid-entity-0001","_toEntityKey":"valid-entity-0001"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "rel-two-class")`, "_class: a relationship has exactly one class"}},
		{"relationship end id not an id", "relationships", `{"relationships":[{"_key":"rel-bad-end-id","_type":"test_link","_class":"HAS","_fromEntityId":"not-a-uuid","_toEntityKey":"valid-entity-0001"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`(_key "rel-bad-end-id")`, `_fromEntityId: "not-a-uuid" is not an object id`}},
		{"bad relationship on the upload route", "upload", `{"entities":[` + validEntity + `],"relationships":[{"_key":"rel-up-no-class","_type":"test_link","_fromEntityKey":"valid-entity-0001","_toEntityKey":"valid-entity-0001"}]}`, nil, 400, "INVALID_GRAPH_OBJECT", []string{`relationships[0] (_key "rel-up-no-class")`, "_class: is required"}},
		{"Content-Type not JSON", "entities", `{"entities":[` + validEntity + `]}`, []string{"Content-Type", "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", []string{`"text/plain"`}},
		{"unknown Content-Encoding", "entities", `{"entities":[` + validEntity + `]}`, []string{"Content-Encoding", "br"}, 415, "UNSUPPORTED_ENCODING", []string{`"br"`, "gzip"}},
		{"gzip header, plain body", "entities", `{"entities":[` + validEntity + `]}`, []string{"Content-Encoding", "gzip"}, 400, "INVALID_BODY", []string{"not gzip data"}},
		{"truncated gzip", "entities", truncated, []string{"Content-Encoding", "gzip"}, 400, "INVALID_BODY", []string{"could not read the request body"}},
		{"too many objects", "entities", `{"entities":[` + strings.Repeat(`{},`, 10000) + validEntity + `]}`, nil, 413, "TOO_MANY_OBJECTS", []string{"10001 objects", "10000"}},
		{"gzip of a Buffer (the SDK's retry bug)", "entities", gz(t, []byte(`{"type":"Buffer","data":[31,139,8,0]}`)), []string{"Content-Encoding", "gzip"}, 400, "INVALID_INPUT", []string{"entities is required"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			scope := fmt.Sprintf("bad-input-%02d", i)
			job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": scope})
			id := job["id"].(string)
			end := e.end(t, acct)

			r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/"+tc.route, tc.body, tc.header...)
			wantError(t, r, tc.status, tc.code, tc.substrs...)

			// Nothing staged: the job counts nothing and its finalize
			// applies nothing.
			r = e.sync(t, key, acct, "GET", jobsPath+"/"+id, nil)
			wantStatus(t, r, http.StatusOK)
			wantCounts(t, jobOf(t, r), "status", "AWAITING_UPLOADS", "numEntitiesUploaded", 0, "numRelationshipsUploaded", 0)
			j := e.finalize(t, key, acct, id, nil)
			wantCounts(t, j, "status", "FINISHED", "numEntitiesCreated", 0, "numRelationshipsCreated", 0)
			e.untouched(t, acct, end)
			e.wantAbsent(t, acct, scope, "valid-entity-0001")
		})
	}
}

func TestSyncRelationshipToUnknownEntity(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)

	// A graph the DIFF cases below start from: two entities of scope
	// "kept", linked.
	setup := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "kept"})
	e.upload(t, key, acct, setup["id"].(string), "entities", []map[string]any{
		obj("kept-entity-0001", "test_thing", "Thing"), obj("kept-entity-0002", "test_thing", "Thing"),
	})
	if j := e.finalize(t, key, acct, setup["id"].(string), nil); j["numEntitiesCreated"] != 2.0 {
		t.Fatalf("setup: %v", j)
	}
	keptID := graph.ObjectID(acct, "kept", "kept-entity-0002")

	cases := []struct {
		name     string
		scope    string
		mode     string
		rel      map[string]any
		substrs  []string
		absentOK bool // the job's entity must stay absent (new scope)
	}{
		{"by key, never uploaded", "unknown-1", "DIFF",
			rel("rel-to-nowhere-1", "test_link", "HAS", "new-entity-0001", "nosuch-entity-key"),
			[]string{`"rel-to-nowhere-1"`, "_toEntityKey", `"nosuch-entity-key"`}, true},
		{"by id, no such object", "unknown-2", "DIFF",
			map[string]any{"_key": "rel-to-nowhere-2", "_type": "test_link", "_class": "HAS", "_fromEntityId": "0b9a3f52-3f5e-5a0e-9c53-d6b1b7f4a111", "_toEntityKey": "new-entity-0001"},
			[]string{`"rel-to-nowhere-2"`, "_fromEntityId", `"0b9a3f52-3f5e-5a0e-9c53-d6b1b7f4a111"`}, true},
		// A DIFF job of scope "kept" deletes kept-entity-0002 unless it
		// uploads it: a relationship to it is a relationship to nothing.
		{"to an entity the DIFF job deletes", "kept", "DIFF",
			map[string]any{"_key": "rel-to-doomed-1", "_type": "test_link", "_class": "HAS", "_fromEntityKey": "new-entity-0001", "_toEntityId": keptID},
			[]string{`"rel-to-doomed-1"`, "_toEntityId", keptID}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			end := e.end(t, acct)
			job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": tc.scope, "syncMode": tc.mode})
			id := job["id"].(string)
			e.upload(t, key, acct, id, "entities", []map[string]any{obj("new-entity-0001", "test_thing", "Thing")})
			e.upload(t, key, acct, id, "relationships", []map[string]any{tc.rel})

			r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/finalize", "{}")
			wantStatus(t, r, http.StatusOK)
			j := e.waitJob(t, key, acct, id)
			wantCounts(t, j, "status", "ERROR_BAD_DATA",
				"numEntitiesCreated", 0, "numEntitiesUpdated", 0, "numEntitiesDeleted", 0,
				"numRelationshipsCreated", 0, "numRelationshipsDeleted", 0)
			jerr, _ := j["error"].(map[string]any)
			if jerr["code"] != "RELATIONSHIP_ENDPOINT_NOT_FOUND" {
				t.Errorf("job error %v, want code RELATIONSHIP_ENDPOINT_NOT_FOUND", jerr)
			}
			msg, _ := jerr["message"].(string)
			for _, s := range tc.substrs {
				if !strings.Contains(msg, s) {
					t.Errorf("job error message %q does not contain %q", msg, s)
				}
			}
			e.untouched(t, acct, end)
			if tc.absentOK {
				e.wantAbsent(t, acct, tc.scope, "new-entity-0001")
			}
			wantFields(t, "kept-entity-0002", e.stored(t, acct, keptID), "_deleted", false, "_version", 1)
			wantFields(t, "kept-entity-0001", e.stored(t, acct, graph.ObjectID(acct, "kept", "kept-entity-0001")), "_deleted", false, "_version", 1)

			// The job is over.
			r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/entities", map[string]any{"entities": []any{}})
			wantError(t, r, 400, "JOB_NOT_AWAITING_UPLOADS", id, "ERROR_BAD_DATA")
		})
	}

	// The same upload in PATCH mode is fine: PATCH deletes nothing, so the
	// end stays.
	end := e.end(t, acct)
	job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "kept", "syncMode": "PATCH"})
	id := job["id"].(string)
	e.upload(t, key, acct, id, "entities", []map[string]any{obj("new-entity-0001", "test_thing", "Thing")})
	e.upload(t, key, acct, id, "relationships", []map[string]any{cases[2].rel})
	j := e.finalize(t, key, acct, id, nil)
	wantCounts(t, j, "status", "FINISHED", "numEntitiesCreated", 1, "numRelationshipsCreated", 1, "numEntitiesDeleted", 0)
	want := []string{"c entity new-entity-0001 v1", "c relationship rel-to-doomed-1 v1"}
	if got := e.logSummary(t, acct, end); !slices.Equal(got, want) {
		t.Errorf("log of the PATCH job: %q, want %q", got, want)
	}
}

func TestSyncDuplicateKey(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "dups"})
	id := job["id"].(string)
	path := jobsPath + "/" + id

	x := `{"_key":"dup-entity-0001","_type":"test_thing","_class":"Thing","n":1}`
	wantCounts(t, e.upload(t, key, acct, id, "entities", []map[string]any{obj("dup-entity-0001", "test_thing", "Thing", "n", 1)}), "numEntitiesUploaded", 1)

	// The same key with other content: rejected, naming the key.
	r := e.sync(t, key, acct, "POST", path+"/entities", `{"entities":[{"_key":"dup-entity-0001","_type":"test_thing","_class":"Thing","n":2}]}`)
	wantError(t, r, 400, "DUPLICATE_KEY", "entities[0]", `"dup-entity-0001"`)

	// An identical re-upload (the SDK retries), even formatted otherwise:
	// accepted, not counted twice.
	r = e.sync(t, key, acct, "POST", path+"/entities", "{ \"entities\" : [ "+strings.ReplaceAll(x, ",", " , ")+" ] }")
	wantStatus(t, r, http.StatusOK)
	wantCounts(t, jobOf(t, r), "numEntitiesUploaded", 1)

	// The key as a relationship of the same scope: a duplicate too.
	r = e.sync(t, key, acct, "POST", path+"/relationships", map[string]any{"relationships": []any{
		rel("dup-entity-0001", "test_link", "HAS", "dup-entity-0001", "dup-entity-0001"),
	}})
	wantError(t, r, 400, "DUPLICATE_KEY", "relationships[0]", `"dup-entity-0001"`, "entity")

	// Twice in one request: the request is rejected whole, so its first
	// copy is not staged and may come again with the other content.
	r = e.sync(t, key, acct, "POST", path+"/entities", map[string]any{"entities": []any{
		obj("dup-entity-0002", "test_thing", "Thing", "n", 1), obj("dup-entity-0002", "test_thing", "Thing", "n", 2),
	}})
	wantError(t, r, 400, "DUPLICATE_KEY", "entities[1]", `"dup-entity-0002"`)
	wantCounts(t, e.upload(t, key, acct, id, "entities", []map[string]any{obj("dup-entity-0002", "test_thing", "Thing", "n", 2)}), "numEntitiesUploaded", 2)

	j := e.finalize(t, key, acct, id, nil)
	wantCounts(t, j, "status", "FINISHED", "numEntitiesUploaded", 2, "numEntitiesCreated", 2, "numRelationshipsCreated", 0)
	wantFields(t, "dup-entity-0001", e.stored(t, acct, graph.ObjectID(acct, "dups", "dup-entity-0001")), "n", 1, "_version", 1)
	wantFields(t, "dup-entity-0002", e.stored(t, acct, graph.ObjectID(acct, "dups", "dup-entity-0002")), "n", 2, "_version", 1)
}

func TestSyncBodyLimit(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.MaxBody = 2048 })
	key := e.newAccount(t, acct)
	job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "limits"})
	id := job["id"].(string)
	end := e.end(t, acct)

	big := fmt.Sprintf(`{"entities":[{"_key":"big-entity-0001","_type":"test_thing","_class":"Thing","blob":%q}]}`, strings.Repeat("x", 3000))
	r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/entities", big)
	wantError(t, r, 413, "PAYLOAD_TOO_LARGE", "2048 bytes")

	// Small on the wire, too big once decompressed.
	zipped := gz(t, []byte(big))
	if len(zipped) >= 2048 {
		t.Fatalf("test setup: gzipped body is %d bytes, want it under the limit", len(zipped))
	}
	r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/entities", zipped, "Content-Encoding", "gzip")
	wantError(t, r, 413, "PAYLOAD_TOO_LARGE", "2048 bytes")

	// Under the limit: fine.
	small := fmt.Sprintf(`{"entities":[{"_key":"small-entity-01","_type":"test_thing","_class":"Thing","blob":%q}]}`, strings.Repeat("x", 1500))
	r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/entities", small)
	wantStatus(t, r, http.StatusOK)

	j := e.finalize(t, key, acct, id, nil)
	wantCounts(t, j, "status", "FINISHED", "numEntitiesUploaded", 1, "numEntitiesCreated", 1)
	e.wantAbsent(t, acct, "limits", "big-entity-0001")
	if got := e.logSummary(t, acct, end); !slices.Equal(got, []string{"c entity small-entity-01 v1"}) {
		t.Errorf("log: %q", got)
	}
}

func TestSyncGzipBodies(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	// Create, upload on every route and finalize, all gzipped.
	body := gz(t, []byte(`{"source":"api","scope":"zipped"}`))
	r := e.sync(t, key, acct, "POST", jobsPath, body, "Content-Encoding", "gzip")
	wantStatus(t, r, http.StatusOK)
	id := jobOf(t, r)["id"].(string)

	r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/entities", gz(t, []byte(`{"entities":[{"_key":"zipped-entity-1","_type":"test_thing","_class":"Thing"}]}`)), "Content-Encoding", "gzip")
	wantStatus(t, r, http.StatusOK)
	r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/upload", gz(t, []byte(`{"entities":[{"_key":"zipped-entity-2","_type":"test_thing","_class":"Thing"}],"relationships":[{"_key":"zipped-rel-0001","_type":"test_link","_class":"HAS","_fromEntityKey":"zipped-entity-1","_toEntityKey":"zipped-entity-2"}]}`)), "Content-Encoding", "gzip")
	wantStatus(t, r, http.StatusOK)
	r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/relationships", gz(t, []byte(`{"relationships":[{"_key":"zipped-rel-0002","_type":"test_link","_class":"HAS","_fromEntityKey":"zipped-entity-2","_toEntityKey":"zipped-entity-1"}]}`)), "Content-Encoding", "gzip")
	wantStatus(t, r, http.StatusOK)
	r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/finalize", gz(t, []byte(`{}`)), "Content-Encoding", "gzip")
	wantStatus(t, r, http.StatusOK)
	j := e.waitJob(t, key, acct, id)
	wantCounts(t, j, "status", "FINISHED", "numEntitiesCreated", 2, "numRelationshipsCreated", 2)
	wantFields(t, "zipped-rel-0001", e.stored(t, acct, graph.ObjectID(acct, "zipped", "zipped-rel-0001")),
		"_fromEntityId", graph.ObjectID(acct, "zipped", "zipped-entity-1"), "_toEntityId", graph.ObjectID(acct, "zipped", "zipped-entity-2"))
}

func TestSyncJobLifecycle(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	otherKey := e.newAccount(t, "other-acct")

	t.Run("create rejects bad jobs", func(t *testing.T) {
		defer e.untouched(t, acct, e.end(t, acct))
		for _, tc := range []struct {
			body          string
			code, substrs string
		}{
			{`{"source":"bogus","scope":"s-1"}`, "INVALID_SOURCE", `"bogus"`},
			{`{"source":"api","scope":"s-1","syncMode":"FULL"}`, "INVALID_SYNC_MODE", `"FULL"`},
			{`{"source":"api"}`, "SCOPE_REQUIRED", "scope"},
			{`{"source":"api","scope":"bad\u0001scope"}`, "INVALID_SCOPE", "control character"},
			{`{"source":7}`, "INVALID_JSON", "source must be a string"},
		} {
			r := e.sync(t, key, acct, "POST", jobsPath, tc.body)
			wantError(t, r, 400, tc.code, tc.substrs)
		}
	})

	t.Run("unknown job", func(t *testing.T) {
		missing := uuid.NewString()
		for _, tc := range []struct{ method, path string }{
			{"GET", jobsPath + "/" + missing},
			{"POST", jobsPath + "/" + missing + "/entities"},
			{"POST", jobsPath + "/" + missing + "/relationships"},
			{"POST", jobsPath + "/" + missing + "/finalize"},
			{"POST", jobsPath + "/" + missing + "/abort"},
			{"POST", jobsPath + "/" + missing + "/events"},
			{"GET", jobsPath + "/not-a-job-id"},
		} {
			var body any
			switch {
			case strings.HasSuffix(tc.path, "/entities"):
				body = map[string]any{"entities": []any{}}
			case strings.HasSuffix(tc.path, "/relationships"):
				body = map[string]any{"relationships": []any{}}
			case strings.HasSuffix(tc.path, "/events"):
				body = map[string]any{"events": []any{}}
			case tc.method == "POST":
				body = map[string]any{}
			}
			r := e.sync(t, key, acct, tc.method, tc.path, body)
			wantError(t, r, 404, "JOB_NOT_FOUND", tc.path[len(jobsPath)+1:len(jobsPath)+1+min(36, len(tc.path)-len(jobsPath)-1)])
		}
		// A job of another account is unknown to this one.
		job := e.createJob(t, otherKey, "other-acct", map[string]any{"source": "api", "scope": "theirs"})
		r := e.sync(t, key, acct, "GET", jobsPath+"/"+job["id"].(string), nil)
		wantError(t, r, 404, "JOB_NOT_FOUND", job["id"].(string))
		r = e.sync(t, key, acct, "POST", jobsPath+"/"+job["id"].(string)+"/entities", map[string]any{"entities": []any{obj("sneaky-entity-1", "test_thing", "Thing")}})
		wantError(t, r, 404, "JOB_NOT_FOUND", job["id"].(string))
		j := e.finalize(t, otherKey, "other-acct", job["id"].(string), nil)
		wantCounts(t, j, "numEntitiesUploaded", 0, "numEntitiesCreated", 0)
	})

	t.Run("finished job", func(t *testing.T) {
		job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "done"})
		id := job["id"].(string)
		e.upload(t, key, acct, id, "entities", []map[string]any{obj("done-entity-001", "test_thing", "Thing")})
		first := e.finalize(t, key, acct, id, nil)
		wantCounts(t, first, "status", "FINISHED", "numEntitiesCreated", 1)
		end := e.end(t, acct)

		// Finalize again (a retry that lost its answer): 200 with the job,
		// nothing applied twice.
		r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/finalize", "{}")
		wantStatus(t, r, http.StatusOK)
		wantCounts(t, jobOf(t, r), "id", id, "status", "FINISHED", "numEntitiesCreated", 1, "endTimestamp", first["endTimestamp"])
		e.untouched(t, acct, end)

		late := []any{obj("late-entity-001", "test_thing", "Thing")}
		for route, body := range map[string]any{
			"entities":      map[string]any{"entities": late},
			"relationships": map[string]any{"relationships": []any{}},
			"upload":        map[string]any{"entities": late},
		} {
			r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/"+route, body)
			wantError(t, r, 400, "JOB_NOT_AWAITING_UPLOADS", id, "FINISHED")
		}
		r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/abort", "{}")
		wantError(t, r, 400, "JOB_NOT_AWAITING_UPLOADS", id)
		e.untouched(t, acct, end)
		e.wantAbsent(t, acct, "done", "late-entity-001")
	})

	t.Run("bad partialDatasets", func(t *testing.T) {
		job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "partial"})
		id := job["id"].(string)
		e.upload(t, key, acct, id, "entities", []map[string]any{obj("partial-entity-1", "test_thing", "Thing")})
		end := e.end(t, acct)
		r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/finalize", `{"partialDatasets":{"types":["test_thing",""]}}`)
		wantError(t, r, 400, "INVALID_PARTIAL_DATASETS", "partialDatasets.types[1]")
		r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/finalize", `{"partialDatasets":["test_thing"]}`)
		wantError(t, r, 400, "INVALID_JSON", "partialDatasets must be an object")
		e.untouched(t, acct, end)
		// The job still takes uploads and finalizes.
		e.upload(t, key, acct, id, "entities", []map[string]any{obj("partial-entity-2", "test_thing", "Thing")})
		j := e.finalize(t, key, acct, id, map[string]any{"partialDatasets": map[string]any{"types": []string{"test_thing"}}})
		wantCounts(t, j, "status", "FINISHED", "numEntitiesCreated", 2, "partialDatasets", map[string]any{"types": []string{"test_thing"}})
	})

	t.Run("abort", func(t *testing.T) {
		end := e.end(t, acct)
		job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "aborted"})
		id := job["id"].(string)
		e.upload(t, key, acct, id, "entities", []map[string]any{obj("aborted-entity-1", "test_thing", "Thing")})
		r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/abort", map[string]any{"reason": "testing abort"})
		wantStatus(t, r, http.StatusOK)
		wantCounts(t, jobOf(t, r), "status", "ABORTED", "abortReason", "testing abort")
		// Again: the same answer.
		r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/abort", "")
		wantStatus(t, r, http.StatusOK)
		wantCounts(t, jobOf(t, r), "status", "ABORTED", "abortReason", "testing abort")

		r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/entities", map[string]any{"entities": []any{obj("aborted-entity-2", "test_thing", "Thing")}})
		wantError(t, r, 400, "JOB_NOT_AWAITING_UPLOADS", "ABORTED")
		r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/finalize", "{}")
		wantError(t, r, 400, "JOB_NOT_AWAITING_UPLOADS", "ABORTED")
		e.untouched(t, acct, end)
		e.wantAbsent(t, acct, "aborted", "aborted-entity-1")
	})

	t.Run("events", func(t *testing.T) {
		job := e.createJob(t, key, acct, map[string]any{"source": "integration-managed", "integrationInstanceId": "inst-events-1", "integrationJobId": "ij-1"})
		id := job["id"].(string)
		wantFields(t, "job", job, "integrationJobId", "ij-1", "scope", "inst-events-1")
		r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/events", map[string]any{"events": []any{
			map[string]any{"name": "sync_upload_start", "description": "Uploading collected data for synchronization..."},
		}})
		wantStatus(t, r, http.StatusOK)
		r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/events", map[string]any{"events": []any{
			map[string]any{"name": "a", "description": "b"}, map[string]any{"name": "c", "description": "d", "level": "warn"},
		}})
		wantStatus(t, r, http.StatusOK)
		wantCounts(t, jobOf(t, r), "numEvents", 3)
		r = e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/events", `{"events":{}}`)
		wantError(t, r, 400, "INVALID_JSON", "events must be an array")
	})
}

func TestSyncAuth(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	otherKey := e.newAccount(t, "other-acct")
	member := e.newKey(t, acct, "member")
	job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "auth"})
	path := jobsPath + "/" + job["id"].(string) + "/entities"
	body := map[string]any{"entities": []any{obj("auth-entity-001", "test_thing", "Thing")}}
	end := e.end(t, acct)

	for _, tc := range []struct {
		name    string
		header  hdr
		status  int
		code    string
		substrs []string
	}{
		{"no key", hdr{"JupiterOne-Account", acct}, 401, "UNAUTHORIZED", []string{"Authorization: Bearer"}},
		{"not a bearer key", hdr{"Authorization", "Basic " + key, "JupiterOne-Account", acct}, 401, "UNAUTHORIZED", []string{"Authorization: Bearer"}},
		{"bad key", hdr{"Authorization", "Bearer j1ds_not-a-real-key", "JupiterOne-Account", acct}, 401, "UNAUTHORIZED", []string{"not valid"}},
		{"the operator key", hdr{"Authorization", "Bearer " + operatorKey, "JupiterOne-Account", acct}, 401, "UNAUTHORIZED", []string{"not valid"}},
		{"unknown account", hdr{"Authorization", "Bearer " + key, "JupiterOne-Account", "ghost-acct"}, 403, "FORBIDDEN", []string{`"ghost-acct"`}},
		{"invalid account id", hdr{"Authorization", "Bearer " + key, "JupiterOne-Account", "a/b"}, 400, "INVALID_ACCOUNT_ID", []string{`"a/b"`}},
		{"invalid account id with a colon", hdr{"Authorization", "Bearer " + key, "JupiterOne-Account", "a:b"}, 400, "INVALID_ACCOUNT_ID", []string{`"a:b"`}},
		{"key of another account", hdr{"Authorization", "Bearer " + otherKey, "JupiterOne-Account", acct}, 403, "FORBIDDEN", []string{`"acme"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", path, body, tc.header)
			wantError(t, r, tc.status, tc.code, tc.substrs...)
			if tc.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	r := e.sync(t, key, acct, "GET", jobsPath+"/"+job["id"].(string), nil)
	wantStatus(t, r, http.StatusOK)
	wantCounts(t, jobOf(t, r), "numEntitiesUploaded", 0)

	// A member key may sync; without the header the key's account is used.
	r = e.sync(t, member, "", "POST", path, body)
	wantStatus(t, r, http.StatusOK)
	j := e.finalize(t, member, acct, job["id"].(string), nil)
	wantCounts(t, j, "status", "FINISHED", "numEntitiesCreated", 1)
	if got := e.logSummary(t, acct, end); !slices.Equal(got, []string{"c entity auth-entity-001 v1"}) {
		t.Errorf("log: %q", got)
	}
	e.untouched(t, "other-acct", 0)
}

func TestSyncPatchModeNeverDeletes(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	diff := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "patchy"})
	e.upload(t, key, acct, diff["id"].(string), "entities", []map[string]any{
		obj("patchy-entity-1", "test_thing", "Thing", "n", 1),
		obj("patchy-entity-2", "test_thing", "Thing", "n", 1),
		obj("patchy-entity-3", "test_other", "Thing", "n", 1),
	})
	e.upload(t, key, acct, diff["id"].(string), "relationships", []map[string]any{
		rel("patchy-rel-0001", "test_link", "HAS", "patchy-entity-1", "patchy-entity-2"),
	})
	wantCounts(t, e.finalize(t, key, acct, diff["id"].(string), nil), "status", "FINISHED", "numEntitiesCreated", 3, "numRelationshipsCreated", 1)
	end := e.end(t, acct)

	patch := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "patchy", "syncMode": "PATCH"})
	wantFields(t, "PATCH job", patch, "syncMode", "PATCH")
	e.upload(t, key, acct, patch["id"].(string), "entities", []map[string]any{obj("patchy-entity-1", "test_thing", "Thing", "n", 2)})
	j := e.finalize(t, key, acct, patch["id"].(string), map[string]any{"partialDatasets": map[string]any{"types": []string{}}})
	wantCounts(t, j, "status", "FINISHED", "numEntitiesUpdated", 1, "numEntitiesDeleted", 0, "numRelationshipsDeleted", 0)
	if got := e.logSummary(t, acct, end); !slices.Equal(got, []string{"u entity patchy-entity-1 v2"}) {
		t.Errorf("log of the PATCH job: %q", got)
	}
	for _, k := range []string{"patchy-entity-2", "patchy-entity-3", "patchy-rel-0001"} {
		wantFields(t, k, e.stored(t, acct, graph.ObjectID(acct, "patchy", k)), "_deleted", false, "_version", 1)
	}
}

// TestSyncDiffManyEntities runs a DIFF job over more entities than one
// finalize transaction applies, then one that keeps only a few.
func TestSyncDiffManyEntities(t *testing.T) {
	const total, kept = 1200, 100
	e := newEnv(t)
	key := e.newAccount(t, acct)
	ent := func(i int) map[string]any {
		return obj(fmt.Sprintf("many-entity-%05d", i), "test_many", "Thing", "i", i)
	}

	job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "many"})
	for start := 0; start < total; start += 400 {
		var batch []map[string]any
		for i := start; i < start+400; i++ {
			batch = append(batch, ent(i))
		}
		e.upload(t, key, acct, job["id"].(string), "entities", batch)
	}
	j := e.finalize(t, key, acct, job["id"].(string), nil)
	wantCounts(t, j, "status", "FINISHED", "numEntitiesUploaded", total, "numEntitiesCreated", total)
	_, sizes := e.logSince(t, acct, 0)
	if len(sizes) < 2 {
		t.Errorf("%d entities were applied in %d transaction(s), want bounded chunks", total, len(sizes))
	}
	end := e.end(t, acct)

	// Keep the first 100, one of them changed.
	job = e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "many"})
	var batch []map[string]any
	for i := range kept {
		batch = append(batch, ent(i))
	}
	batch[7]["i"] = "seven"
	e.upload(t, key, acct, job["id"].(string), "entities", batch)
	j = e.finalize(t, key, acct, job["id"].(string), nil)
	wantCounts(t, j, "status", "FINISHED", "numEntitiesUploaded", kept,
		"numEntitiesCreated", 0, "numEntitiesUpdated", 1, "numEntitiesDeleted", total-kept)

	changes, sizes := e.logSince(t, acct, end)
	if len(sizes) < 2 {
		t.Errorf("%d deletions were applied in %d transaction(s), want bounded chunks", total-kept, len(sizes))
	}
	for _, n := range sizes {
		if n > 500 {
			t.Errorf("one transaction holds %d changes; finalize should apply bounded chunks", n)
		}
	}
	deleted := map[string]bool{}
	for _, c := range changes {
		switch c.Op {
		case "d":
			if deleted[c.ID] {
				t.Errorf("%v deleted twice", c.Props["_key"])
			}
			deleted[c.ID] = true
		case "u":
			if c.Props["_key"] != "many-entity-00007" {
				t.Errorf("unexpected update %s", c.summary())
			}
		default:
			t.Errorf("unexpected change %s", c.summary())
		}
	}
	for i := range total {
		id := graph.ObjectID(acct, "many", fmt.Sprintf("many-entity-%05d", i))
		if deleted[id] != (i >= kept) {
			t.Errorf("many-entity-%05d: deleted %v, want %v", i, deleted[id], i >= kept)
		}
	}
	live := e.listAll(t, key, "/api/v1/accounts/"+acct+"/entities?type=test_many&limit=1000")
	if len(live) != kept {
		t.Errorf("%d live entities listed, want %d", len(live), kept)
	}
}

// TestSyncBadDataAtFinalize covers data only finalize can find wrong: a
// _key that the graph holds as the other kind, an object too large once
// stored. The job ends ERROR_BAD_DATA (it must not hang in FINALIZING_*
// with its finalization failing on every try) and applies nothing, DIFF
// deletions included.
func TestSyncBadDataAtFinalize(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	setup := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "kc"})
	e.upload(t, key, acct, setup["id"].(string), "entities", []map[string]any{
		obj("kc-entity-0001", "test_thing", "Thing"), obj("kc-entity-0002", "test_thing", "Thing"),
	})
	e.upload(t, key, acct, setup["id"].(string), "relationships", []map[string]any{
		rel("kc-rel-key-0001", "test_link", "HAS", "kc-entity-0001", "kc-entity-0002"),
	})
	wantCounts(t, e.finalize(t, key, acct, setup["id"].(string), nil), "status", "FINISHED", "numEntitiesCreated", 2, "numRelationshipsCreated", 1)

	for _, tc := range []struct {
		name          string
		scope         string
		entities      []map[string]any
		relationships []map[string]any
		code          string
		substrs       []string
	}{
		{"relationship with an entity's key", "kc",
			[]map[string]any{obj("kc-entity-0001", "test_thing", "Thing", "changed", true)},
			[]map[string]any{rel("kc-entity-0002", "test_link", "HAS", "kc-entity-0001", "kc-entity-0001")},
			"KEY_CONFLICT", []string{`"kc-entity-0002"`, `"kc"`}},
		{"entity with a relationship's key", "kc",
			[]map[string]any{obj("kc-entity-0001", "test_thing", "Thing", "changed", true), obj("kc-rel-key-0001", "test_thing", "Thing")},
			nil,
			"KEY_CONFLICT", []string{`"kc-rel-key-0001"`}},
		{"object too large once stored", "kc-big",
			[]map[string]any{obj("kc-big-entity-1", "test_thing", "Thing", "blob", strings.Repeat("x", 1<<20-100))},
			nil,
			"INVALID_GRAPH_OBJECT", []string{"kc-big-entity-1", "bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			end := e.end(t, acct)
			job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": tc.scope})
			id := job["id"].(string)
			if tc.entities != nil {
				e.upload(t, key, acct, id, "entities", tc.entities)
			}
			if tc.relationships != nil {
				e.upload(t, key, acct, id, "relationships", tc.relationships)
			}
			j := e.finalize(t, key, acct, id, nil)
			wantCounts(t, j, "status", "ERROR_BAD_DATA",
				"numEntitiesCreated", 0, "numEntitiesUpdated", 0, "numEntitiesDeleted", 0,
				"numRelationshipsCreated", 0, "numRelationshipsDeleted", 0)
			jerr, _ := j["error"].(map[string]any)
			msg, _ := jerr["message"].(string)
			if jerr["code"] != tc.code {
				t.Errorf("job error %v, want code %s", jerr, tc.code)
			}
			for _, s := range tc.substrs {
				if !strings.Contains(msg, s) {
					t.Errorf("job error message %q does not contain %q", msg, s)
				}
			}
			e.untouched(t, acct, end)
			for _, k := range []string{"kc-entity-0001", "kc-entity-0002", "kc-rel-key-0001"} {
				wantFields(t, k, e.stored(t, acct, graph.ObjectID(acct, "kc", k)), "_deleted", false, "_version", 1)
			}
		})
	}
}
