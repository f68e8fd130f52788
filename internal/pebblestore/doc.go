// Package pebblestore is j1ds's embedded backend: every persistent concern
// of the service in one Pebble database in the data directory. It is the
// only package of the product that imports Pebble.
//
// One Store implements:
//   - graph.Graph: objects of every account and their transactions;
//   - changelog.Reader (and so changelog.Source): the transaction log;
//   - accounts.Store (Store.Accounts): accounts and hashed API keys;
//   - syncjobs.Store (Store.Jobs): sync jobs, their staging and progress;
//   - settings.Store and stream.Checkpoint (Store.Settings): Data
//     Streaming settings and, under a key of its own, each account's
//     stream state.
//
// Each passes the conformance suite of its interface (graphtest,
// changelogtest, accountstest, syncjobstest, settingstest). The key
// families and their layout are declared in keys.go.
//
// # Transactions and the log
//
// The batch that changes the graph also appends the transaction's log
// entry, so graph and log never disagree. An entry keeps its records
// together as newline-ended lines, exactly as an export object holds them;
// the encoding is in log.go. LSNs increase strictly across the store; a
// transaction that would reuse the last commit time of its account is
// given the next microsecond.
//
// Transactions of one account are serialised by a per-account lock held
// while the batch is built and applied, not while it is synced: the fsync
// is awaited after the lock is released, so concurrent transactions, of
// one account or of many, share fsyncs (group commit), and no account waits
// on another's lock. Readers see an entry only once it is durable, and
// subscribers (Subscribe) are called after it is.
//
// Retention (age and bytes) removes the oldest entries; a reader positioned
// before a removed entry of its account gets a *changelog.TruncatedError.
// Writes are refused with a *graph.DiskFullError while the data directory's
// free space is below its reserve (Options.MinFreeBytes).
package pebblestore
