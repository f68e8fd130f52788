// Package settings applies the rules of each account's Data Streaming
// settings (enabled, bucket, bucket owner's AWS account id, region
// confirmation): a save that enables or retargets the stream needs a
// recent passing connection test of exactly those values; enabling starts
// at the log's end (no backfill) and a new generation of the stream state;
// disabling closes the enabled period and starts a new generation, so the
// exporter still working for the old one can never move the cursor.
//
// A Store keeps the records; a backend keeps each account's stream state
// (package stream) apart from its settings, so the exporter's checkpoint
// writes stay small. settingstest checks that a backend keeps the
// contract.
package settings
