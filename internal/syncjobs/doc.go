// Package syncjobs implements JupiterOne's synchronization jobs on the
// embedded graph: an integration starts a job for a scope, uploads entities
// and relationships in as many requests as it likes, and finalizes it.
//
// Uploads are validated as they arrive (one bad object rejects the whole
// request, naming the list, the index, the _key and the field) and staged
// on disk in a Store, keyed by object id, so a duplicate scope+key within a
// job is caught at once and memory does not grow with the job. Finalize
// first checks that every staged relationship's ends will exist; if one
// will not, the job ends in ERROR_BAD_DATA and nothing is applied. Then it
// applies entities, then relationships, then, for DIFF jobs, deletes the
// scope's live objects the job did not upload (types named in
// partialDatasets excepted; relationships first, then entities, whose
// deletion cascades). Each chunk of at most 500 objects is one graph
// transaction that also saves the job's counters and progress
// (Store.Apply), so a crash never leaves a transaction half applied, and a
// restarted service resumes the finalization where it stopped.
//
// # Sharing the service between accounts
//
// Finalizations run on a few workers (Options.Workers) shared fairly by
// the accounts (schedule.go): an account runs one finalization at a time,
// the accounts waiting take turns, and a turn does at most one chunk of
// work, so one account's backlog delays another's small job by at most one
// chunk per worker. Each account's open jobs and the bytes they stage are
// bounded (Options.MaxOpenJobs, Options.MaxStagedBytes: 429
// TOO_MANY_OPEN_JOBS, STAGING_QUOTA_EXCEEDED), and a job left awaiting
// uploads for Options.JobExpiry is aborted and its staging dropped
// (quota.go).
//
// # Nodes of a cluster
//
// Several processes (nodes) may share one Store (Options.Node; the Store
// implements Runners), each answering any request: a job may be created on
// one node, take uploads on another and be finalized on a third. A
// finalization runs on one live node at a time, its runner, recorded with
// the job. The node that gets the finalize request becomes the runner with
// the write of FINALIZE_PENDING, and claims the job again (Runners.Claim)
// before each attempt. Rather than resuming every unfinished job when it
// opens, each node looks every ResumePoll, in one statement, for the jobs
// being finalized whose runner is no longer live (its lease ended, or it
// left) and claims them: one claim wins, and that node resumes the job
// where its former runner's last chunk left it. Every write of a
// finalization goes through Runners.Runner and is conditional on the node
// still being the job's runner, in the same transaction as the chunk: a
// node paused past its lease whose job was taken over gets ErrNotRunner at
// its next write, which stops that finalization without failing the job.
//
// # Requests that change one job at once
//
// Any node answers any request, so two requests that change one job can
// run at once on two nodes: an upload and a finalize, an abort and a
// finalize. The Service's locks order the changes of a job within one
// process only. Across processes, each job's record carries a revision
// (Job.Revision), and the Store writes a record only from the revision
// its request read it at, in the write's own transaction (ErrJobChanged
// otherwise, writing nothing). Of requests that read a job at once, one
// writes; each other reads the job again and decides on it as if it had
// come second, as one process answers requests it serialises: an upload
// or an abort of a job being finalized, or a finalize of an aborted one,
// is answered 400 JOB_NOT_AWAITING_UPLOADS and changes nothing; an
// upload, abort or finalize of a job that still awaits uploads (another
// upload came first) goes through on the job as it now stands. So a
// finalization reads the objects of every upload answered before its
// FINALIZE_PENDING was written, and of none after, and no request takes a
// job back out of a finalization or a final state.
//
// The Service holds the whole job logic; a Store only keeps job records,
// event counts and staged objects, and its layout on disk is its backend's
// (internal/pebblestore keeps them beside the graph, in the same database).
// Package syncjobstest is the suite every Store passes.
package syncjobs
