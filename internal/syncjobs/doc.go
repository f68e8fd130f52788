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
// The Service holds the whole job logic; a Store only keeps job records,
// event counts and staged objects, and its layout on disk is its backend's
// (internal/pebblestore keeps them beside the graph, in the same database).
// Package syncjobstest is the suite every Store passes.
package syncjobs
