// Package accounts stores tenant accounts, their entitlements and their API
// keys in a Pebble database shared with other packages.
//
// # Key layout
//
// The package owns exactly the Pebble keys whose first byte is 'A' or 'K' and
// never reads or writes any other key:
//
//	'A' + accountID                    -> JSON Account {id, entitlements, createdAt}
//	'K' 'h' + sha256(secret)           -> JSON Key {id, accountId, role, createdAt}
//	'K' 'i' + accountID + '/' + keyID  -> sha256(secret) (32 raw bytes)
//
// Account ids never contain '/' (see [ValidateID]), so an account's index
// entries are exactly the keys under 'K' 'i' + accountID + '/'. The hash
// records ('h') and the index ('i') use distinct sub-prefixes and cannot
// collide; a hash record key is always 34 bytes long.
//
// # Secrets
//
// An API key secret is "j1ds_" followed by 43 base64url characters encoding
// 32 random bytes. The secret is returned once by [Store.CreateKey] and is
// never stored: only its SHA-256 is, so [Store.Authenticate] is a single
// point lookup by hash. The key's ID (12 hex characters) is a public handle
// for listing and revoking keys.
//
// # Durability and concurrency
//
// Every write is a single Pebble batch committed with pebble.Sync, so a
// record and its index entry appear and disappear together. Writes are
// serialized by a mutex inside [Store], which makes check-then-create
// operations such as [Store.CreateAccount] race-free within one process.
// Reads take no lock.
package accounts
