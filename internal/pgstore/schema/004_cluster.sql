-- Cluster mode (cluster.go): several j1ds serve processes share this
-- database and divide the export work between them.
--
-- cluster_nodes: one row per node that joined; a node is live while its
-- lease (expires_at, in the database's clock) has not passed. A node
-- renews it every quarter of the lease; rows of nodes dead for a while
-- are deleted by the others.
--
-- export_groups: accounts are hashed into a fixed number of groups
-- (cluster.Groups); a node owns whole groups, so the cost of leases grows
-- with nodes, not with accounts. A group's owner exports its accounts
-- while its own lease lasts; token is the fencing token, taken from
-- export_token at each claim, so it only grows. Every checkpoint write of
-- the exporter first locks its group's row FOR SHARE and checks the token
-- it holds: a node that lost the group can no longer move a cursor, and a
-- claim (an UPDATE of the row) waits for the writes of the old owner that
-- started before it.
--
-- Metadata tables, like j1ds_schema: their keys do not start with an
-- account id. Were the schema distributed by account, they would be
-- reference tables.
CREATE TABLE cluster_nodes (
	node        text COLLATE "C" PRIMARY KEY,   -- random id, new at each start
	name        text NOT NULL,                  -- --node-name, for people
	addr        text NOT NULL,                  -- the address its API listens on
	started_at  timestamptz NOT NULL,
	renewed_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	accounts    integer NOT NULL DEFAULT 0,     -- enabled accounts it exports, at its last renewal
	leaving     boolean NOT NULL DEFAULT false  -- shutting down: owns nothing and takes nothing
);

CREATE SEQUENCE export_token;

CREATE TABLE export_groups (
	grp         integer PRIMARY KEY,
	node        text COLLATE "C",               -- owner; NULL when free
	token       bigint NOT NULL DEFAULT 0,      -- fencing token of the current claim
	claimed_at  timestamptz
);
INSERT INTO export_groups (grp) SELECT g FROM generate_series(0, 255) AS g;
