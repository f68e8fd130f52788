package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExportedValuesParse: what the exporter writes of the values at the
// edges of I-JSON that j1ds accepts is read by Go's encoding/json into any,
// each value as sent; the values beyond them (a number no float64 holds, a
// lone surrogate) are refused at the API with 400 naming the field, and
// never reach the bucket.
func TestExportedValuesParse(t *testing.T) {
	t.Parallel()
	e := startS3(t, "")
	j := startServe(t, streamConfig(t, e))
	const account = "ijson"
	key := j.account(t, account, true)
	j.enable(t, key, account, streamBucket, s3Owner)

	longest := "0." + strings.Repeat("3", 998) // 1,000 characters, the limit
	edges := map[string]string{
		"largest":    `1.7976931348623157e308`,
		"underflow":  `-1e-400`,
		"longest":    longest,
		"int":        `12345678901234567890123`,
		"pair":       `"\ud83d\ude00"`,
		"escaped":    `"\\ud800 is text"`,
		"separators": `"\u2028\u2029"`,
		"items":      `["\uD834\uDD1E",5e-324,-0]`,
	}
	var body strings.Builder
	body.WriteString(`{"_key":"ijson-host-0001","_type":"test_host","_class":"Host"`)
	for name, v := range edges {
		body.WriteString(`,"` + name + `":` + v)
	}
	body.WriteString("}")
	j.must(t, http.StatusCreated, "POST", "/api/v1/accounts/"+account+"/entities", key, json.RawMessage(body.String()))

	for _, bad := range []struct{ member, mention string }{
		{`"size":1e400`, `"size": is the number 1e400`},
		{`"name":"x\udfff"`, `"name": holds \udfff`},
	} {
		code, b := j.call(t, "POST", "/api/v1/accounts/"+account+"/entities", key,
			json.RawMessage(`{"_key":"ijson-refused-0001","_type":"test_host","_class":"Host",`+bad.member+`}`))
		var eb struct{ Error problem }
		_ = json.Unmarshal(b, &eb)
		if code != http.StatusBadRequest || eb.Error.Code != "INVALID_GRAPH_OBJECT" || !strings.Contains(eb.Error.Message, bad.mention) {
			t.Errorf("%s: %d %s, want 400 INVALID_GRAPH_OBJECT naming %s", bad.member, code, b, bad.mention)
		}
	}

	waitFor(t, 60*time.Second, "the export", func() bool { return j.state(t, key, account).Status.EventsExported >= 1 })
	objs := e.objects(t, streamBucket, account)
	all := lines(objs)
	for _, l := range all {
		var rec any
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Errorf("Go's encoding/json refuses an exported record: %v\n%s", err, l)
		}
	}
	if len(all) != 1 {
		t.Fatalf("%d records exported, want the one accepted create", len(all))
	}
	var rec any
	if err := json.Unmarshal(all[0], &rec); err != nil {
		t.Fatal(err)
	}
	props, _ := rec.(map[string]any)["properties"].(map[string]any)
	for name, v := range edges {
		var want any
		if err := json.Unmarshal([]byte(v), &want); err != nil {
			t.Fatal(err)
		}
		if got, ok := props[name]; !ok || mustJSON(got) != mustJSON(want) {
			t.Errorf("exported %s = %v, want %v", name, got, want)
		}
	}
}
