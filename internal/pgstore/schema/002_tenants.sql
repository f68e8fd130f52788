-- Accounts and API keys (accounts.go), sync jobs and their staging
-- (jobs.go), Data Streaming settings and stream states (settings.go).
-- Every primary key and index starts with the account id, and every
-- statement j1ds runs on these tables names one account, except:
--   - listing every account (accounts);
--   - authenticating an API key, looked up by the hash of its secret
--     (api_key_hashes, whose key is the hash);
--   - the unfinished sync jobs of every account, read at startup
--     (sync_jobs_finalizing);
--   - the stream states of every account that streams, read by the
--     exporter (stream_states_enabled).
-- Records are JSON, stored as bytea: they read back byte for byte as they
-- were written.

-- accounts: one row per account; record is JSON {id, entitlements,
-- createdAt}.
CREATE TABLE accounts (
	account  text COLLATE "C" PRIMARY KEY,
	record   bytea NOT NULL
);

-- api_keys: the live API keys of an account; hash is the SHA-256 of the
-- key's secret (accounts.HashSecret), record is JSON {id, accountId, role,
-- createdAt}. The secret itself is never stored.
CREATE TABLE api_keys (
	account  text COLLATE "C" NOT NULL REFERENCES accounts,
	key_id   text COLLATE "C" NOT NULL,
	hash     bytea NOT NULL,
	record   bytea NOT NULL,
	PRIMARY KEY (account, key_id)
);

-- api_key_hashes: the lookup table of Authenticate, from the hash of a
-- key's secret to its account and key. It is the one table keyed by
-- something other than an account: a caller presents a secret, not an
-- account. A key's row here and in api_keys are written and deleted in one
-- transaction (accounts.go); no foreign key ties them, so the table stands
-- on its own, keyed by the hash alone.
CREATE TABLE api_key_hashes (
	hash     bytea PRIMARY KEY,
	account  text COLLATE "C" NOT NULL,
	key_id   text COLLATE "C" NOT NULL
);

-- sync_jobs: the record of each sync job, JSON in the API's shape plus its
-- finalize progress. finalizing is whether the record's status is one of
-- finalization (syncjobs.Status.Finalizing), kept with every write of the
-- record.
CREATE TABLE sync_jobs (
	account     text COLLATE "C" NOT NULL,
	id          text COLLATE "C" NOT NULL,
	finalizing  boolean NOT NULL,
	record      bytea NOT NULL,
	PRIMARY KEY (account, id)
);
-- The jobs being finalized, of every account: read when the service
-- opens, to resume them.
CREATE INDEX sync_jobs_finalizing ON sync_jobs (account, id) WHERE finalizing;

-- sync_job_events: the number of events reported for a job, apart from
-- its record, so that writing the record leaves the count as it is (and
-- reporting an event waits on no finalize chunk holding the record).
CREATE TABLE sync_job_events (
	account  text COLLATE "C" NOT NULL,
	job      text COLLATE "C" NOT NULL,
	events   bigint NOT NULL,
	PRIMARY KEY (account, job)
);

-- sync_job_staging: the objects uploaded to a job until it ends, in
-- canonical form (graph.Input.AppendCanonical); kind is 'e' or 'r'.
-- Finalization reads them in id order, one kind at a time.
CREATE TABLE sync_job_staging (
	account  text COLLATE "C" NOT NULL,
	job      text COLLATE "C" NOT NULL,
	kind     text COLLATE "C" NOT NULL,
	id       text COLLATE "C" NOT NULL,
	data     bytea NOT NULL,
	PRIMARY KEY (account, job, kind, id)
);

-- streaming_settings: an account's Data Streaming settings, its last
-- connection test and its enabled periods, JSON {account, settings,
-- lastConnectionTest, periods}.
CREATE TABLE streaming_settings (
	account  text COLLATE "C" PRIMARY KEY,
	record   bytea NOT NULL
);

-- stream_states: an account's stream state (stream.State as JSON), the
-- exporter's checkpoint, in a row of its own so that moving the cursor
-- rewrites only this small row. enabled is the state's Enabled, kept with
-- every write. The row is also the account's lock: every read-modify-write
-- of the account's settings or stream state holds it (FOR UPDATE) until it
-- commits.
CREATE TABLE stream_states (
	account  text COLLATE "C" PRIMARY KEY,
	enabled  boolean NOT NULL,
	state    bytea NOT NULL
);
-- The accounts that stream, for the exporter.
CREATE INDEX stream_states_enabled ON stream_states (account) WHERE enabled;
