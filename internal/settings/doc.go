// Package settings keeps each account's Data Streaming settings (enabled,
// bucket, bucket owner's AWS account id, region confirmation), the last
// connection test, and the exporter's stream state (generation, cursor,
// counters, last error, gaps), one JSON record per account under key
// 'D' + account id in the shared Pebble database.
//
// The record is also the checkpoint store of the exporter: the cursor moves
// only through Advance and SkipGap, which compare the generation the
// exporter read with the current one. Enabling, disabling and retargeting
// start a new generation, so an exporter that still works for an old one
// can never move the cursor: that is the ownership check a multi-node
// deployment will do with leases.
package settings
