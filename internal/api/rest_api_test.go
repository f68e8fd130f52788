package api_test

// The single-object REST API: create, read, list, merge-patch and
// soft-delete entities and relationships, with the store's metadata.

import (
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

const restBase = "/api/v1/accounts/" + acct

func TestRESTEntities(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	t1 := time.Date(2025, 7, 1, 10, 0, 0, 0, time.UTC)
	e.clock.Set(t1)
	annID := graph.ObjectID(acct, "api", "rest-user-0001")
	path := restBase + "/entities/" + annID

	r := e.rest(t, key, "POST", restBase+"/entities", obj("rest-user-0001", "rest_user", []string{"User"},
		"name", "Ann", "age", 30, "tags", []string{"a", "b"}, "_id", "ignored", "_version", 99))
	wantStatus(t, r, http.StatusCreated)
	created := decode(t, r)
	wantFields(t, "created", created,
		"_id", annID, "_key", "rest-user-0001", "_type", "rest_user", "_class", []string{"User"},
		"_scope", "api", "_source", "api", "_accountId", acct,
		"_version", 1, "_createdOn", ms(t1), "_beginOn", ms(t1), "_deleted", false, "_endOn", absent,
		"name", "Ann", "age", 30, "tags", []string{"a", "b"})
	if got := e.logSummary(t, acct, 0); !slices.Equal(got, []string{"c entity rest-user-0001 v1"}) {
		t.Errorf("log after create: %q", got)
	}

	// _scope chooses the scope, and so the id.
	r = e.rest(t, key, "POST", restBase+"/entities", map[string]any{"_key": "rest-user-0001", "_type": "rest_user", "_class": "User", "_scope": "hr-import"})
	wantStatus(t, r, http.StatusCreated)
	wantFields(t, "other scope", decode(t, r), "_scope", "hr-import", "_id", graph.ObjectID(acct, "hr-import", "rest-user-0001"), "_class", []string{"User"})

	end := e.end(t, acct)
	for _, tc := range []struct {
		name    string
		body    any
		status  int
		code    string
		substrs []string
	}{
		{"duplicate", obj("rest-user-0001", "rest_user", "User", "name", "Other"), 409, "ALREADY_EXISTS", []string{`"rest-user-0001"`, annID}},
		{"nested property", obj("rest-user-0002", "rest_user", "User", "owner", map[string]any{"id": 1}), 400, "INVALID_GRAPH_OBJECT", []string{`"owner": is a nested object`}},
		{"array of objects", obj("rest-user-0002", "rest_user", "User", "pets", []any{map[string]any{"n": 1}}), 400, "INVALID_GRAPH_OBJECT", []string{`"pets": item 0 is an object`}},
		{"short key", obj("short", "rest_user", "User"), 400, "INVALID_GRAPH_OBJECT", []string{"_key", `"short"`, "at least 10"}},
		{"no type", map[string]any{"_key": "rest-user-0002", "_class": "User"}, 400, "INVALID_GRAPH_OBJECT", []string{"_type: is required"}},
		{"scope not a string", map[string]any{"_key": "rest-user-0002", "_type": "rest_user", "_class": "User", "_scope": 5}, 400, "INVALID_GRAPH_OBJECT", []string{"_scope"}},
		{"not an object", `[1,2]`, 400, "INVALID_GRAPH_OBJECT", []string{"JSON object"}},
		{"malformed", `{"_key":`, 400, "INVALID_JSON", []string{"not valid JSON"}},
	} {
		t.Run("create rejects "+tc.name, func(t *testing.T) {
			r := e.rest(t, key, "POST", restBase+"/entities", tc.body)
			wantError(t, r, tc.status, tc.code, tc.substrs...)
			e.untouched(t, acct, end)
			e.wantAbsent(t, acct, "api", "rest-user-0002")
		})
	}

	r = e.rest(t, key, "GET", path, nil)
	wantStatus(t, r, http.StatusOK)
	if got := decode(t, r); !reflect.DeepEqual(got, created) {
		t.Errorf("GET answers %v, POST answered %v", got, created)
	}
	r = e.rest(t, key, "GET", restBase+"/entities/"+graph.ObjectID(acct, "api", "nobody-at-all"), nil)
	wantError(t, r, 404, "NOT_FOUND", graph.ObjectID(acct, "api", "nobody-at-all"))
	r = e.rest(t, key, "GET", restBase+"/relationships/"+annID, nil)
	wantError(t, r, 404, "NOT_FOUND", "relationship", annID)

	// PATCH merges: a value sets, null removes, the rest stays.
	t2 := t1.Add(time.Minute)
	e.clock.Set(t2)
	r = e.rest(t, key, "PATCH", path, map[string]any{"name": "Ann B", "age": nil, "nick": "annie"})
	wantStatus(t, r, http.StatusOK)
	patched := decode(t, r)
	wantFields(t, "patched", patched,
		"name", "Ann B", "age", absent, "nick", "annie", "tags", []string{"a", "b"},
		"_version", 2, "_createdOn", ms(t1), "_beginOn", ms(t2), "_key", "rest-user-0001", "_source", "api")
	want := []string{"c entity rest-user-0001 v1", "c entity rest-user-0001 v1", "u entity rest-user-0001 v2"}
	if got := e.logSummary(t, acct, 0); !slices.Equal(got, want) {
		t.Errorf("log after patch: %q, want %q", got, want)
	}

	// A PATCH that changes nothing (immutable fields repeated unchanged
	// included) writes nothing.
	end = e.end(t, acct)
	e.clock.Set(t2.Add(time.Minute))
	r = e.rest(t, key, "PATCH", path, map[string]any{"name": "Ann B", "_key": "rest-user-0001", "_type": "rest_user", "_class": "User"})
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "no-op patch", decode(t, r), "_version", 2, "_beginOn", ms(t2))
	e.untouched(t, acct, end)

	for _, tc := range []struct {
		name    string
		body    any
		status  int
		code    string
		substrs []string
	}{
		{"_key change", map[string]any{"_key": "rest-user-9999"}, 422, "IMMUTABLE_FIELD", []string{"_key", `"rest-user-9999"`}},
		{"_type change", map[string]any{"_type": "rest_admin"}, 422, "IMMUTABLE_FIELD", []string{"_type", `"rest_admin"`}},
		{"_class change", map[string]any{"_class": []string{"User", "Person"}}, 422, "IMMUTABLE_FIELD", []string{"_class"}},
		{"_scope change", map[string]any{"_scope": "elsewhere"}, 422, "IMMUTABLE_FIELD", []string{"_scope"}},
		{"nested property", map[string]any{"address": map[string]any{"city": "x"}}, 400, "INVALID_GRAPH_OBJECT", []string{`"address": is a nested object`}},
		{"not an object", `["name"]`, 400, "INVALID_GRAPH_OBJECT", []string{"JSON object"}},
	} {
		t.Run("patch rejects "+tc.name, func(t *testing.T) {
			r := e.rest(t, key, "PATCH", path, tc.body)
			wantError(t, r, tc.status, tc.code, tc.substrs...)
			e.untouched(t, acct, end)
			wantFields(t, "stored", e.stored(t, acct, annID), "_version", 2, "name", "Ann B", "_key", "rest-user-0001")
		})
	}
	r = e.rest(t, key, "PATCH", restBase+"/entities/"+graph.ObjectID(acct, "api", "nobody-at-all"), map[string]any{"name": "x"})
	wantError(t, r, 404, "NOT_FOUND")

	// DELETE is soft and takes the entity's relationships with it, in the
	// same transaction.
	r = e.rest(t, key, "POST", restBase+"/entities", obj("rest-user-0003", "rest_user", "User"))
	wantStatus(t, r, http.StatusCreated)
	r = e.rest(t, key, "POST", restBase+"/relationships", rel("rest-user-0001|knows|0003", "rest_user_knows_user", "KNOWS", "rest-user-0001", "rest-user-0003"))
	wantStatus(t, r, http.StatusCreated)
	relID := decode(t, r)["_id"].(string)
	end = e.end(t, acct)
	t3 := t2.Add(time.Hour)
	e.clock.Set(t3)
	r = e.rest(t, key, "DELETE", path, nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "delete answer", decode(t, r), "_deleted", true, "_endOn", ms(t3), "_version", 3, "name", "Ann B")
	changes, sizes := e.logSince(t, acct, end)
	if len(sizes) != 1 || len(changes) != 2 {
		t.Fatalf("delete wrote %d entries with %v changes, want one transaction of 2", len(sizes), sizes)
	}
	got := []string{changes[0].summary(), changes[1].summary()}
	slices.Sort(got)
	if want := []string{"d entity rest-user-0001 v3", "d relationship rest-user-0001|knows|0003 v2"}; !slices.Equal(got, want) {
		t.Errorf("delete changes %q, want %q", got, want)
	}
	r = e.rest(t, key, "GET", path, nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "deleted entity", decode(t, r), "_deleted", true, "_endOn", ms(t3), "nick", "annie")
	r = e.rest(t, key, "GET", restBase+"/relationships/"+relID, nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "cascaded relationship", decode(t, r), "_deleted", true, "_endOn", ms(t3))
	wantFields(t, "other end", e.stored(t, acct, graph.ObjectID(acct, "api", "rest-user-0003")), "_deleted", false, "_version", 1)
	// Live: rest-user-0001 of scope hr-import, and rest-user-0003.
	if keys := keysOf(e.listAll(t, key, restBase+"/entities?type=rest_user")); !slices.Equal(keys, []string{"rest-user-0001", "rest-user-0003"}) {
		t.Errorf("list after delete: %v", keys)
	}
	for _, it := range e.listAll(t, key, restBase+"/entities?type=rest_user") {
		if it.(map[string]any)["_id"] == annID {
			t.Errorf("list shows the deleted entity")
		}
	}
	if n := len(e.listAll(t, key, restBase+"/relationships")); n != 0 {
		t.Errorf("relationship list shows %d, want 0", n)
	}

	end = e.end(t, acct)
	r = e.rest(t, key, "DELETE", path, nil)
	wantError(t, r, 404, "NOT_FOUND", annID)
	r = e.rest(t, key, "PATCH", path, map[string]any{"name": "ghost"})
	wantError(t, r, 404, "NOT_FOUND", annID)
	e.untouched(t, acct, end)

	// Created again: a new life, the version goes on.
	r = e.rest(t, key, "POST", restBase+"/entities", obj("rest-user-0001", "rest_user", "User", "name", "Ann again"))
	wantStatus(t, r, http.StatusCreated)
	wantFields(t, "re-created", decode(t, r), "_id", annID, "_deleted", false, "_endOn", absent, "_version", 4, "nick", absent, "name", "Ann again")
}

func TestRESTRelationships(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	id := func(k string) string { return graph.ObjectID(acct, "api", k) }
	for _, k := range []string{"rest-node-0001", "rest-node-0002", "rest-node-0003"} {
		wantStatus(t, e.rest(t, key, "POST", restBase+"/entities", obj(k, "rest_node", "Node")), http.StatusCreated)
	}
	r := e.rest(t, key, "POST", restBase+"/entities", map[string]any{"_key": "far-node-00001", "_type": "rest_node", "_class": "Node", "_scope": "far"})
	wantStatus(t, r, http.StatusCreated)
	farID := decode(t, r)["_id"].(string)

	// By ids.
	r = e.rest(t, key, "POST", restBase+"/relationships", map[string]any{
		"_key": "rest-link-0001", "_type": "rest_node_links_node", "_class": "LINKS",
		"_fromEntityId": id("rest-node-0001"), "_toEntityId": id("rest-node-0002"), "weight": 3,
	})
	wantStatus(t, r, http.StatusCreated)
	link1 := decode(t, r)
	wantFields(t, "by ids", link1,
		"_id", id("rest-link-0001"), "_class", "LINKS", "_scope", "api", "_source", "api", "_version", 1, "_deleted", false,
		"_fromEntityId", id("rest-node-0001"), "_toEntityId", id("rest-node-0002"),
		"_fromEntityKey", "rest-node-0001", "_toEntityKey", "rest-node-0002", "weight", 3)
	// By keys (in the relationship's scope), class given as a one-item array.
	r = e.rest(t, key, "POST", restBase+"/relationships", map[string]any{
		"_key": "rest-link-0002", "_type": "rest_node_links_node", "_class": []string{"LINKS"},
		"_fromEntityKey": "rest-node-0002", "_toEntityKey": "rest-node-0003",
	})
	wantStatus(t, r, http.StatusCreated)
	wantFields(t, "by keys", decode(t, r), "_class", "LINKS",
		"_fromEntityId", id("rest-node-0002"), "_toEntityId", id("rest-node-0003"),
		"_fromEntityKey", "rest-node-0002", "_toEntityKey", "rest-node-0003")
	// To an entity of another scope, by id.
	r = e.rest(t, key, "POST", restBase+"/relationships", map[string]any{
		"_key": "rest-link-0003", "_type": "rest_node_links_node", "_class": "LINKS",
		"_fromEntityKey": "rest-node-0003", "_toEntityId": farID,
	})
	wantStatus(t, r, http.StatusCreated)
	wantFields(t, "across scopes", decode(t, r), "_toEntityId", farID, "_toEntityKey", "far-node-00001")

	end := e.end(t, acct)
	missing := id("nobody-node-01")
	for _, tc := range []struct {
		name    string
		body    map[string]any
		status  int
		code    string
		substrs []string
	}{
		{"unknown key", rel("rest-link-0009", "rest_node_links_node", "LINKS", "rest-node-0001", "nobody-node-01"), 400, "RELATIONSHIP_ENDPOINT_NOT_FOUND", []string{"_toEntityKey", `"nobody-node-01"`}},
		{"unknown id", map[string]any{"_key": "rest-link-0009", "_type": "rest_node_links_node", "_class": "LINKS", "_fromEntityId": missing, "_toEntityKey": "rest-node-0001"}, 400, "RELATIONSHIP_ENDPOINT_NOT_FOUND", []string{"_fromEntityId", missing}},
		{"a relationship as an end", map[string]any{"_key": "rest-link-0009", "_type": "rest_node_links_node", "_class": "LINKS", "_fromEntityId": id("rest-link-0001"), "_toEntityKey": "rest-node-0001"}, 400, "RELATIONSHIP_ENDPOINT_NOT_FOUND", []string{"_fromEntityId", id("rest-link-0001")}},
		{"no from end", map[string]any{"_key": "rest-link-0009", "_type": "rest_node_links_node", "_class": "LINKS", "_toEntityKey": "rest-node-0001"}, 400, "INVALID_GRAPH_OBJECT", []string{"_fromEntityId"}},
		{"two classes", map[string]any{"_key": "rest-link-0009", "_type": "rest_node_links_node", "_class": []string{"A", "B"}, "_fromEntityKey": "rest-node-0001", "_toEntityKey": "rest-node-0002"}, 400, "INVALID_GRAPH_OBJECT", []string{"exactly one class"}},
		{"duplicate", rel("rest-link-0001", "rest_node_links_node", "LINKS", "rest-node-0001", "rest-node-0002"), 409, "ALREADY_EXISTS", []string{`"rest-link-0001"`}},
		{"key of an entity", rel("rest-node-0001", "rest_node_links_node", "LINKS", "rest-node-0002", "rest-node-0003"), 409, "ALREADY_EXISTS", []string{`"rest-node-0001"`, "entity"}},
	} {
		t.Run("create rejects "+tc.name, func(t *testing.T) {
			r := e.rest(t, key, "POST", restBase+"/relationships", tc.body)
			wantError(t, r, tc.status, tc.code, tc.substrs...)
			e.untouched(t, acct, end)
			e.wantAbsent(t, acct, "api", "rest-link-0009")
		})
	}

	r = e.rest(t, key, "GET", restBase+"/relationships/"+id("rest-link-0001"), nil)
	wantStatus(t, r, http.StatusOK)
	if got := decode(t, r); !reflect.DeepEqual(got, link1) {
		t.Errorf("GET answers %v, POST answered %v", got, link1)
	}
	r = e.rest(t, key, "GET", restBase+"/entities/"+id("rest-link-0001"), nil)
	wantError(t, r, 404, "NOT_FOUND", "entity")
	if keys := keysOf(e.listAll(t, key, restBase+"/relationships?type=rest_node_links_node")); !slices.Equal(keys, []string{"rest-link-0001", "rest-link-0002", "rest-link-0003"}) {
		t.Errorf("relationship list: %v", keys)
	}

	// PATCH a property; ends and class cannot change.
	r = e.rest(t, key, "PATCH", restBase+"/relationships/"+id("rest-link-0001"), map[string]any{"weight": 4, "_class": "LINKS", "_fromEntityKey": "rest-node-0001"})
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "patched link", decode(t, r), "weight", 4, "_version", 2, "_fromEntityId", id("rest-node-0001"), "_toEntityId", id("rest-node-0002"))
	end = e.end(t, acct)
	for _, body := range []map[string]any{
		{"_fromEntityId": id("rest-node-0003")},
		{"_toEntityKey": "rest-node-0003"},
		{"_class": "HAS"},
	} {
		r = e.rest(t, key, "PATCH", restBase+"/relationships/"+id("rest-link-0001"), body)
		wantError(t, r, 422, "IMMUTABLE_FIELD", "cannot change")
	}
	e.untouched(t, acct, end)

	// DELETE a relationship: its ends stay.
	r = e.rest(t, key, "DELETE", restBase+"/relationships/"+id("rest-link-0001"), nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "deleted link", decode(t, r), "_deleted", true, "_version", 3)
	for _, k := range []string{"rest-node-0001", "rest-node-0002"} {
		wantFields(t, k, e.stored(t, acct, id(k)), "_deleted", false, "_version", 1)
	}
	// Deleting node 3 takes links 2 and 3; the deleted link 1 is not
	// deleted again.
	end = e.end(t, acct)
	r = e.rest(t, key, "DELETE", restBase+"/entities/"+id("rest-node-0003"), nil)
	wantStatus(t, r, http.StatusOK)
	want := []string{"d entity rest-node-0003 v2", "d relationship rest-link-0002 v2", "d relationship rest-link-0003 v2"}
	if got := e.logSummary(t, acct, end); !slices.Equal(got, want) {
		t.Errorf("log of the entity delete: %q, want %q", got, want)
	}
	if n := len(e.listAll(t, key, restBase+"/relationships?type=rest_node_links_node")); n != 0 {
		t.Errorf("%d relationships still listed", n)
	}
	// A relationship to a deleted entity is refused.
	r = e.rest(t, key, "POST", restBase+"/relationships", rel("rest-link-0010", "rest_node_links_node", "LINKS", "rest-node-0001", "rest-node-0003"))
	wantError(t, r, 400, "RELATIONSHIP_ENDPOINT_NOT_FOUND", `"rest-node-0003"`)
}

func TestRESTListPaging(t *testing.T) {
	e := newEnv(t)
	key := e.newAccount(t, acct)
	for _, k := range []string{"page-thing-0001", "page-thing-0002", "page-thing-0003", "page-thing-0004", "page-thing-0005"} {
		wantStatus(t, e.rest(t, key, "POST", restBase+"/entities", obj(k, "page_thing", "Thing")), http.StatusCreated)
	}
	for _, k := range []string{"page-thing-x-01", "page-thing-x-02"} {
		wantStatus(t, e.rest(t, key, "POST", restBase+"/entities", obj(k, "page_thing_x", "Thing")), http.StatusCreated)
	}

	// limit=2 over 5: pages of 2, 2, 1; only the last has no cursor.
	var seen []string
	cursor := ""
	for page := 0; ; page++ {
		p := restBase + "/entities?type=page_thing&limit=2"
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		r := e.rest(t, key, "GET", p, nil)
		wantStatus(t, r, http.StatusOK)
		m := decode(t, r)
		items, _ := m["items"].([]any)
		next, hasNext := m["nextCursor"].(string)
		wantItems, wantNext := 2, true
		if page == 2 {
			wantItems, wantNext = 1, false
		}
		if len(items) != wantItems || hasNext != wantNext {
			t.Fatalf("page %d: %d items, nextCursor %q; want %d items, cursor %v", page, len(items), next, wantItems, wantNext)
		}
		seen = append(seen, keysOf(items)...)
		if !hasNext {
			break
		}
		cursor = next
	}
	slices.Sort(seen)
	if want := []string{"page-thing-0001", "page-thing-0002", "page-thing-0003", "page-thing-0004", "page-thing-0005"}; !slices.Equal(seen, want) {
		t.Errorf("pages held %v, want %v (the type is matched exactly)", seen, want)
	}
	// Exactly two pages of 2 for 4: no empty third page.
	wantStatus(t, e.rest(t, key, "DELETE", restBase+"/entities/"+graph.ObjectID(acct, "api", "page-thing-0003"), nil), http.StatusOK)
	r := e.rest(t, key, "GET", restBase+"/entities?type=page_thing&limit=2", nil)
	next, _ := decode(t, r)["nextCursor"].(string)
	r = e.rest(t, key, "GET", restBase+"/entities?type=page_thing&limit=2&cursor="+next, nil)
	wantStatus(t, r, http.StatusOK)
	if m := decode(t, r); len(m["items"].([]any)) != 2 || m["nextCursor"] != nil {
		t.Errorf("last page of 4 by 2: %v", m)
	}
	if n := len(e.listAll(t, key, restBase+"/entities?limit=3")); n != 6 {
		t.Errorf("all live entities: %d, want 6", n)
	}

	// 100 per page by default.
	job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "bulk"})
	var bulk []map[string]any
	for i := range 105 {
		bulk = append(bulk, obj("bulk-thing-"+string(rune('a'+i/26))+string(rune('a'+i%26)), "bulk_thing", "Thing"))
	}
	e.upload(t, key, acct, job["id"].(string), "entities", bulk)
	wantCounts(t, e.finalize(t, key, acct, job["id"].(string), nil), "numEntitiesCreated", 105)
	r = e.rest(t, key, "GET", restBase+"/entities?type=bulk_thing", nil)
	wantStatus(t, r, http.StatusOK)
	if m := decode(t, r); len(m["items"].([]any)) != 100 || m["nextCursor"] == nil {
		t.Errorf("default page: %d items, nextCursor %v; want 100 and a cursor", len(m["items"].([]any)), m["nextCursor"])
	}

	for _, bad := range []string{"0", "-1", "abc", "1001", "2.5"} {
		r := e.rest(t, key, "GET", restBase+"/entities?limit="+bad, nil)
		wantError(t, r, 400, "INVALID_LIMIT", `"`+bad+`"`, "1 to 1000")
	}
	for _, bad := range []string{"!!!", "%25%25"} {
		r := e.rest(t, key, "GET", restBase+"/relationships?cursor="+bad, nil)
		wantError(t, r, 400, "INVALID_CURSOR", "nextCursor")
	}
}

func TestRESTAuth(t *testing.T) {
	e := newEnv(t)
	admin := e.newAccount(t, acct)
	member := e.newKey(t, acct, "member")
	otherKey := e.newAccount(t, "other-acct")

	// A member key reads and writes the graph.
	r := e.rest(t, member, "POST", restBase+"/entities", obj("member-made-001", "rest_thing", "Thing", "v", 1))
	wantStatus(t, r, http.StatusCreated)
	id := decode(t, r)["_id"].(string)
	wantStatus(t, e.rest(t, member, "GET", restBase+"/entities/"+id, nil), http.StatusOK)
	wantStatus(t, e.rest(t, member, "PATCH", restBase+"/entities/"+id, map[string]any{"v": 2}), http.StatusOK)
	wantStatus(t, e.rest(t, member, "GET", restBase+"/entities", nil), http.StatusOK)
	wantStatus(t, e.rest(t, admin, "GET", restBase+"/entities/"+id, nil), http.StatusOK)
	r = e.rest(t, otherKey, "POST", "/api/v1/accounts/other-acct/entities", obj("theirs-thing-01", "rest_thing", "Thing"))
	wantStatus(t, r, http.StatusCreated)
	theirID := decode(t, r)["_id"].(string)

	end, otherEnd := e.end(t, acct), e.end(t, "other-acct")
	for _, tc := range []struct {
		name, key, method, path string
		status                  int
		code                    string
		substrs                 []string
	}{
		{"no key", "", "GET", restBase + "/entities/" + id, 401, "UNAUTHORIZED", []string{"Authorization: Bearer"}},
		{"bad key", "j1ds_made-up", "GET", restBase + "/entities/" + id, 401, "UNAUTHORIZED", []string{"not valid"}},
		{"operator key", operatorKey, "GET", restBase + "/entities", 401, "UNAUTHORIZED", []string{"not valid"}},
		{"other account's path, read", member, "GET", "/api/v1/accounts/other-acct/entities/" + theirID, 403, "FORBIDDEN", []string{`"other-acct"`}},
		{"other account's path, write", admin, "POST", "/api/v1/accounts/other-acct/entities", 403, "FORBIDDEN", []string{`"other-acct"`}},
		{"other account's path, delete", admin, "DELETE", "/api/v1/accounts/other-acct/entities/" + theirID, 403, "FORBIDDEN", []string{`"other-acct"`}},
		{"unknown account path", admin, "GET", "/api/v1/accounts/ghost-acct/entities", 403, "FORBIDDEN", []string{`"ghost-acct"`}},
		{"invalid account id", admin, "GET", "/api/v1/accounts/a:b/entities", 400, "INVALID_ACCOUNT_ID", []string{`"a:b"`}},
		{"escaped slash in account id", admin, "GET", "/api/v1/accounts/a%2Fb/entities", 400, "INVALID_ACCOUNT_ID", []string{`"a/b"`}},
		{"other account's object under own path", admin, "GET", restBase + "/entities/" + theirID, 404, "NOT_FOUND", []string{theirID}},
		{"other account's object, delete under own path", admin, "DELETE", restBase + "/entities/" + theirID, 404, "NOT_FOUND", []string{theirID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr{}
			if tc.key != "" {
				h = hdr{"Authorization", "Bearer " + tc.key}
			}
			var body any
			if tc.method == "POST" {
				body = obj("intruder-thing-1", "rest_thing", "Thing")
			}
			r := e.do(t, tc.method, tc.path, body, h)
			wantError(t, r, tc.status, tc.code, tc.substrs...)
		})
	}
	e.untouched(t, acct, end)
	e.untouched(t, "other-acct", otherEnd)
	e.wantAbsent(t, "other-acct", "api", "intruder-thing-1")
	wantFields(t, "their thing", e.stored(t, "other-acct", theirID), "_deleted", false)

	r = e.rest(t, member, "DELETE", restBase+"/entities/"+id, nil)
	wantStatus(t, r, http.StatusOK)
}
