-- Sync job quotas and expiry (jobs.go, syncjobs.Store Usage and Idle).
--
-- open is whether the record's status is not final (syncjobs.Status.Final):
-- the job awaits uploads or is being finalized, and counts in its
-- account's open jobs. staged_bytes is the size of what the job staged
-- (syncjobs.Job.StagedBytes), counted in its account's staging quota while
-- it is open. touched is, while the job awaits uploads, when it was
-- created or last took an upload (Unix milliseconds; NULL otherwise): it
-- expires that long after. All three are kept with every write of the
-- record. Jobs written before this migration take them from their record
-- and their staging.
ALTER TABLE sync_jobs
	ADD COLUMN open boolean NOT NULL DEFAULT false,
	ADD COLUMN staged_bytes bigint NOT NULL DEFAULT 0,
	ADD COLUMN touched bigint;

UPDATE sync_jobs j SET
	open = (convert_from(j.record, 'UTF8')::jsonb ->> 'status') NOT IN ('ABORTED', 'FINISHED', 'ERROR_BAD_DATA'),
	touched = CASE WHEN convert_from(j.record, 'UTF8')::jsonb ->> 'status' = 'AWAITING_UPLOADS'
		THEN (convert_from(j.record, 'UTF8')::jsonb ->> 'startTimestamp')::bigint END,
	staged_bytes = (SELECT coalesce(sum(length(s.id) + length(s.data)), 0) FROM sync_job_staging s
		WHERE s.account = j.account AND s.job = j.id);

-- An account's open jobs and what they staged, read before each job
-- created and each upload: no more than the open jobs.
CREATE INDEX sync_jobs_open ON sync_jobs (account) INCLUDE (staged_bytes) WHERE open;
-- The jobs awaiting uploads: every node looks among them every minute for
-- those left idle past the expiry. Like every index here it starts with
-- the account (the schema can be distributed by account); being partial,
-- it holds only the jobs awaiting uploads, which the open-jobs quota bounds.
CREATE INDEX sync_jobs_touched ON sync_jobs (account, touched) WHERE touched IS NOT NULL;
