// Package syncjobstest is the conformance suite of syncjobs.Store. Each
// backend runs it from its own tests with an Opener over a fresh instance;
// the suite pins the Store's contracts (staging and duplicate detection,
// staged order, the atomic finalize chunk, the conditional writes of a
// job's record and writers racing from one revision, unfinished jobs
// across a restart) and the Service's behaviour over the backend (a
// finalization interrupted by a crash resumes after a restart and ends as
// an uninterrupted one; a DIFF job's deletions and their cascade are
// counted; a request that another changed the job under, as from another
// node, answers as if it had come second; one account's backlog of
// finalizations delays another's small job by at most one chunk; the
// quotas of open jobs and staged bytes, the usage the Store keeps across a
// restart, the expiry of idle jobs, and the pages of an account's jobs).
//
// A crash is simulated by a wrapper that fails every write after a chosen
// finalize chunk, as a process killed there would stop writing, followed by
// closing and reopening the backend.
//
// RunCluster is the suite of a Store that the nodes of a cluster share
// (syncjobs.Runners), each node with a Store of its own over the shared
// storage: which claims succeed, that claims made at once are won once,
// that a former runner's writes are refused, and a runner's from a stale
// revision; a finalization taken over from a node paused between two
// chunks past its lease, which resumes to find its next chunk refused; and
// uploads and aborts racing finalizes of one job on two nodes, round after
// round, each won once with the job's record and staging consistent.
package syncjobstest
