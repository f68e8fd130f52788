// Package settings applies the rules of each account's Data Streaming
// settings (enabled, bucket, bucket owner's AWS account id, region
// confirmation): a save that enables or retargets the stream needs a
// recent passing connection test of exactly those values; enabling starts
// at the log's end (no backfill) and a new generation of the stream state;
// disabling closes the enabled period and starts a new generation, so the
// exporter still working for the old one can never move the cursor.
//
// # The entitlement
//
// With RequireEntitlement, streaming needs the account's data-streaming
// entitlement: an enable reads it in the same update as the save
// (ErrNotEntitled without it), StopUnentitled stops, as a disable does,
// the stream of an account that lost it (the period's EndReason and the
// status's last error say why), and Gate wraps the exporter's checkpoint
// so that an account streaming without it is stopped instead of exported,
// whatever the exporter does next: start, load, or upload a new batch.
// The operator API calls StopUnentitled after it removes the entitlement;
// the gate covers a process that died in between and a node that never
// heard of the stop.
//
// A Store keeps the records; a backend keeps each account's stream state
// (package stream) apart from its settings, so the exporter's checkpoint
// writes stay small. settingstest checks that a backend keeps the
// contract.
package settings
