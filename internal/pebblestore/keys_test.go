package pebblestore

import (
	"testing"

	"github.com/j1ds/j1ds/internal/graph"
)

// TestKeyLayout: the key builders write the documented layout (keys.go),
// which stored data depends on.
func TestKeyLayout(t *testing.T) {
	for _, c := range []struct{ got, want []byte }{
		{objectKey("acct", "id1"), keyOf(famObject, "acct", "id1")},
		{typeKey("acct", graph.KindEntity, "aws_iam_user", "id1"), keyOf(famType, "acct", "eaws_iam_user", "id1")},
		{scopeKey("acct", "scope-a", graph.KindRelationship, "id1"), keyOf(famScope, "acct", "scope-a", "rid1")},
		{adjacentKey("acct", "e1", "r1"), keyOf(famAdjacent, "acct", "e1", "r1")},
		{appendTypeKey([]byte("junk"), "acct", graph.KindEntity, "t", "id")[4:], []byte("tacct\x00et\x00id")},
	} {
		if string(c.got) != string(c.want) {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
}
