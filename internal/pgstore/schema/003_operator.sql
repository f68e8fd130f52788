-- operator_key: the hash of the operator key j1ds serve generated, when it
-- was started without --operator-key (operator.go). The key itself is
-- never stored. At most one row.
--
-- A metadata table, like j1ds_schema and log_partitions: it belongs to no
-- account, so its primary key does not start with an account id. Were the
-- schema distributed by account, it would be a reference table.
CREATE TABLE operator_key (
	id          boolean PRIMARY KEY DEFAULT true CHECK (id), -- the one row
	hash        bytea NOT NULL,                              -- SHA-256 of the key
	created_at  timestamptz NOT NULL DEFAULT now()
);
