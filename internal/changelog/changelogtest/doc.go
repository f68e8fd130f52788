// Package changelogtest is the conformance suite of changelog.Reader, and
// so of changelog.Source. A backend runs it from its own tests:
//
//	func TestChangelog(t *testing.T) {
//		changelogtest.Run(t, open) // open: a graphtest.Opener
//	}
//
// Log entries are made by graph transactions, so the suite opens backends
// with graphtest's Opener and writes through their graph.Graph; one opener
// serves both suites.
//
// The suite pins: LSNs increase strictly across accounts and commit times
// per account, whatever the clock does; End, ReadLog (with its limits),
// ScanLog and NextCommit read from any position; Wait wakes on a commit of
// its account and ends with its context; every subscriber hears of every
// commit until it cancels, and one that subscribes before reading End
// misses nothing after it; concurrent writers keep each account's order,
// and a reader following the log never sees an entry appear behind its
// position; retention by age and by bytes removes the oldest entries and
// tells a reader the exact LSN range it lost; a reopened backend keeps its
// entries, its truncation marks and its counters, and never reuses an LSN.
//
// Sizes are the entries' sizes as CommitEvent.Bytes reports them; ReadLog's
// byte limit, LogBytes and retention by bytes count the same sizes.
package changelogtest
