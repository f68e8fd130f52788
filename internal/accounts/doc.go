// Package accounts holds tenant accounts, their entitlements and their API
// keys: the types, the validation of account ids, entitlements and roles,
// the errors callers branch on, the API key secret format, and [Store], the
// contract a storage backend keeps. Package pebblestore implements Store;
// package accountstest checks any implementation against the contract.
//
// # Secrets
//
// An API key secret is "j1ds_" followed by 43 base64url characters encoding
// 32 random bytes ([NewSecret]). A Store returns it once, from
// [Store.CreateKey], and keeps only its SHA-256 ([HashSecret]), so
// [Store.Authenticate] is a single lookup by hash. The key's ID (12 hex
// characters, [NewKeyID]) is a public handle for listing and revoking keys.
//
// # Contract
//
// Every write of a Store is durable when the call returns, and a key's
// record and its place in the account's list appear and disappear
// together. Check-then-write operations are atomic: of concurrent
// [Store.CreateAccount] calls with one id exactly one succeeds. Account ids
// never contain '/' or other separators ([ValidateID]), so a backend may
// build keys and paths from them.
package accounts
