-- Sync jobs in cluster mode (jobs.go, syncjobs.Runners): the node that
-- runs each job's finalization.
--
-- runner is the id of the node (cluster_nodes.node) that runs, or last
-- ran, the job's finalization; NULL until a node of a cluster finalizes
-- it. The node whose finalize request wrote FINALIZE_PENDING becomes the
-- runner with that write; another node takes the job over only by a claim,
-- which succeeds once the runner is no longer live (its lease ended, or it
-- left). Every write of a finalization (a chunk's transaction, a record)
-- is conditional on the runner still being its node, in the write's own
-- transaction: a node paused past its lease whose job was taken over
-- writes nothing more of it. Not a foreign key: the rows of dead nodes are
-- pruned, and a runner without a row is simply not live.
ALTER TABLE sync_jobs ADD COLUMN runner text COLLATE "C";

-- The jobs being finalized, now with their runner: besides the startup
-- read of a process that has the database to itself, every node of a
-- cluster looks among them every few seconds for those no live node runs
-- (Orphans), its one statement on these tables that names no account. It
-- reads the jobs being finalized only, not every job.
DROP INDEX sync_jobs_finalizing;
CREATE INDEX sync_jobs_finalizing ON sync_jobs (account, id) INCLUDE (runner) WHERE finalizing;
