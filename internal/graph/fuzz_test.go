package graph_test

// ParseObject reads every graph object a writer sends. For any bytes it
// must not panic, and an object it accepts must survive AppendCanonical:
// the canonical bytes parse back to an equal Input and are a fixed point,
// are valid JSON, and hold only valid UTF-8; and every value it accepts is
// read by encoding/json (numbers within a float64, no lone surrogates). Run with go test -fuzz
// FuzzParseObject; go test runs the seeds.

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/j1ds/j1ds/internal/graph"
)

func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","name":"a","n":1.5e3,"ok":true,"none":null,"tags":["a",1,false,null]}`,
		`{"_key":"fuzz-rel-000001","_type":"fuzz_has","_class":"HAS","_fromEntityKey":"fuzz-entity-0001","_toEntityKey":"fuzz-entity-0002"}`,
		`{"_key":"fuzz-rel-000002","_type":"fuzz_has","_class":["HAS"],"_fromEntityId":"3e6fa6e5-158d-5f03-8839-a964652b57dc","_toEntityId":"3e6fa6e5-158d-5f03-8839-a964652b57dd"}`,
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":["A","B"],"esc":"\u00e9\n\"\\","b":"b","b":"c","_rawData":{"x":[[{}]]}}`,
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","p":[[1]]}`,
		`{"_key":"fuzz-entity-\u0000","_type":"fuzz_thing","_class":"Thing"}`,
		"{\"_key\":\"fuzz-entity-\xff\",\"_type\":\"fuzz_thing\",\"_class\":\"Thing\"}",
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","n":-0.0e-0,"s":"\ud800"}`,
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","z":1,"a":2,"m":3,"a":4,"z":"last","_key":"fuzz-entity-0002"}`,
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","n":1e400,"m":[1,-1e309],"p":1.7976931348623157e308,"u":1e-400}`,
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","a":"\udc00","b":["\ud83d\ude00","\ud83d\u0041"],"\ud800":1,"c":"\\ud800"}`,
		`{"_key":"fuzz-entity-0001","_type":"fuzz_thing","_class":"Thing","n":` + strings.Repeat("7", graph.MaxNumberLen+1) + `}`,
		`{"_mapping":{}}`, `[`, `{`, `{"a":`, ``, `null`,
	} {
		f.Add(byte('e'), []byte(s))
		f.Add(byte('r'), []byte(s))
	}
	f.Fuzz(func(t *testing.T, k byte, raw []byte) {
		kind := graph.KindEntity
		if k&1 == 1 {
			kind = graph.KindRelationship
		}
		in, err := graph.ParseObject(kind, raw)
		if err != nil {
			var ie *graph.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("ParseObject(%q) failed with %T %v, want an *InputError", raw, err, err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error message is not UTF-8: %q", err.Error())
			}
			return
		}
		canon := in.AppendCanonical(nil)
		if !json.Valid(canon) || !utf8.Valid(canon) {
			t.Fatalf("ParseObject(%q): canonical form %q is not valid JSON/UTF-8", raw, canon)
		}
		back, err := graph.ParseObject(kind, canon)
		if err != nil {
			t.Fatalf("ParseObject(%q) accepted, but its canonical form %q is refused: %v", raw, canon, err)
		}
		if !reflect.DeepEqual(normal(in), normal(back)) {
			t.Fatalf("round trip of %q:\n got %+v\nwant %+v", raw, back, in)
		}
		if again := back.AppendCanonical(nil); !bytes.Equal(again, canon) {
			t.Fatalf("canonical form is not a fixed point:\n%s\n%s", canon, again)
		}
		// Every property value is canonical JSON itself, and the properties
		// are what encoding/json reads (of a repeated name the last one),
		// less the store's names and the dropped ones.
		var oracle map[string]any
		if err := json.Unmarshal(raw, &oracle); err != nil {
			t.Fatalf("ParseObject accepted %q, encoding/json refuses it: %v", raw, err)
		}
		for _, name := range []string{"_rawData", "_id", "_version", "_createdOn", "_beginOn", "_endOn", "_deleted",
			"_accountId", "_scope", "_source", "_key", "_type", "_class", "_fromEntityId", "_toEntityId",
			"_fromEntityKey", "_toEntityKey", "_fromEntityScope", "_toEntityScope"} {
			delete(oracle, name)
		}
		if len(in.Props) != len(oracle) {
			t.Fatalf("ParseObject(%q) kept %d properties, encoding/json reads %d", raw, len(in.Props), len(oracle))
		}
		for _, p := range in.Props {
			var v any
			if err := json.Unmarshal(p.Value, &v); err != nil {
				t.Fatalf("property %q value %q is not JSON", p.Name, p.Value)
			}
			if want, ok := oracle[p.Name]; !ok || !reflect.DeepEqual(v, want) {
				t.Fatalf("ParseObject(%q): property %q = %s, encoding/json reads %v", raw, p.Name, p.Value, want)
			}
		}
	})
}

// normal makes nil and empty property lists compare equal.
func normal(in graph.Input) graph.Input {
	if len(in.Props) == 0 {
		in.Props = nil
	}
	return in
}
