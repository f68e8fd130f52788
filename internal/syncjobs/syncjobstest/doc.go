// Package syncjobstest is the conformance suite of syncjobs.Store. Each
// backend runs it from its own tests with an Opener over a fresh instance;
// the suite pins the Store's contracts (staging and duplicate detection,
// staged order, the atomic finalize chunk, unfinished jobs across a
// restart) and the Service's behaviour over the backend (a finalization
// interrupted by a crash resumes after a restart and ends as an
// uninterrupted one; a DIFF job's deletions and their cascade are
// counted).
//
// A crash is simulated by a wrapper that fails every write after a chosen
// finalize chunk, as a process killed there would stop writing, followed by
// closing and reopening the backend.
package syncjobstest
