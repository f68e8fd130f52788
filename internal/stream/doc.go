// Package stream declares the exporter's checkpoint: per account, the
// state of its stream (generation, target, cursor, the batch of an upload
// in flight, counters, the last error, the gaps retention caused and the
// last 24 hours of exports in 15-minute buckets, history.go), and the rules
// every change of that state follows.
//
// The state is small and kept apart from the account's settings, so that
// moving a cursor writes only that account's stream state. A backend
// implements Checkpoint by reading the state, applying one of the rule
// methods of State (Advance, SaveAttempt, SkipGap, SetError) and writing
// it back atomically; streamtest checks that it keeps the contract.
//
// # Generations
//
// Enabling, disabling and retargeting an account's stream start a new
// generation. Every change the exporter makes names the generation it read
// and fails with ErrStale when that is no longer current, so an exporter
// that lost an account (it was disabled, re-enabled or retargeted) can
// never move its cursor.
package stream
