package graph

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestContentHashStable: the content hash is stored with every object and
// compared on each upload, so it must never change between versions (a
// change would turn every next upload of an unchanged object into an
// update). The reference is the streaming form the first version used.
func TestContentHashStable(t *testing.T) {
	reference := func(o *Object) [16]byte {
		h := sha256.New()
		var n [binary.MaxVarintLen64]byte
		w := func(s string) {
			h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
			h.Write([]byte(s))
		}
		for _, s := range []string{string(o.Kind), o.Type, o.Source, o.FromID, o.ToID, o.FromKey, o.ToKey} {
			w(s)
		}
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(o.Class)))])
		for _, c := range o.Class {
			w(c)
		}
		for _, p := range o.Props {
			w(p.Name)
			w(string(p.Value))
		}
		return [16]byte(h.Sum(nil))
	}
	for _, o := range []Object{
		{Kind: KindEntity, Type: "aws_iam_user", Source: "api", Class: []string{"User"}},
		{Kind: KindEntity, Type: "github_repo", Source: "integration-managed", Class: []string{"CodeRepo", "Resource"},
			Props: []Prop{{Name: "name", Value: []byte(`"j1ds"`)}, {Name: "private", Value: []byte(`true`)}, {Name: "stars", Value: []byte(`1200`)}}},
		{Kind: KindRelationship, Type: "user_has_repo", Source: "api", Class: []string{"HAS"}, FromID: "a", ToID: "b", FromKey: "k1", ToKey: "k2",
			Props: []Prop{{Name: "tags", Value: []byte(`["x","y"]`)}}},
	} {
		got, _ := ContentHash(nil, &o)
		if want := reference(&o); got != want {
			t.Errorf("ContentHash(%s %s) = %x, want %x as stored by earlier versions", o.Kind, o.Type, got, want)
		}
	}
}

// TestObjectIDStable: ids are UUIDv5 of account, scope and key in a fixed
// namespace, as uuid.NewSHA1 computes them; stored ids depend on it.
func TestObjectIDStable(t *testing.T) {
	for _, c := range [][3]string{
		{"j1dev", "scope-a", "slack-user:team_T1:user_U1"},
		{"a", "", ""},
		{"acct-0001", "integration-instance-7f0d", strings.Repeat("k", 500)},
	} {
		want := uuid.NewSHA1(idNamespace, []byte(c[0]+"\x00"+c[1]+"\x00"+c[2])).String()
		if got := ObjectID(c[0], c[1], c[2]); got != want {
			t.Errorf("ObjectID(%q, %q, %.20q) = %s, want %s", c[0], c[1], c[2], got, want)
		}
	}
}
