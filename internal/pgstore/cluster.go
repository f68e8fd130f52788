package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/stream"
)

// Cluster returns the store of the cluster's nodes and leases
// (schema/004_cluster.sql).
func (s *Store) Cluster() cluster.Store { return clusterStore{s} }

type clusterStore struct{ s *Store }

var _ cluster.Store = clusterStore{}

// Notification channels (LISTEN/NOTIFY) between the nodes of a cluster.
const (
	channelCommits  = "j1ds_commits"  // payload: commitPayload
	channelSettings = "j1ds_settings" // payload: an account id
	channelCluster  = "j1ds_cluster"  // payload: a node id that joined, released or left
)

func seconds(d time.Duration) float64 { return d.Seconds() }

func (c clusterStore) Heartbeat(ctx context.Context, self cluster.Node, ttl time.Duration, prune bool) (cluster.Snapshot, error) {
	var b pgx.Batch
	if prune {
		b.Queue(`DELETE FROM cluster_nodes n WHERE n.expires_at < now() - make_interval(secs => $1)
			AND NOT EXISTS (SELECT 1 FROM export_groups g WHERE g.node = n.node)`, seconds(cluster.PruneAfter))
	}
	// A node registers at its first heartbeat and tells the others, who
	// then leave it its share. A leaving node's row is not renewed.
	b.Queue(`WITH up AS (
			INSERT INTO cluster_nodes AS n (node, name, addr, started_at, renewed_at, expires_at, accounts)
			VALUES ($1, $2, $3, now(), now(), now() + make_interval(secs => $4), $5)
			ON CONFLICT (node) DO UPDATE SET renewed_at = now(), expires_at = excluded.expires_at, accounts = excluded.accounts
				WHERE NOT n.leaving
			RETURNING (xmax = 0) AS joined)
		SELECT pg_notify($6, $1) FROM up WHERE joined`,
		self.ID, self.Name, self.Addr, seconds(ttl), self.Accounts, channelCluster)
	b.Queue(`SELECT node, name, addr, started_at, renewed_at, expires_at, expires_at > now(), leaving, accounts
		FROM cluster_nodes ORDER BY node`)
	b.Queue(`SELECT grp, coalesce(node, ''), token FROM export_groups ORDER BY grp`)
	br := c.s.pool.SendBatch(ctx, &b)
	defer br.Close()
	if prune {
		if _, err := br.Exec(); err != nil {
			return cluster.Snapshot{}, c.s.wrap("prune dead nodes", err)
		}
	}
	if _, err := br.Exec(); err != nil {
		return cluster.Snapshot{}, c.s.wrap("renew the lease of node "+self.ID, err)
	}
	snap, err := readSnapshot(br)
	if err != nil {
		return cluster.Snapshot{}, c.s.wrap("read the cluster", err)
	}
	return snap, br.Close()
}

// readSnapshot reads the nodes and then the leases from two queued
// queries.
func readSnapshot(br pgx.BatchResults) (cluster.Snapshot, error) {
	var snap cluster.Snapshot
	rows, err := br.Query()
	if err != nil {
		return snap, err
	}
	for rows.Next() {
		var n cluster.Node
		if err := rows.Scan(&n.ID, &n.Name, &n.Addr, &n.StartedAt, &n.RenewedAt, &n.ExpiresAt, &n.Live, &n.Leaving, &n.Accounts); err != nil {
			rows.Close()
			return snap, err
		}
		n.StartedAt, n.RenewedAt, n.ExpiresAt = n.StartedAt.UTC(), n.RenewedAt.UTC(), n.ExpiresAt.UTC()
		snap.Nodes = append(snap.Nodes, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return snap, err
	}
	rows, err = br.Query()
	if err != nil {
		return snap, err
	}
	defer rows.Close()
	for rows.Next() {
		var l cluster.Lease
		if err := rows.Scan(&l.Group, &l.Node, &l.Token); err != nil {
			return snap, err
		}
		snap.Leases = append(snap.Leases, l)
	}
	if err := rows.Err(); err != nil {
		return snap, err
	}
	if len(snap.Leases) != cluster.Groups {
		return snap, fmt.Errorf("export_groups has %d rows, want %d", len(snap.Leases), cluster.Groups)
	}
	return snap, nil
}

func (c clusterStore) Snapshot(ctx context.Context) (cluster.Snapshot, error) {
	var b pgx.Batch
	b.Queue(`SELECT node, name, addr, started_at, renewed_at, expires_at, expires_at > now(), leaving, accounts
		FROM cluster_nodes ORDER BY node`)
	b.Queue(`SELECT grp, coalesce(node, ''), token FROM export_groups ORDER BY grp`)
	br := c.s.pool.SendBatch(ctx, &b)
	defer br.Close()
	snap, err := readSnapshot(br)
	if err != nil {
		return cluster.Snapshot{}, c.s.wrap("read the cluster", err)
	}
	return snap, br.Close()
}

// Claim takes the groups of want that are free or whose owner is dead (its
// lease ended, or it left) for node, each with a new token. It locks each
// row it changes, and skips the rows a checkpoint write of the old owner
// holds FOR SHARE (a write that comes after the claim sees the new
// token): they are claimed at a later renewal, once the write committed,
// so the new owner reads the state that write left. A write never holds
// the row long: its transaction ends itself when idle (fence).
func (c clusterStore) Claim(ctx context.Context, node string, want []int) ([]cluster.Lease, error) {
	groups := make([]int32, len(want))
	for i, g := range want {
		groups[i] = int32(g)
	}
	rows, err := c.s.pool.Query(ctx, `UPDATE export_groups g SET node = $1, token = nextval('export_token'), claimed_at = now()
		FROM (SELECT grp FROM export_groups c
			WHERE c.grp = ANY($2) AND (c.node IS NULL OR NOT EXISTS (
				SELECT 1 FROM cluster_nodes n WHERE n.node = c.node AND n.expires_at > now() AND NOT n.leaving))
			AND EXISTS (SELECT 1 FROM cluster_nodes n WHERE n.node = $1 AND n.expires_at > now() AND NOT n.leaving)
			FOR UPDATE SKIP LOCKED) free
		WHERE g.grp = free.grp
		RETURNING g.grp, g.token`, node, groups)
	if err != nil {
		return nil, c.s.wrap("claim export groups", err)
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (cluster.Lease, error) {
		l := cluster.Lease{Node: node}
		return l, r.Scan(&l.Group, &l.Token)
	})
	return got, c.s.wrap("claim export groups", err)
}

func (c clusterStore) Release(ctx context.Context, node string, leases []cluster.Lease) error {
	groups := make([]int32, len(leases))
	tokens := make([]int64, len(leases))
	for i, l := range leases {
		groups[i], tokens[i] = int32(l.Group), l.Token
	}
	err := pgx.BeginFunc(ctx, c.s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE export_groups g SET node = NULL, claimed_at = NULL
			FROM unnest($2::int[], $3::bigint[]) AS r(grp, token)
			WHERE g.grp = r.grp AND g.token = r.token AND g.node = $1`, node, groups, tokens)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, $2)", channelCluster, node)
		return err
	})
	return c.s.wrap("release export groups", err)
}

func (c clusterStore) Leave(ctx context.Context, node string) error {
	err := pgx.BeginFunc(ctx, c.s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE cluster_nodes SET leaving = true, expires_at = least(expires_at, now()) WHERE node = $1`, node)
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, "UPDATE export_groups SET node = NULL, claimed_at = NULL WHERE node = $1", node); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "SELECT pg_notify($1, $2)", channelCluster, node)
		return err
	})
	return c.s.wrap("leave the cluster", err)
}

// fencedIdleTimeout ends a fenced checkpoint write's transaction, and
// releases its locks, when its node stops between two statements (paused,
// cut off): its statements follow each other at once otherwise.
const fencedIdleTimeout = 5 * time.Second

// fence checks, in a checkpoint write's transaction, that the group is
// still held with token, and holds its row FOR SHARE until the commit, so
// that a claim of the group skips it until the write committed (Claim).
// It also bounds the transaction's idle time (fencedIdleTimeout): a node
// paused inside the write loses its session instead of blocking the claim
// of the group and the account's state row for as long as it is paused.
func fence(ctx context.Context, tx pgx.Tx, group int, token int64) error {
	var cur int64
	err := tx.QueryRow(ctx, `SELECT token FROM export_groups, set_config('idle_in_transaction_session_timeout', $2, true)
		WHERE grp = $1 FOR SHARE OF export_groups`, group, strconv.FormatInt(fencedIdleTimeout.Milliseconds(), 10)).Scan(&cur)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("export group %d does not exist", group)
	}
	if err != nil {
		return fmt.Errorf("check the export lease: %w", err)
	}
	if cur != token {
		return stream.ErrFenced
	}
	return nil
}
