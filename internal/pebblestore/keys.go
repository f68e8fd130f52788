package pebblestore

import (
	"encoding/binary"

	"github.com/j1ds/j1ds/internal/graph"
)

// Key layout. The first byte of a key is its family; every key of the
// store's database belongs to exactly one family below, and each family is
// read and written only by the file named beside it. Account ids, scopes,
// types, object ids and job ids never contain a NUL byte (validated), and
// account ids never contain '/', so the separators are unambiguous.
//
// The graph and its log (store.go, log.go, retention.go):
//
//	o <account> 0 <id>                       object: 16-byte content hash + JSON state
//	t <account> 0 <kind> <type> 0 <id>       live objects by kind and type
//	s <account> 0 <scope> 0 <kind> <id>      live objects by scope → type
//	a <account> 0 <entity id> 0 <rel id>     live relationships attached to an entity
//	L <account> 0 <lsn:8>                    log entry of one transaction (encoding in log.go)
//	G <lsn:8>                                global log index → commit time, size, account
//	T <account>                              last truncated LSN and its commit time
//	Mtrunc                                   highest truncated LSN of all accounts
//
// Accounts and API keys (accounts.go):
//
//	A <account>                              JSON account {id, entitlements, createdAt}
//	K h <sha256(secret):32>                  JSON key {id, accountId, role, createdAt}
//	K i <account> / <key id>                 sha256(secret), 32 raw bytes
//
// Sync jobs (jobs.go):
//
//	J <account> 0 <job id>                   JSON job record, with finalize progress
//	E <account> 0 <job id>                   number of events reported (uvarint)
//	S <job id> 0 <kind> <object id>          staged object, in canonical form
//
// Data Streaming (settings.go):
//
//	D <account>                              JSON settings, last connection test, enabled periods
//	C <account>                              JSON stream state: the exporter's checkpoint
//
// A graph transaction writes its objects, their index entries, its log
// entry and global index entry, and (for a sync job's finalize chunk) the
// job record in one synced batch. Every other write is one synced batch of
// its own family.
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

// Accounts and API keys.

const (
	famAccount = 'A'
	famKey     = 'K'

	subKeyHash  = 'h' // 'K' 'h' + sha256(secret) -> JSON key record
	subKeyIndex = 'i' // 'K' 'i' + account + '/' + keyID -> sha256(secret)
)

func accountKey(id string) []byte { return append([]byte{famAccount}, id...) }

func keyHashKey(sum []byte) []byte { return append([]byte{famKey, subKeyHash}, sum...) }

// keyIndexPrefix is the start of account's index entries; account ids
// never contain '/', so it matches no other account's entries.
func keyIndexPrefix(account string) []byte {
	return append([]byte{famKey, subKeyIndex}, account+"/"...)
}

func keyIndexKey(account, keyID string) []byte { return append(keyIndexPrefix(account), keyID...) }

// Sync jobs.

const (
	famJob    = 'J'
	famEvents = 'E'
	famStage  = 'S'
)

func jobKey(account, id string) []byte {
	return append(append(append([]byte{famJob}, account...), 0), id...)
}

func eventsKey(account, id string) []byte {
	return append(append(append([]byte{famEvents}, account...), 0), id...)
}

func stagePrefix(id string) []byte {
	return append(append([]byte{famStage}, id...), 0)
}

func stageKindPrefix(id string, kind graph.Kind) []byte {
	return append(stagePrefix(id), byte(kind))
}

func stageKey(id string, kind graph.Kind, oid string) []byte {
	return append(stageKindPrefix(id, kind), oid...)
}
