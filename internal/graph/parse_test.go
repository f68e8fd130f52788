package graph_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
)

// TestParseObjectErrors: ParseObject refuses a malformed upload with an
// *InputError naming the offending field.
func TestParseObjectErrors(t *testing.T) {
	tests := []struct{ name, kind, js, field string }{
		{"not an object", "e", `[1]`, ""},
		{"missing key", "e", `{"_type":"slack_user","_class":"User"}`, "_key"},
		{"short key", "e", `{"_key":"short","_type":"slack_user","_class":"User"}`, "_key"},
		{"key not string", "e", `{"_key":12345678901,"_type":"slack_user","_class":"User"}`, "_key"},
		{"short type", "e", `{"_key":"long-enough-key","_type":"usr","_class":"User"}`, "_type"},
		{"missing class", "e", `{"_key":"long-enough-key","_type":"slack_user"}`, "_class"},
		{"class object", "e", `{"_key":"long-enough-key","_type":"slack_user","_class":{"a":1}}`, "_class"},
		{"nested", "e", `{"_key":"long-enough-key","_type":"slack_user","_class":"User","tags":{"a":1}}`, `"tags"`},
		{"array of arrays", "e", `{"_key":"long-enough-key","_type":"slack_user","_class":"User","x":[[1]]}`, `"x"`},
		{"control char key", "e", "{\"_key\":\"long-enough\\u0000key\",\"_type\":\"slack_user\",\"_class\":\"User\"}", "_key"},
		{"rel two classes", "r", `{"_key":"long-enough-key","_type":"a_has_b","_class":["HAS","USES"],"_fromEntityKey":"k","_toEntityKey":"l"}`, "_class"},
		{"rel no from", "r", `{"_key":"long-enough-key","_type":"a_has_b","_class":"HAS","_toEntityKey":"l"}`, "_fromEntityId"},
		{"rel bad id", "r", `{"_key":"long-enough-key","_type":"a_has_b","_class":"HAS","_fromEntityId":"../etc","_toEntityKey":"l"}`, "_fromEntityId"},
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
			if ie.Field != tt.field {
				t.Fatalf("field %q, want %q (%v)", ie.Field, tt.field, err)
			}
		})
	}
}

// TestParseDropsRawDataAndStoreOwnedMetadata: _rawData and the metadata the
// store owns are not properties of the parsed object.
func TestParseDropsRawDataAndStoreOwnedMetadata(t *testing.T) {
	in, err := graph.ParseObject(graph.KindEntity, []byte(`{"_key":"long-enough-key","_type":"slack_user","_class":"User","_rawData":[{"name":"default","rawData":{"a":1}}],"_version":99,"_id":"x","name":"n","email":"a@b.c"}`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range in.Props {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[email name]" {
		t.Fatalf("props %v", names)
	}
}

// TestCanonicalFormIgnoresOrderAndFormatting: two uploads of one object
// that differ only in member order and formatting have one canonical form,
// which parses back to itself.
func TestCanonicalFormIgnoresOrderAndFormatting(t *testing.T) {
	a := `{"_key":"long-enough-key","_type":"slack_user","_class":["User","Person"],"b":[1, "x\u0041"],"a":"é","c":null}`
	b := "{ \"c\" : null, \"a\":\"\\u00e9\", \"_class\":[\"User\",\"Person\"], \"b\":[1,\"xA\"], \"_type\":\"slack_user\", \"_key\":\"long-enough-key\" }"
	var enc [][]byte
	for _, js := range []string{a, b} {
		in, err := graph.ParseObject(graph.KindEntity, []byte(js))
		if err != nil {
			t.Fatal(err)
		}
		c := in.AppendCanonical(nil)
		back, err := graph.ParseObject(graph.KindEntity, c)
		if err != nil {
			t.Fatalf("canonical form %s does not parse: %v", c, err)
		}
		if c2 := back.AppendCanonical(nil); string(c2) != string(c) {
			t.Fatalf("round trip changed the form:\n%s\n%s", c, c2)
		}
		enc = append(enc, c)
	}
	if string(enc[0]) != string(enc[1]) {
		t.Fatalf("equal objects encode differently:\n%s\n%s", enc[0], enc[1])
	}
	rel, err := graph.ParseObject(graph.KindRelationship, []byte(`{"_key":"team_T1|has|user_U1","_type":"slack_team_has_user","_class":"HAS","_fromEntityKey":"slack-team:team_T1","_toEntityKey":"slack-user:team_T1:user_U1"}`))
	if err != nil {
		t.Fatal(err)
	}
	back, err := graph.ParseObject(graph.KindRelationship, rel.AppendCanonical(nil))
	if err != nil || back.FromKey != rel.FromKey || back.ToKey != rel.ToKey || back.Class[0] != "HAS" {
		t.Fatalf("relationship round trip: %+v %v", back, err)
	}
}
