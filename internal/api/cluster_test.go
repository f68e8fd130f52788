package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// withCluster gives the API a cluster of one real node, on a database of
// its own, as j1ds serve --store has: GET /operator/v1/cluster then shows
// it.
func withCluster(t *testing.T) func(*api.Config) {
	t.Helper()
	_, url := localpg.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatalf("open the cluster's database: %v", err)
	}
	t.Cleanup(func() { pg.Close() })
	m := cluster.New(pg.Cluster(), cluster.Config{Node: cluster.Node{Name: "api-test", Addr: "127.0.0.1:1"}})
	if err := m.Start(ctx, nil); err != nil {
		t.Fatalf("join the cluster: %v", err)
	}
	return func(c *api.Config) { c.Cluster = m }
}

func TestClusterView(t *testing.T) {
	e := newEnv(t, withCluster(t))
	var v cluster.View
	r := e.op(t, "GET", "/operator/v1/cluster", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /operator/v1/cluster: %s", r)
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Nodes) != 1 || v.Nodes[0].Name != "api-test" || !v.Nodes[0].Live || v.Nodes[0].Groups != cluster.Groups || v.FreeGroups != 0 || v.Node != v.Nodes[0].ID {
		t.Fatalf("one node that joined alone must own every group: %+v", v)
	}

	// On the embedded store there is no cluster to show.
	plain := newEnv(t)
	wantError(t, plain.op(t, "GET", "/operator/v1/cluster", nil), http.StatusNotFound, "NOT_A_CLUSTER")
}
