package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/stream"
)

// failoverResult is what a node's death costs its accounts.
type failoverResult struct {
	Accounts int // enabled over the cluster
	Written  int // accounts of the killed node, one change each
	// Measured is how many of those the other nodes exported after the
	// kill; FlushedBefore were exported by the killed node before it died;
	// Missing had no object when the wait ended.
	Measured, FlushedBefore, Missing int
	// From the kill to the first object of each measured account, and to
	// the claim of its group by another node, in seconds.
	P50, P99, Max      float64
	ClaimMin, ClaimMax float64
	// WriteSeconds is how long the writes took, the last answered right
	// before the kill.
	WriteSeconds float64
}

// failoverWait bounds the wait for the killed node's accounts.
const failoverWait = time.Minute

// failoverWriters is how many writes the failover sends to the node at
// once: enough that they are all answered well within the flush interval.
const failoverWriters = 32

// benchClusterFailover enables c.ClusterFailoverAccounts accounts over
// c.ClusterNodes nodes, writes one change to each account of one node
// through its API, kills it as soon as the writes are answered, and
// measures the time from the kill to each of those accounts' first object.
func benchClusterFailover(ctx context.Context, c Config, rig *clusterRig, p *pgServer, progress func(string, ...any)) (failoverResult, error) {
	res := failoverResult{Accounts: c.ClusterFailoverAccounts}
	s, store, closeDB, err := clusterDatabase(ctx, p)
	if err != nil {
		return res, err
	}
	defer closeDB()
	const bucket = "bench-cluster-failover"
	if err := rig.b.bucket(ctx, bucket); err != nil {
		return res, err
	}
	progress("cluster failover: %d accounts created and enabled, %d nodes started (flush interval %s, lease %s)",
		c.ClusterFailoverAccounts, c.ClusterNodes, c.ClusterFlushInterval, c.ClusterLeaseTTL)
	names := accountNames("failover", 0, c.ClusterFailoverAccounts)
	if err := setUpAccounts(s, names, bucket); err != nil {
		return res, err
	}
	var nodes []*clusterNode
	defer func() { rig.stop(nodes) }()
	for range c.ClusterNodes {
		n, err := rig.start(ctx, store)
		if err != nil {
			return res, err
		}
		nodes = append(nodes, n)
	}
	if err := rig.waitBalanced(ctx, nodes, len(names), balanceTimeout); err != nil {
		return res, err
	}

	// The victim's accounts: those of the groups it holds.
	victim := nodes[0]
	rows, err := s.Pool().Query(ctx, "SELECT grp FROM export_groups WHERE node = $1", victim.id)
	if err != nil {
		return res, err
	}
	var groups []int
	for rows.Next() {
		var g int
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			return res, err
		}
		groups = append(groups, g)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	var theirs []string
	for _, a := range names {
		if slices.Contains(groups, cluster.GroupOf(a)) {
			theirs = append(theirs, a)
		}
	}
	if len(theirs) == 0 {
		return res, fmt.Errorf("%s holds %d groups and none of the %d accounts", victim.name, len(groups), len(names))
	}
	res.Written = len(theirs)
	keys := make([]string, len(theirs))
	var next atomic.Int64
	err = eachWriter(enableWorkers, func(int) error {
		for i := int(next.Add(1) - 1); i < len(theirs); i = int(next.Add(1) - 1) {
			secret, _, err := s.Accounts().CreateKey(theirs[i], accounts.RoleMember)
			if err != nil {
				return err
			}
			keys[i] = secret
		}
		return nil
	})
	if err != nil {
		return res, err
	}

	progress("cluster failover: one change to each of the %d accounts of %s (%d groups) through its API, then SIGKILL", len(theirs), victim.name, len(groups))
	next.Store(0)
	start := time.Now()
	err = eachWriter(failoverWriters, func(int) error {
		for i := int(next.Add(1) - 1); i < len(theirs); i = int(next.Add(1) - 1) {
			if err := rig.writeEntity(ctx, victim, theirs[i], keys[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	killedAt := time.Now()
	victim.kill()
	res.WriteSeconds = killedAt.Sub(start).Seconds()
	progress("cluster failover: %s killed %.2fs after the first write; waiting for its accounts' objects", victim.name, res.WriteSeconds)

	// Only the accounts still waiting are read, every pollEvery: their
	// LastExportAt says when the object was stored, whenever it is read.
	const pollEvery = 250 * time.Millisecond
	pending := slices.Clone(theirs)
	var lat []float64
	deadline := killedAt.Add(failoverWait)
	for len(pending) > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(pollEvery):
		}
		states, err := readStates(ctx, s, pending)
		if err != nil {
			return res, err
		}
		pending = pending[:0]
		for _, st := range states {
			switch {
			case st.ObjectsExported == 0:
				pending = append(pending, st.Account)
			case st.LastExportAt.Before(killedAt):
				res.FlushedBefore++
			default:
				lat = append(lat, st.LastExportAt.Sub(killedAt).Seconds())
			}
		}
	}
	res.Measured, res.Missing = len(lat), len(pending)
	if len(lat) == 0 {
		return res, fmt.Errorf("no account of %s was exported by another node within %s of its death", victim.name, failoverWait)
	}
	sorted := sortedCopy(lat)
	res.P50, res.P99, res.Max = percentile(sorted, 0.5), percentile(sorted, 0.99), sorted[len(sorted)-1]

	// When the victim's groups were claimed, in the database's clock (this
	// machine's).
	rows, err = s.Pool().Query(ctx, "SELECT grp, claimed_at FROM export_groups WHERE grp = ANY($1)", groups)
	if err != nil {
		return res, err
	}
	claimed := map[int]time.Time{}
	for rows.Next() {
		var g int
		var at *time.Time
		if err := rows.Scan(&g, &at); err != nil {
			rows.Close()
			return res, err
		}
		if at != nil {
			claimed[g] = *at
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, err
	}
	var claims []float64
	for _, a := range theirs {
		if at, ok := claimed[cluster.GroupOf(a)]; ok && at.After(killedAt) {
			claims = append(claims, at.Sub(killedAt).Seconds())
		}
	}
	if len(claims) > 0 {
		sorted := sortedCopy(claims)
		res.ClaimMin, res.ClaimMax = sorted[0], sorted[len(sorted)-1]
	}
	// Each account measured is one object in the bucket; those the victim
	// exported before its death too.
	if n, err := rig.b.count(ctx, bucket); err != nil || n != res.Measured+res.FlushedBefore {
		return res, fmt.Errorf("the bucket holds %d objects, the stream states count %d (%v)", n, res.Measured+res.FlushedBefore, err)
	}
	return res, nil
}

// readStates reads the stream states of accounts in one statement.
func readStates(ctx context.Context, s *pgstore.Store, accounts []string) ([]stream.State, error) {
	rows, err := s.Pool().Query(ctx, "SELECT state FROM stream_states WHERE account = ANY($1)", accounts)
	if err != nil {
		return nil, fmt.Errorf("read stream states: %w", err)
	}
	defer rows.Close()
	var out []stream.State
	for rows.Next() {
		var v []byte
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("read stream states: %w", err)
		}
		var st stream.State
		if err := json.Unmarshal(v, &st); err != nil {
			return nil, fmt.Errorf("decode a stream state: %w", err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read stream states: %w", err)
	}
	if len(out) != len(accounts) {
		return nil, fmt.Errorf("%d stream states for %d accounts", len(out), len(accounts))
	}
	return out, nil
}

// writeEntity commits one entity to an account through a node's REST API.
func (r *clusterRig) writeEntity(ctx context.Context, n *clusterNode, account, key string) error {
	body := fmt.Sprintf(`{"_key":"failover-%s","_type":"bench_record","_class":["Record"],"name":"failover","at":%d}`, account, time.Now().UnixMilli())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url+"/api/v1/accounts/"+account+"/entities", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	if err != nil {
		return fmt.Errorf("write to %s on %s: %w", account, n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("write to %s on %s: %s: %.300s", account, n.name, resp.Status, b)
	}
	return nil
}
