-- The graph and its transaction log. Every primary key and index starts
-- with the account id, and every statement j1ds runs on these tables names
-- one account, except the retention pass and the partition upkeep
-- (retention.go), which work on whole log partitions.

-- objects: the current state of every object, deleted ones included.
-- state is the object's JSON exactly as the API returns it; hash is
-- graph.ContentHash, so an upload that matches it is a no-op.
CREATE TABLE objects (
	account  text COLLATE "C" NOT NULL,
	id       text COLLATE "C" NOT NULL,
	kind     text COLLATE "C" NOT NULL,  -- 'e' entity, 'r' relationship
	type     text COLLATE "C" NOT NULL,
	scope    text COLLATE "C" NOT NULL,
	deleted  boolean NOT NULL,
	from_id  text COLLATE "C",           -- relationships only
	to_id    text COLLATE "C",
	hash     bytea NOT NULL,
	state    bytea NOT NULL,
	PRIMARY KEY (account, id)
);
-- Live objects by kind and type (List), by scope (ScanScope), and the
-- live relationships attached to an entity (cascading deletes).
CREATE INDEX objects_by_type ON objects (account, kind, type, id) WHERE NOT deleted;
CREATE INDEX objects_by_scope ON objects (account, scope, kind, id) INCLUDE (type) WHERE NOT deleted;
CREATE INDEX objects_by_from ON objects (account, from_id) WHERE kind = 'r' AND NOT deleted;
CREATE INDEX objects_by_to ON objects (account, to_id) WHERE kind = 'r' AND NOT deleted;

-- log_heads: one row per account that ever logged. A transaction locks its
-- account's row (FOR UPDATE) for its whole life, which serialises the
-- account's transactions across connections and nodes: LSNs and commit
-- times taken under the lock increase in commit order.
CREATE TABLE log_heads (
	account      text COLLATE "C" PRIMARY KEY,
	lsn          bigint NOT NULL DEFAULT 0, -- last LSN (End); never moves back
	last_commit  bigint NOT NULL DEFAULT 0, -- µs; commit time of the last entry
	trunc_lsn    bigint NOT NULL DEFAULT 0, -- highest LSN removed by retention
	entries      bigint NOT NULL DEFAULT 0, -- retained entries
	bytes        bigint NOT NULL DEFAULT 0  -- retained bytes (Reader.LogBytes)
);

-- LSNs come from one sequence, so they are unique across accounts. The
-- sequence jumps to the start of a new partition's range when the
-- partition opens (retention.go), so every partition holds one period of
-- commits and is dropped whole once all of it is past retention.
CREATE SEQUENCE log_lsn AS bigint;

CREATE TABLE log (
	account     text COLLATE "C" NOT NULL,
	lsn         bigint NOT NULL,
	commit_time bigint NOT NULL,  -- µs since the epoch
	count       integer NOT NULL, -- changes
	bytes       integer NOT NULL, -- size as CommitEvent.Bytes counts it
	changes     bytea NOT NULL,   -- op, kind, id and record length of each change
	lines       bytea NOT NULL,   -- the records, newline-ended, as an object holds them
	PRIMARY KEY (account, lsn)
) PARTITION BY RANGE (lsn);

-- The records compress well; lz4 decompresses them about twice as fast as
-- PostgreSQL's default pglz, which the export's reads spend most of their
-- time on. Servers built without lz4 keep pglz.
DO $$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
		ALTER TABLE log ALTER COLUMN lines SET COMPRESSION lz4;
	END IF;
END
$$;

-- log_partitions: the partitions of log, by the first LSN of their range.
CREATE TABLE log_partitions (
	first_lsn  bigint PRIMARY KEY,
	opened_at  bigint NOT NULL, -- µs, the store's clock
	dropping   boolean NOT NULL DEFAULT false -- its entries are accounted removed; being dropped
);
