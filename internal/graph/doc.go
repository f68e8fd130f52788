// Package graph is j1ds's embedded graph store and its transaction log.
//
// The store holds the entities and relationships of many accounts in
// JupiterOne's data model, in one Pebble database. It owns the metadata of
// every object: _id (UUIDv5 of account, scope and key), _version (+1 for each
// real change), _createdOn, _beginOn, _endOn, _deleted, _accountId, _scope
// and _source. Writes happen in transactions (Store.Update) on one account:
// an upload that matches what is stored changes nothing and logs nothing;
// deletion is soft; deleting an entity deletes its relationships in the same
// transaction.
//
// # The transaction log
//
// The batch that changes the graph also appends the transaction's log entry,
// so graph and log never disagree. An entry is {LSN, commit time, changes};
// each change holds its operation (c, u, d), event type, object id and the
// complete change record in the format of the product documentation:
//
//	{"operation":"u","eventType":"entity","properties":{...after state...},"labels":["Entity","User","slack_user"]}
//
// so the exporter writes records out without encoding them again. Labels
// are "Entity" or "Relationship", then each class, then the type. An entry
// keeps its records together as newline-ended lines, exactly as an object
// holds them (Entry.Lines), so the exporter hands a transaction's lines to
// the compressor in one piece; the encoding is in log.go.
//
// LSNs increase strictly across the store. Commit times (microseconds)
// increase strictly per account: a transaction that would reuse the last
// commit time of its account is given the next microsecond, so a commit time
// identifies a transaction of an account.
//
// Transactions of one account are serialised by a per-account lock held
// while the batch is built and applied, not while it is synced: the fsync is
// awaited after the lock is released, so concurrent transactions, of one
// account or of many, share fsyncs (group commit), and no account waits on
// another's lock. Readers (ReadLog, Wait) see an entry only once it is
// durable.
//
// Retention (age and bytes) removes the oldest entries. A reader whose
// position falls before a removed entry of its account gets a
// *TruncatedError (ErrLogTruncated) naming the lost LSN range.
//
// The key layout is in keys.go.
package graph
