package api_test

// TestSDKSync* run the real JupiterOne sync client
// (@jupiterone/integration-sdk-runtime 17.4.0, see testdata/sdk) against a
// j1ds server and check the jobs, the graph through the REST API and the
// transaction log.

import (
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/j1ds/j1ds/internal/graph"
)

const (
	sdkAccount = "sdk-acct"
	instanceA  = "11111111-2222-3333-4444-555555555555"
	instanceB  = "66666666-7777-4888-9999-aaaaaaaaaaaa"
)

// The fixture graph of an "acme" integration: users, groups and devices;
// groups have users, users own devices.

func userKey(i int) string   { return fmt.Sprintf("acme-user-%04d", i) }
func groupKey(i int) string  { return fmt.Sprintf("acme-group-%04d", i) }
func deviceKey(i int) string { return fmt.Sprintf("acme-device-%04d", i) }
func groupOf(u int) int      { return (u-1)%6 + 1 }
func hasKey(u int) string    { return groupKey(groupOf(u)) + "|has|" + userKey(u) }
func ownsKey(u, d int) string {
	return userKey(u) + "|owns|" + deviceKey(d)
}

func acmeUser(i int) map[string]any {
	return obj(userKey(i), "acme_user", []string{"User"},
		"name", fmt.Sprintf("User %d", i), "displayName", fmt.Sprintf("User %d", i),
		"active", i%2 == 0, "score", float64(i)+0.5, "emails", []string{fmt.Sprintf("u%d@acme.test", i)},
		"tag.Team", "red", "_rawData", []any{map[string]any{"name": "default", "rawData": map[string]any{"id": i}}})
}

func acmeGroup(i int) map[string]any {
	return obj(groupKey(i), "acme_group", "UserGroup", "name", fmt.Sprintf("Group %d", i), "displayName", fmt.Sprintf("Group %d", i))
}

func acmeDevice(i int) map[string]any {
	return obj(deviceKey(i), "acme_device", []string{"Device", "Host"},
		"name", fmt.Sprintf("Device %d", i), "serial", fmt.Sprintf("SN-%05d", i), "ports", []int{22, 443}, "lastSeenOn", nil)
}

func acmeHas(u int) map[string]any {
	return rel(hasKey(u), "acme_group_has_user", "HAS", groupKey(groupOf(u)), userKey(u))
}

func acmeOwns(u, d int) map[string]any {
	return rel(ownsKey(u, d), "acme_user_owns_device", "OWNS", userKey(u), deviceKey(d), "primary", true)
}

// sdkRun runs a one-job scenario through sync.js and returns its result.
func sdkRun(t *testing.T, dir string, e *env, key string, scenario map[string]any) map[string]any {
	t.Helper()
	res := runSDKSync(t, dir, e.srv.URL, sdkAccount, key, scenario)
	if len(res) != 1 {
		t.Fatalf("sync.js printed %d results, want 1: %v", len(res), res)
	}
	if res[0]["error"] != nil {
		t.Fatalf("SDK job failed: %v", res[0]["error"])
	}
	return res[0]
}

// sdkJob waits for the job the SDK finalized and returns it (GET).
func sdkJob(t *testing.T, e *env, key string, res map[string]any) map[string]any {
	t.Helper()
	j, _ := res["job"].(map[string]any)
	id, _ := j["id"].(string)
	if id == "" {
		t.Fatalf("SDK result has no job id: %v", res)
	}
	return e.waitJob(t, key, sdkAccount, id)
}

// TestSDKSync: the JupiterOne SDK syncs through the API, on every backend.
func TestSDKSync(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testSDKSync(t, newEnvOn(t, b)) })
	}
}

func testSDKSync(t *testing.T, e *env) {
	dir := installSDK(t)
	key := e.newAccount(t, sdkAccount)
	id := func(k string) string { return graph.ObjectID(sdkAccount, instanceA, k) }
	base := "/api/v1/accounts/" + sdkAccount
	get := func(kind, k string) map[string]any {
		t.Helper()
		r := e.rest(t, key, "GET", base+"/"+kind+"/"+id(k), nil)
		wantStatus(t, r, http.StatusOK)
		return decode(t, r)
	}

	// Job 1: integration-managed, two uploadGraphObjectData calls that the
	// SDK splits into many small requests.
	t1 := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	e.clock.Set(t1)
	var ents1, rels1 []map[string]any
	for i := 1; i <= 12; i++ {
		ents1 = append(ents1, acmeUser(i))
		rels1 = append(rels1, acmeHas(i))
	}
	for i := 1; i <= 6; i++ {
		ents1 = append(ents1, acmeGroup(i))
	}
	var devs1, owns1 []map[string]any
	for i := 1; i <= 10; i++ {
		devs1 = append(devs1, acmeDevice(i))
		owns1 = append(owns1, acmeOwns(i, i))
	}
	res := sdkRun(t, dir, e, key, map[string]any{
		"uploadBatchSizeInBytes": 1000,
		"jobs": []any{map[string]any{
			"source": "integration-managed", "integrationInstanceId": instanceA,
			"batches": []any{
				map[string]any{"entities": ents1, "relationships": rels1},
				map[string]any{"entities": devs1, "relationships": owns1},
			},
		}},
	})
	created, _ := res["created"].(map[string]any)
	wantFields(t, "created job 1", created,
		"status", "AWAITING_UPLOADS", "source", "integration-managed", "scope", instanceA,
		"integrationInstanceId", instanceA, "syncMode", "DIFF", "accountId", sdkAccount,
		"startTimestamp", ms(t1), "numEntitiesUploaded", 0)
	job1 := sdkJob(t, e, key, res)
	if _, err := uuid.Parse(job1["id"].(string)); err != nil {
		t.Errorf("job id %v is not a UUID (the SDK gzips only for UUID job ids): %v", job1["id"], err)
	}
	wantCounts(t, job1, "status", "FINISHED",
		"numEntitiesUploaded", 28, "numEntitiesCreated", 28, "numEntitiesUpdated", 0, "numEntitiesDeleted", 0,
		"numRelationshipsUploaded", 22, "numRelationshipsCreated", 22, "numRelationshipsUpdated", 0, "numRelationshipsDeleted", 0)
	job1Path := jobsPath + "/" + job1["id"].(string)
	if n := len(e.requests("POST", job1Path+"/entities")); n < 6 {
		t.Errorf("the SDK sent %d entity uploads for job 1; uploadBatchSizeInBytes 1000 should split 28 entities into at least 6", n)
	}
	if n := len(e.requests("POST", job1Path+"/relationships")); n < 4 {
		t.Errorf("the SDK sent %d relationship uploads for job 1, want at least 4", n)
	}
	log1 := e.logSummary(t, sdkAccount, 0)
	if len(log1) != 50 || slices.ContainsFunc(log1, func(s string) bool { return s[0] != 'c' || s[len(s)-3:] != " v1" }) {
		t.Errorf("log after job 1: want 50 creates at version 1, got %d: %v", len(log1), log1)
	}

	// The graph through the REST API, with its metadata.
	users := e.listAll(t, key, base+"/entities?type=acme_user")
	var wantUsers []string
	for i := 1; i <= 12; i++ {
		wantUsers = append(wantUsers, userKey(i))
	}
	if got := keysOf(users); !slices.Equal(got, wantUsers) {
		t.Errorf("acme_user list: %v, want %v", got, wantUsers)
	}
	if got := keysOf(e.listAll(t, key, base+"/entities?type=acme_device")); len(got) != 10 {
		t.Errorf("acme_device list has %d entities, want 10: %v", len(got), got)
	}
	if got := keysOf(e.listAll(t, key, base+"/relationships?type=acme_group_has_user")); len(got) != 12 {
		t.Errorf("acme_group_has_user list has %d relationships, want 12: %v", len(got), got)
	}
	u1 := get("entities", userKey(1))
	if u, err := uuid.Parse(id(userKey(1))); err != nil || u.Version() != 5 {
		t.Errorf("graph.ObjectID gave %s, not a UUIDv5 (%v)", id(userKey(1)), err)
	}
	wantFields(t, "user 1", u1,
		"_id", id(userKey(1)), "_key", userKey(1), "_type", "acme_user", "_class", []string{"User"},
		"_version", 1, "_createdOn", ms(t1), "_beginOn", ms(t1), "_deleted", false, "_endOn", absent,
		"_accountId", sdkAccount, "_scope", instanceA, "_source", "integration-managed",
		"_integrationInstanceId", instanceA,
		"name", "User 1", "active", false, "score", 1.5, "emails", []string{"u1@acme.test"}, "tag.Team", "red",
		"_rawData", absent)
	if i := slices.IndexFunc(users, func(u any) bool { return u.(map[string]any)["_key"] == userKey(1) }); i >= 0 {
		if listed := users[i].(map[string]any); !reflect.DeepEqual(listed, u1) {
			t.Errorf("user 1 as listed %v differs from GET %v", listed, u1)
		}
	}
	wantFields(t, "group 1", get("entities", groupKey(1)), "_class", []string{"UserGroup"}, "_version", 1, "_scope", instanceA)
	wantFields(t, "device 3", get("entities", deviceKey(3)),
		"_class", []string{"Device", "Host"}, "ports", []int{22, 443}, "lastSeenOn", nil, "_version", 1)
	wantFields(t, "relationship has user 7", get("relationships", hasKey(7)),
		"_id", id(hasKey(7)), "_key", hasKey(7), "_type", "acme_group_has_user", "_class", "HAS",
		"_fromEntityId", id(groupKey(1)), "_toEntityId", id(userKey(7)),
		"_fromEntityKey", groupKey(1), "_toEntityKey", userKey(7),
		"_version", 1, "_createdOn", ms(t1), "_beginOn", ms(t1), "_deleted", false,
		"_accountId", sdkAccount, "_scope", instanceA, "_source", "integration-managed", "_integrationInstanceId", instanceA)

	// An object of another scope, linked to user 12 by id: when job 2
	// deletes user 12 the link goes with it, the note stays.
	r := e.rest(t, key, "POST", base+"/entities", obj("api-note-0001", "acme_note", "Note", "text", "see user 12"))
	wantStatus(t, r, http.StatusCreated)
	r = e.rest(t, key, "POST", base+"/relationships", map[string]any{
		"_key": "api-note-0001|mentions|user-12", "_type": "acme_note_mentions_user", "_class": "MENTIONS",
		"_fromEntityKey": "api-note-0001", "_toEntityId": id(userKey(12)),
	})
	wantStatus(t, r, http.StatusCreated)
	mention := decode(t, r)

	// Job 2 (DIFF, the SDK's default): changes users 1-3, group 1,
	// device 1 and the ownership of device 1; adds users 13, 14 and
	// device 11; omits users 11, 12 and device 10. User 4 comes with other
	// _rawData only, which is not graph data: unchanged.
	t2 := t1.Add(time.Hour)
	e.clock.Set(t2)
	end1 := e.end(t, sdkAccount)
	var ents2, rels2 []map[string]any
	for i := 1; i <= 14; i++ {
		if i == 11 || i == 12 {
			continue
		}
		u := acmeUser(i)
		if i <= 3 {
			u["name"] = fmt.Sprintf("User %d (renamed)", i)
		}
		if i == 4 {
			u["_rawData"] = []any{map[string]any{"name": "default", "rawData": map[string]any{"id": 4, "etag": "new"}}}
		}
		ents2 = append(ents2, u)
		rels2 = append(rels2, acmeHas(i))
	}
	for i := 1; i <= 6; i++ {
		g := acmeGroup(i)
		if i == 1 {
			g["description"] = "the first group"
		}
		ents2 = append(ents2, g)
	}
	for i := 1; i <= 11; i++ {
		if i == 10 {
			continue
		}
		d := acmeDevice(i)
		if i == 1 {
			d["serial"] = "SN-REPLACED"
		}
		ents2 = append(ents2, d)
	}
	for u := 1; u <= 9; u++ {
		o := acmeOwns(u, u)
		if u == 1 {
			o["since"] = 2024
		}
		rels2 = append(rels2, o)
	}
	rels2 = append(rels2, acmeOwns(13, 11))
	res = sdkRun(t, dir, e, key, map[string]any{
		"uploadBatchSizeInBytes": 1500,
		"jobs": []any{map[string]any{
			"source": "integration-managed", "integrationInstanceId": instanceA,
			"batches": []any{map[string]any{"entities": ents2, "relationships": rels2}},
		}},
	})
	job2 := sdkJob(t, e, key, res)
	// The mention from the api scope is deleted by the cascade of user 12's
	// deletion and counted with the job's deletions, like the log holds it.
	wantCounts(t, job2, "status", "FINISHED",
		"numEntitiesUploaded", 28, "numEntitiesCreated", 3, "numEntitiesUpdated", 5, "numEntitiesDeleted", 3,
		"numRelationshipsUploaded", 22, "numRelationshipsCreated", 3, "numRelationshipsUpdated", 1, "numRelationshipsDeleted", 4)
	wantLog := []string{
		"c entity " + userKey(13) + " v1",
		"c entity " + userKey(14) + " v1",
		"c entity " + deviceKey(11) + " v1",
		"c relationship " + hasKey(13) + " v1",
		"c relationship " + hasKey(14) + " v1",
		"c relationship " + ownsKey(13, 11) + " v1",
		"d entity " + userKey(11) + " v2",
		"d entity " + userKey(12) + " v2",
		"d entity " + deviceKey(10) + " v2",
		"d relationship " + hasKey(11) + " v2",
		"d relationship " + hasKey(12) + " v2",
		"d relationship " + ownsKey(10, 10) + " v2",
		"d relationship api-note-0001|mentions|user-12 v2",
		"u entity " + userKey(1) + " v2",
		"u entity " + userKey(2) + " v2",
		"u entity " + userKey(3) + " v2",
		"u entity " + groupKey(1) + " v2",
		"u entity " + deviceKey(1) + " v2",
		"u relationship " + ownsKey(1, 1) + " v2",
	}
	slices.Sort(wantLog)
	if got := e.logSummary(t, sdkAccount, end1); !slices.Equal(got, wantLog) {
		t.Errorf("log of job 2:\n got %q\nwant %q", got, wantLog)
	}

	wantFields(t, "renamed user 2", get("entities", userKey(2)),
		"name", "User 2 (renamed)", "_version", 2, "_createdOn", ms(t1), "_beginOn", ms(t2), "_deleted", false)
	wantFields(t, "unchanged user 4 (new _rawData only)", get("entities", userKey(4)),
		"_version", 1, "_createdOn", ms(t1), "_beginOn", ms(t1))
	wantFields(t, "unchanged user 10", get("entities", userKey(10)), "_version", 1, "_beginOn", ms(t1))
	wantFields(t, "group 1", get("entities", groupKey(1)), "description", "the first group", "_version", 2, "_beginOn", ms(t2))
	wantFields(t, "device 1", get("entities", deviceKey(1)), "serial", "SN-REPLACED", "_version", 2)
	wantFields(t, "device 2", get("entities", deviceKey(2)), "serial", "SN-00002", "_version", 1)
	wantFields(t, "new user 13", get("entities", userKey(13)),
		"_version", 1, "_createdOn", ms(t2), "_beginOn", ms(t2), "_scope", instanceA, "_integrationInstanceId", instanceA)
	wantFields(t, "changed ownership", get("relationships", ownsKey(1, 1)), "since", 2024, "_version", 2, "_beginOn", ms(t2))
	wantFields(t, "unchanged ownership", get("relationships", ownsKey(2, 2)), "_version", 1, "_beginOn", ms(t1))
	for _, k := range []string{userKey(11), userKey(12), deviceKey(10)} {
		wantFields(t, "omitted "+k, get("entities", k), "_deleted", true, "_endOn", ms(t2), "_version", 2, "_createdOn", ms(t1))
	}
	for _, k := range []string{hasKey(11), hasKey(12), ownsKey(10, 10)} {
		wantFields(t, "relationship "+k, get("relationships", k), "_deleted", true, "_endOn", ms(t2))
	}
	r = e.rest(t, key, "GET", base+"/relationships/"+mention["_id"].(string), nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "mention of deleted user 12", decode(t, r), "_deleted", true, "_endOn", ms(t2), "_scope", "api")
	r = e.rest(t, key, "GET", base+"/entities/"+graph.ObjectID(sdkAccount, "api", "api-note-0001"), nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "note of the api scope", decode(t, r), "_deleted", false, "_version", 1)
	wantUsers = nil
	for _, i := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14} {
		wantUsers = append(wantUsers, userKey(i))
	}
	if got := keysOf(e.listAll(t, key, base+"/entities?type=acme_user")); !slices.Equal(got, wantUsers) {
		t.Errorf("acme_user list after job 2: %v, want %v", got, wantUsers)
	}

	// Job 3, the way `j1-integration sync` sends collected data
	// (synchronizeCollectedData: events, uploads, finalize with the
	// summary's partialDatasets). Devices and ownerships are left out but
	// their types are partial datasets: kept. User 14 is left out and its
	// type is not partial: deleted, with its group membership.
	t3 := t2.Add(time.Hour)
	e.clock.Set(t3)
	end2 := e.end(t, sdkAccount)
	var ents3, rels3 []map[string]any
	for _, u := range ents2 {
		if u["_type"] != "acme_device" && u["_key"] != userKey(14) {
			ents3 = append(ents3, u)
		}
	}
	for _, r := range rels2 {
		if r["_type"] == "acme_group_has_user" && r["_key"] != hasKey(14) {
			rels3 = append(rels3, r)
		}
	}
	res = sdkRun(t, dir, e, key, map[string]any{
		"jobs": []any{map[string]any{
			"client": "collected", "source": "integration-managed",
			"integrationInstanceId": instanceA, "integrationJobId": "ij-0003",
			"partialDatasets": map[string]any{"types": []string{"acme_device", "acme_user_owns_device"}},
			"batches": []any{
				map[string]any{"entities": ents3[:10]},
				map[string]any{"entities": ents3[10:], "relationships": rels3},
			},
		}},
	})
	job3 := sdkJob(t, e, key, res)
	wantCounts(t, job3, "status", "FINISHED", "integrationJobId", "ij-0003",
		"numEntitiesUploaded", len(ents3), "numEntitiesCreated", 0, "numEntitiesUpdated", 0, "numEntitiesDeleted", 1,
		"numRelationshipsUploaded", len(rels3), "numRelationshipsCreated", 0, "numRelationshipsUpdated", 0, "numRelationshipsDeleted", 1,
		"partialDatasets", map[string]any{"types": []string{"acme_device", "acme_user_owns_device"}})
	if n, _ := job3["numEvents"].(float64); n < 2 {
		t.Errorf("job 3 counted %v events; synchronizeCollectedData posts at least sync_upload_start and sync_upload_end", job3["numEvents"])
	}
	wantLog = []string{"d entity " + userKey(14) + " v2", "d relationship " + hasKey(14) + " v2"}
	if got := e.logSummary(t, sdkAccount, end2); !slices.Equal(got, wantLog) {
		t.Errorf("log of job 3:\n got %q\nwant %q", got, wantLog)
	}
	wantFields(t, "device 1 (partial dataset)", get("entities", deviceKey(1)), "_deleted", false, "_version", 2)
	wantFields(t, "ownership (partial dataset)", get("relationships", ownsKey(13, 11)), "_deleted", false, "_version", 1)
	wantFields(t, "user 14", get("entities", userKey(14)), "_deleted", true, "_endOn", ms(t3))
}

// TestSDKSyncCompressed runs the SDK with compressUploads: every upload
// arrives gzipped, and is applied like a plain one. The job's scope is a
// second integration instance: its DIFF leaves the first one alone.
// TestSDKSyncCompressed: the SDK's compressed uploads, on every backend.
func TestSDKSyncCompressed(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testSDKSyncCompressed(t, newEnvOn(t, b)) })
	}
}

func testSDKSyncCompressed(t *testing.T, e *env) {
	dir := installSDK(t)
	key := e.newAccount(t, sdkAccount)

	// Something in instance A that the DIFF of instance B must not touch.
	other := e.createJob(t, key, sdkAccount, map[string]any{"source": "integration-managed", "integrationInstanceId": instanceA})
	e.upload(t, key, sdkAccount, other["id"].(string), "entities", []map[string]any{acmeUser(1), acmeUser(2)})
	if j := e.finalize(t, key, sdkAccount, other["id"].(string), nil); j["numEntitiesCreated"] != 2.0 {
		t.Fatalf("setup job: %v", j)
	}

	var hosts, links []map[string]any
	for i := 1; i <= 20; i++ {
		hosts = append(hosts, obj(fmt.Sprintf("beta-host-%04d", i), "beta_host", "Host",
			"name", fmt.Sprintf("host %d", i), "note", "padding to make the bodies a little larger than tiny"))
	}
	for i := 1; i < 20; i += 2 {
		links = append(links, rel(fmt.Sprintf("beta-link-%04d", i), "beta_host_connects_host", "CONNECTS",
			fmt.Sprintf("beta-host-%04d", i), fmt.Sprintf("beta-host-%04d", i+1)))
	}
	end := e.end(t, sdkAccount)
	results := runSDKSync(t, dir, e.srv.URL, sdkAccount, key, map[string]any{
		"compressUploads":        true,
		"uploadBatchSizeInBytes": 1200,
		"jobs": []any{
			map[string]any{
				"source": "integration-managed", "integrationInstanceId": instanceB,
				"batches": []any{map[string]any{"entities": hosts, "relationships": links}},
			},
			// An api-source job: the SDK sends its scope.
			map[string]any{
				"source": "api", "scope": "sdk-api-scope",
				"batches": []any{map[string]any{"entities": []any{obj("api-made-host-1", "beta_host", "Host")}}},
			},
			// Aborted: nothing of it is applied.
			map[string]any{
				"source": "api", "scope": "sdk-aborted", "finish": "abort", "abortReason": "changed my mind",
				"batches": []any{map[string]any{"entities": []any{obj("aborted-host-01", "beta_host", "Host")}}},
			},
			// A bad object: the SDK gets the 400 with its code and gives up.
			map[string]any{
				"source": "api", "scope": "sdk-bad", "expectError": true,
				"batches": []any{map[string]any{"entities": []any{obj("bad-host-000001", "beta_host", "Host", "nested", map[string]any{"a": 1})}}},
			},
		},
	})
	if len(results) != 4 {
		t.Fatalf("sync.js printed %d results, want 4: %v", len(results), results)
	}
	for _, i := range []int{0, 1, 2} {
		if results[i]["error"] != nil {
			t.Fatalf("SDK job %d failed: %v", i, results[i]["error"])
		}
	}
	job := sdkJob(t, e, key, results[0])
	wantCounts(t, job, "status", "FINISHED", "scope", instanceB,
		"numEntitiesUploaded", 20, "numEntitiesCreated", 20, "numEntitiesDeleted", 0,
		"numRelationshipsUploaded", 10, "numRelationshipsCreated", 10, "numRelationshipsDeleted", 0)

	jobPath := jobsPath + "/" + job["id"].(string)
	uploads := append(e.requests("POST", jobPath+"/entities"), e.requests("POST", jobPath+"/relationships")...)
	if len(uploads) < 4 {
		t.Errorf("the SDK sent %d uploads, want several", len(uploads))
	}
	for _, u := range uploads {
		if u.ContentEncoding != "gzip" {
			t.Errorf("upload %s came with Content-Encoding %q, want gzip (compressUploads)", u.Path, u.ContentEncoding)
		}
	}

	base := "/api/v1/accounts/" + sdkAccount
	r := e.rest(t, key, "GET", base+"/entities/"+graph.ObjectID(sdkAccount, instanceB, "beta-host-0007"), nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "host 7", decode(t, r), "name", "host 7", "_scope", instanceB, "_integrationInstanceId", instanceB, "_version", 1)
	r = e.rest(t, key, "GET", base+"/relationships/"+graph.ObjectID(sdkAccount, instanceB, "beta-link-0007"), nil)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "link 7", decode(t, r),
		"_fromEntityId", graph.ObjectID(sdkAccount, instanceB, "beta-host-0007"),
		"_toEntityId", graph.ObjectID(sdkAccount, instanceB, "beta-host-0008"))
	if got := keysOf(e.listAll(t, key, base+"/entities?type=acme_user")); !slices.Equal(got, []string{userKey(1), userKey(2)}) {
		t.Errorf("instance A users after instance B's DIFF job: %v", got)
	}

	apiJob := sdkJob(t, e, key, results[1])
	wantCounts(t, apiJob, "status", "FINISHED", "source", "api", "scope", "sdk-api-scope", "integrationInstanceId", absent, "numEntitiesCreated", 1)
	wantFields(t, "api-source entity", e.stored(t, sdkAccount, graph.ObjectID(sdkAccount, "sdk-api-scope", "api-made-host-1")),
		"_source", "api", "_scope", "sdk-api-scope", "_integrationInstanceId", absent)

	aborted, _ := results[2]["fetched"].(map[string]any)
	wantFields(t, "aborted job", aborted, "status", "ABORTED", "abortReason", "changed my mind", "numEntitiesUploaded", 1, "numEntitiesCreated", 0)
	e.wantAbsent(t, sdkAccount, "sdk-aborted", "aborted-host-01")

	// The SDK wraps the answer's {"error":{"code","message"}} into its own
	// error message.
	failed, _ := results[3]["error"].(map[string]any)
	msg, _ := failed["message"].(string)
	if failed["phase"] != "upload" || failed["code"] != "SYNCHRONIZATION_API_RESPONSE_ERROR" {
		t.Errorf("bad upload: the SDK saw %v, want an upload SYNCHRONIZATION_API_RESPONSE_ERROR", failed)
	}
	for _, want := range []string{"code=INVALID_GRAPH_OBJECT", `entities[0] (_key "bad-host-000001")`, `"nested": is a nested object`} {
		if !strings.Contains(msg, want) {
			t.Errorf("bad upload: the SDK's message %q does not contain %q", msg, want)
		}
	}
	e.wantAbsent(t, sdkAccount, "sdk-bad", "bad-host-000001")

	// The log holds exactly the two applied jobs' objects.
	cs, _ := e.logSince(t, sdkAccount, end)
	if len(cs) != 31 || slices.ContainsFunc(cs, func(c change) bool { return c.Op != "c" }) {
		t.Errorf("log after the SDK jobs: %d changes, want 31 creates", len(cs))
	}
}
