// Package cluster divides the export work of j1ds between the nodes that
// share one database (j1ds serve --store postgres://...).
//
// Accounts are hashed into Groups groups; a node owns whole groups, never
// single accounts, so keeping leases costs the same for ten accounts and
// for a hundred thousand. Each node holds a lease on its own row in the
// database and renews it every quarter of LeaseTTL; a group belongs to a
// node while that node's lease lasts, and each claim of a group takes a
// new fencing token. Every checkpoint write of the exporter (cursor move,
// saved attempt, gap, error) carries the token of its group and is refused
// once the group has been claimed again (stream.ErrFenced): a node that
// lost its lease while paused or cut off can finish an upload, which lands
// on the same key with the same bytes, but never move a cursor.
//
// The live nodes share the groups evenly: with n live nodes each targets
// Groups/n of them (the first Groups%n by node id take one more). A node
// with fewer claims free groups and those of nodes whose lease ended; a
// node with more releases its excess, which a joining node then claims.
// A node that stops (SIGTERM) flushes, then leaves: it releases every group
// at once and the others are told (Store.Leave), so a handover takes no
// lease time.
//
// The package imports no storage engine: Store is implemented by
// pgstore (cluster.go there), Exporter by the exporter.
package cluster
