// Package pgstore is j1ds's PostgreSQL backend: every persistent concern
// of the service in one database, so that nothing is kept on the local
// disk of a j1ds node. It is chosen with j1ds serve --store postgres://...;
// the embedded Pebble store (package pebblestore) stays the default.
//
// One Store implements the same interfaces as pebblestore.Store and passes
// the same conformance suites (graphtest, changelogtest, accountstest,
// syncjobstest, settingstest): graph.Graph, changelog.Reader, and through
// Accounts, Jobs and Settings the stores of accounts, sync jobs, settings
// and stream state.
//
// # Schema
//
// The schema is the numbered SQL files in schema/, applied in order at
// Open under an advisory lock (migrate.go): of several processes starting
// at once one migrates and the others wait, and a database whose version
// is newer than the binary's is refused (*NewerSchemaError). Every primary
// key and index of account data starts with the account id, and every
// statement on it names one account, so the tables can be distributed by
// account (docs/postgres.md says which statements that would take). The
// exceptions are metadata (j1ds_schema, log_partitions, operator_key), the
// lookup of an API key by its hash, and the passes over all accounts:
// retention, listing accounts, the jobs left finalizing (read at the start
// of a process alone on the database, looked among by every node of a
// cluster for those no live node runs) and the streams enabled.
//
// # Sync jobs across nodes
//
// sync_jobs.runner names the node that runs a job's finalization
// (schema/005_job_runners.sql). A claim is one UPDATE conditional on the
// runner being the claiming node or a node that is not live, as the
// cluster's leases say (cluster_nodes); every write of a finalization, a
// chunk's transaction included, updates the job's row on the condition
// that its node is still the runner, and rolls back otherwise
// (syncjobs.ErrNotRunner). Every write of a job's record, by any node, is
// also conditional on sync_jobs.revision (schema/006_job_revisions.sql)
// being the one its request read, checked by the statement that writes the
// row (syncjobs.ErrJobChanged otherwise): of an upload, an abort and a
// finalize of one job racing on several nodes, one writes first and the
// others decide again on what it wrote.
//
// # Transactions and the log
//
// A graph transaction is one PostgreSQL transaction. It first locks its
// account's log_heads row, held to the commit: an account's transactions
// run one at a time on every connection and node, and its LSNs and commit
// times, taken under the lock, increase strictly in commit order. A
// reader at position N therefore never later sees a committed entry at or
// before N appear: the entry after N cannot take its LSN before the one
// at N has committed. The objects a transaction wrote are kept in memory
// and written in one statement at the end, with the log entry (the same
// record lines the embedded store writes, byte for byte) and the head, in
// the same transaction. LSNs come from one sequence, so they are unique
// across accounts, increasing, not dense.
//
// The log is partitioned by LSN range (retention.go). A partition takes
// commits for PartitionPeriod (an hour by default); then the next is
// created and the sequence jumps into its range. Retention by age drops a
// partition whole once all of it is past the limit and deletes entries
// one by one only in the partition straddling the limit; retention by
// bytes drops the oldest partitions whole and deletes the oldest entries
// of the next. Dropping detaches the partition concurrently, so writers,
// which only insert into the newest partition, are not blocked. Each
// account's head keeps the highest LSN removed, from which a reader
// positioned before it gets a *changelog.TruncatedError, and the size of
// its retained entries (LogBytes).
//
// Subscribers hear the commits of this process. Wait also looks at the
// database at least every second, so it wakes for commits of other
// processes too. A commit whose answer was lost (the connection failed
// while committing) is in doubt: once the database answers again, an entry
// it did write is reported to subscribers like any other.
package pgstore
