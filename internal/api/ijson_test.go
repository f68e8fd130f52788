package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// nonIJSON are values an upload may not hold, written as raw JSON members:
// each breaks a common JSON reader of the export (Go's encoding/json
// refuses 1e400; Python's int() refuses more than 4,300 digits; a lone
// surrogate is no Unicode text), with the field and reason the answer
// names.
var nonIJSON = []struct{ name, member, field, reason string }{
	{"number beyond a float64", `"size":1e400`, `"size"`, "beyond the range of a 64-bit float"},
	{"integer of 5000 digits", `"id":` + strings.Repeat("7", 5000), `"id"`, "5000 characters, more than the limit of 1000"},
	{"lone surrogate in a value", `"name":"Ann\ud800"`, `"name"`, `holds \ud800, half of a UTF-16 surrogate pair`},
	{"lone surrogate in an array", `"tags":["a","\udc00"]`, `"tags"`, `item 1 holds \udc00`},
	{"lone surrogate in a name", `"na\udbffme":"x"`, `"na\udbffme"`, `member name holds \udbff`},
}

// TestRESTRefusesValuesReadersCannotParse: the REST API refuses a create
// or an update holding a value not every JSON reader parses, with 400
// INVALID_GRAPH_OBJECT naming the field and the reason, and writes
// nothing, on every backend.
func TestRESTRefusesValuesReadersCannotParse(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testRESTRefusesValuesReadersCannotParse(t, newEnvOn(t, b)) })
	}
}

func testRESTRefusesValuesReadersCannotParse(t *testing.T, e *env) {
	key := e.newAccount(t, acct)
	r := e.rest(t, key, "POST", restBase+"/entities", obj("ijson-entity-0001", "ijson_thing", "Thing", "name", "kept"))
	wantStatus(t, r, http.StatusCreated)
	id := decode(t, r)["_id"].(string)
	end := e.end(t, acct)
	for i, tc := range nonIJSON {
		t.Run(tc.name, func(t *testing.T) {
			k := fmt.Sprintf("ijson-create-%04d", i)
			body := `{"_key":"` + k + `","_type":"ijson_thing","_class":"Thing",` + tc.member + `}`
			r := e.rest(t, key, "POST", restBase+"/entities", body)
			wantError(t, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", tc.field+": ", tc.reason)
			e.wantAbsent(t, acct, "api", k)

			r = e.rest(t, key, "PATCH", restBase+"/entities/"+id, `{"other":1,`+tc.member+`}`)
			wantError(t, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", tc.field+": ", tc.reason)
			e.untouched(t, acct, end)
			wantFields(t, "after the refused update", e.stored(t, acct, id), "name", "kept", "other", absent, "_version", 1)
		})
	}
	t.Run("relationship", func(t *testing.T) {
		body := `{"_key":"ijson-rel-0001","_type":"ijson_has","_class":"HAS","_fromEntityId":"` + id + `","_toEntityId":"` + id + `","weight":-1e309}`
		r := e.rest(t, key, "POST", restBase+"/relationships", body)
		wantError(t, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", `"weight": is the number -1e309`)
		e.untouched(t, acct, end)
	})
	// The values at the edges are accepted, and read back as sent.
	r = e.rest(t, key, "PATCH", restBase+"/entities/"+id, `{"big":1.7976931348623157e308,"tiny":1e-400,"smile":"\ud83d\ude00"}`)
	wantStatus(t, r, http.StatusOK)
	wantFields(t, "after the accepted update", e.stored(t, acct, id), "big", 1.7976931348623157e308, "tiny", 0, "smile", "\U0001F600")
}

// TestSyncRefusesValuesReadersCannotParse: a sync upload holding a value
// not every JSON reader parses is refused whole, naming the object and the
// field, and nothing of it is staged: the job counts nothing and its
// finalization writes nothing, on every backend.
func TestSyncRefusesValuesReadersCannotParse(t *testing.T) {
	for _, b := range backends {
		t.Run(b, func(t *testing.T) { testSyncRefusesValuesReadersCannotParse(t, newEnvOn(t, b)) })
	}
}

func testSyncRefusesValuesReadersCannotParse(t *testing.T, e *env) {
	key := e.newAccount(t, acct)
	for i, tc := range nonIJSON {
		t.Run(tc.name, func(t *testing.T) {
			scope := fmt.Sprintf("ijson-%02d", i)
			job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": scope})
			id := job["id"].(string)
			end := e.end(t, acct)
			body := `{"entities":[` + validEntity + `,{"_key":"ijson-sync-0001","_type":"ijson_thing","_class":"Thing",` + tc.member + `}]}`
			r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/entities", body)
			wantError(t, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", `entities[1] (_key "ijson-sync-0001"): `+tc.field+": ", tc.reason)

			r = e.sync(t, key, acct, "GET", jobsPath+"/"+id, nil)
			wantStatus(t, r, http.StatusOK)
			wantCounts(t, jobOf(t, r), "status", "AWAITING_UPLOADS", "numEntitiesUploaded", 0)
			j := e.finalize(t, key, acct, id, nil)
			wantCounts(t, j, "status", "FINISHED", "numEntitiesCreated", 0)
			e.untouched(t, acct, end)
			e.wantAbsent(t, acct, scope, "valid-entity-0001")
			e.wantAbsent(t, acct, scope, "ijson-sync-0001")
		})
	}
	t.Run("relationship on the upload route", func(t *testing.T) {
		job := e.createJob(t, key, acct, map[string]any{"source": "api", "scope": "ijson-rel"})
		id := job["id"].(string)
		end := e.end(t, acct)
		body := `{"entities":[` + validEntity + `],"relationships":[{"_key":"ijson-rel-0001","_type":"ijson_has","_class":"HAS","_fromEntityKey":"valid-entity-0001","_toEntityKey":"valid-entity-0001","note":"\ude00"}]}`
		r := e.sync(t, key, acct, "POST", jobsPath+"/"+id+"/upload", body)
		wantError(t, r, http.StatusBadRequest, "INVALID_GRAPH_OBJECT", `relationships[0] (_key "ijson-rel-0001"): "note": holds \ude00`)
		j := e.finalize(t, key, acct, id, nil)
		wantCounts(t, j, "status", "FINISHED", "numEntitiesCreated", 0, "numRelationshipsCreated", 0)
		e.untouched(t, acct, end)
		e.wantAbsent(t, acct, "ijson-rel", "valid-entity-0001")
	})
}
