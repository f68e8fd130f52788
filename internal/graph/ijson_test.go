package graph_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
)

const ijsonHead = `{"_key":"long-enough-key","_type":"slack_user","_class":"User",`

// TestParseRefusesWhatReadersCannotParse: numbers a float64 cannot hold,
// numbers longer than graph.MaxNumberLen and strings with a lone UTF-16
// surrogate escape (not I-JSON, RFC 7493) are refused with an *InputError
// naming the member and saying why, wherever they are: a value, an array's
// item, a member name, the metadata.
func TestParseRefusesWhatReadersCannotParse(t *testing.T) {
	long := "0." + strings.Repeat("1", graph.MaxNumberLen-1) // MaxNumberLen+1 characters
	tests := []struct{ name, kind, js, field, reason string }{
		{"overflow", "e", ijsonHead + `"n":1e400}`, `"n"`, "1e400, beyond the range of a 64-bit float"},
		{"negative overflow", "e", ijsonHead + `"n":-1e309}`, `"n"`, "-1e309, beyond the range"},
		{"just above the largest float64", "e", ijsonHead + `"n":1.7976931348623159e308}`, `"n"`, "beyond the range"},
		{"integer of 309 digits", "e", ijsonHead + `"n":2` + strings.Repeat("0", 308) + `}`, `"n"`, "beyond the range"},
		{"integer of 5000 digits", "e", ijsonHead + `"n":` + strings.Repeat("9", 5000) + `}`, `"n"`, "5000 characters, more than the limit of 1000"},
		{"long fraction", "e", ijsonHead + `"n":` + long + `}`, `"n"`, "1001 characters"},
		{"overflow in an array", "e", ijsonHead + `"n":[1,2,1E+400]}`, `"n"`, "item 2 is the number 1E+400"},
		{"lone high surrogate", "e", ijsonHead + `"s":"\ud800"}`, `"s"`, `holds \ud800, half of a UTF-16 surrogate pair`},
		{"lone low surrogate", "e", ijsonHead + `"s":"ab\uDC00cd"}`, `"s"`, `holds \uDC00`},
		{"high then a letter", "e", ijsonHead + `"s":"\ud83d\u0041"}`, `"s"`, `holds \ud83d`},
		{"pair reversed", "e", ijsonHead + `"s":"\ude00\ud83d"}`, `"s"`, `holds \ude00`},
		{"high at the end", "e", ijsonHead + `"s":"x\uD83D"}`, `"s"`, `holds \uD83D`},
		{"in an array", "e", ijsonHead + `"s":["ok","\ud800"]}`, `"s"`, `item 1 holds \ud800`},
		{"in a member name", "e", ijsonHead + `"bad\udfffname":1}`, `"bad\udfffname"`, `member name holds \udfff`},
		{"in the key", "e", `{"_key":"long-enough-key\ud800","_type":"slack_user","_class":"User"}`, "_key", `holds \ud800`},
		{"in a class", "e", `{"_key":"long-enough-key","_type":"slack_user","_class":["User","\udc01"]}`, "_class", `item 1 holds \udc01`},
		{"in a relationship end", "r", `{"_key":"long-enough-key","_type":"a_has_b","_class":"HAS","_fromEntityKey":"k\ud800","_toEntityKey":"l"}`, "_fromEntityKey", `holds \ud800`},
		{"number as the key", "e", `{"_key":1e999,"_type":"slack_user","_class":"User"}`, "_key", "beyond the range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind := graph.KindEntity
			if tt.kind == "r" {
				kind = graph.KindRelationship
			}
			_, err := graph.ParseObject(kind, []byte(tt.js))
			var ie *graph.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want graph.InputError, got %v", err)
			}
			if ie.Field != tt.field || !strings.Contains(ie.Reason, tt.reason) {
				t.Fatalf("field %q reason %q, want field %q and a reason with %q", ie.Field, ie.Reason, tt.field, tt.reason)
			}
		})
	}
}

// TestParseAcceptsIJSONEdges: the values at the edges of I-JSON are
// accepted, and the record the exporter writes of such an object
// (graph.AppendRecord of its AppendJSON, as the stores write it) is read by
// Go's encoding/json into any without error, each value as uploaded.
func TestParseAcceptsIJSONEdges(t *testing.T) {
	longest := "0." + strings.Repeat("1", graph.MaxNumberLen-2) // MaxNumberLen characters
	props := map[string]string{
		"largest":              `1.7976931348623157e308`,
		"smallest":             `-1.7976931348623157E+308`,
		"underflow":            `1e-400`, // reads as 0 everywhere
		"denormal":             `5e-324`,
		"longest":              longest,
		"int308":               `9` + strings.Repeat("9", 307),
		"big":                  `123456789012345678901234567890`,
		"zero":                 `-0.0e-0`,
		"pair":                 `"\ud83d\ude00 \uD834\uDD1E"`,
		"escapes":              `"\\ud800 is text here, \" \/ \b\f\n\r\t"`,
		"separators":           `"\u2028\u2029\u0000"`,
		"nonchar":              `"\uffff\ufffe"`,
		"mixed":                `["\ud83d\ude00",1e308,-1e-999,true,null]`,
		`pair\ud83d\ude00name`: `1`,
	}
	var b strings.Builder
	b.WriteString(ijsonHead + `"_rawData":{"x":"\ud800","n":1e999}`) // dropped, never stored
	for name, v := range props {
		b.WriteString(`,"` + name + `":` + v)
	}
	b.WriteString("}")
	in, err := graph.ParseObject(graph.KindEntity, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	o := graph.Object{Kind: in.Kind, ID: graph.ObjectID("acme", "api", in.Key), Key: in.Key, Type: in.Type, Class: in.Class,
		Scope: "api", Source: "api", AccountID: "acme", Version: 1, Props: in.Props}
	line := graph.AppendRecord(nil, graph.OpCreate, &o, o.AppendJSON(nil))
	var rec struct {
		Properties map[string]any `json:"properties"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatalf("encoding/json refuses the record %s: %v", line, err)
	}
	var anyRec any
	if err := json.Unmarshal(line, &anyRec); err != nil {
		t.Fatalf("encoding/json refuses the record into any: %v", err)
	}
	if _, ok := rec.Properties["_rawData"]; ok {
		t.Error("_rawData was kept")
	}
	for name, v := range props {
		var want any
		if err := json.Unmarshal([]byte(`"`+name+`"`), &name); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(v), &want); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		got, ok := rec.Properties[name]
		if !ok {
			t.Errorf("property %q is missing from %s", name, line)
			continue
		}
		if gj, wj := mustMarshal(t, got), mustMarshal(t, want); gj != wj {
			t.Errorf("property %q reads %s, want %s", name, gj, wj)
		}
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDecodeObjectReadsStoredValues: a stored object is read as it was
// stored; the I-JSON checks are for uploads, so an object stored before
// them (a number beyond a float64) still reads.
func TestDecodeObjectReadsStoredValues(t *testing.T) {
	raw := `{"_scope":"api","_source":"api","_key":"long-enough-key","_accountId":"acme","_type":"slack_user","_class":["User"],"_id":"3e6fa6e5-158d-5f03-8839-a964652b57dc","_deleted":false,"_version":1,"_createdOn":1,"_beginOn":1,"n":1e400}`
	o, err := graph.DecodeObject([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := o.Prop("n"); !ok || string(v) != "1e400" {
		t.Fatalf("n = %s", v)
	}
}
