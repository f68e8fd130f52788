package pebblestore

import (
	"encoding/binary"

	"github.com/j1ds/j1ds/internal/graph"
)

// Key layout (the first byte is the family; other packages own other
// families of the same database: 'A' and 'K' accounts, 'J', 'E' and 'S' sync
// jobs):
//
//	o <account> 0 <id>                       object: 16-byte content hash + JSON state
//	t <account> 0 <kind> <type> 0 <id>       live objects by kind and type
//	s <account> 0 <scope> 0 <kind> <id>      live objects by scope → type
//	a <account> 0 <entity id> 0 <rel id>     live relationships attached to an entity
//	L <account> 0 <lsn:8>                    log entry of one transaction
//	G <lsn:8>                                global log index → commit time, size, account
//	T <account>                              last truncated LSN and its commit time
//	Mtrunc                                   highest truncated LSN of all accounts
//
// Account ids, scopes, types and ids never contain a NUL byte (validated),
// so the separators are unambiguous.
const (
	famObject   = 'o'
	famType     = 't'
	famScope    = 's'
	famAdjacent = 'a'
	famLog      = 'L'
	famGlobal   = 'G'
	famTrunc    = 'T'
	famMeta     = 'M'
	famSettings = 'D'
	famStream   = 'C'
)

// globalTruncKey holds the highest LSN ever truncated, so LSNs are never
// reused after the whole log has been truncated.
var globalTruncKey = []byte("Mtrunc")

func keyOf(fam byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n+8)
	k = append(k, fam)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func objectKey(account, id string) []byte { return appendObjectKey(nil, account, id) }

func typeKey(account string, kind graph.Kind, typ, id string) []byte {
	return appendTypeKey(nil, account, kind, typ, id)
}

func scopeKey(account, scope string, kind graph.Kind, id string) []byte {
	return appendScopeKey(nil, account, scope, kind, id)
}

func adjacentKey(account, entityID, relID string) []byte {
	return appendAdjacentKey(nil, account, entityID, relID)
}

// The append forms build a key into a caller's buffer: the write path
// makes several per object, and Pebble copies keys it is given.

func appendObjectKey(b []byte, account, id string) []byte {
	b = append(append(b, famObject), account...)
	return append(append(b, 0), id...)
}

func appendTypeKey(b []byte, account string, kind graph.Kind, typ, id string) []byte {
	b = append(append(b, famType), account...)
	b = append(append(append(b, 0), byte(kind)), typ...)
	return append(append(b, 0), id...)
}

func appendScopeKey(b []byte, account, scope string, kind graph.Kind, id string) []byte {
	b = append(append(b, famScope), account...)
	b = append(append(b, 0), scope...)
	return append(append(append(b, 0), byte(kind)), id...)
}

func appendAdjacentKey(b []byte, account, entityID, relID string) []byte {
	b = append(append(b, famAdjacent), account...)
	b = append(append(b, 0), entityID...)
	return append(append(b, 0), relID...)
}

func logKey(account string, lsn uint64) []byte {
	k := keyOf(famLog, account, "")
	return binary.BigEndian.AppendUint64(k, lsn)
}

func globalKey(lsn uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{famGlobal}, lsn)
}

func truncKey(account string) []byte { return keyOf(famTrunc, account) }

// PrefixEnd returns the smallest key greater than every key with prefix p:
// the upper bound of an iterator over the prefix.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

func settingsKey(account string) []byte { return append([]byte{famSettings}, account...) }

func streamKey(account string) []byte { return append([]byte{famStream}, account...) }
