// Package changelog declares the transaction log as its readers see it:
// per account, an ordered sequence of entries, each one committed graph
// transaction with its change records, readable from any retained position
// and announced to subscribers as it becomes durable.
//
// The package holds the types that cross the seam between a storage
// backend and its readers (Entry, Change, CommitEvent, TruncatedError) and
// the Source interface the exporter reads through. It imports no storage
// engine; backends (internal/pebblestore) implement Source, and
// changelogtest checks that they keep its contract.
//
// # Positions and order
//
// Every entry has an LSN; LSNs increase strictly across a backend, so an
// account's entries are in LSN order, which is commit order. Commit times
// (microseconds) increase strictly per account, so a commit time
// identifies one transaction of an account. A reader positioned at LSN N
// never later sees an entry at or below N appear.
//
// # Records
//
// An entry keeps its records together as newline-ended lines (Entry.Lines),
// exactly as an export object holds them, so readers hand a transaction's
// lines on without decoding it. Each record is the product's change record:
//
//	{"operation":"u","eventType":"entity","properties":{...after state...},"labels":["Entity","User","slack_user"]}
//
// # Retention
//
// Retention removes the oldest entries by age and bytes, as a Retention
// sets. A reader whose position falls before a removed entry of its
// account gets a *TruncatedError (ErrLogTruncated) naming the lost LSN
// range.
package changelog
