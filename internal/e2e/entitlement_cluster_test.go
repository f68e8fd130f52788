package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/localpg"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// TestEntitlementRemovalStopsAnotherNode: in cluster mode, the operator
// removes an account's entitlement through a node that does not export
// it; the node that does stops at once: no export request for changes
// made after the removal, and the status shows it stopped with the
// reason. Two nodes run in-process on one PostgreSQL database, each with
// one export worker, and the beacon is an account of the exporting node.
func TestEntitlementRemovalStopsAnotherNode(t *testing.T) {
	t.Parallel()
	e := startS3(t, "")
	_, dbURL := localpg.Shared(t)
	cfg := streamConfig(t, e)
	usePostgres(t, &cfg, dbURL)
	cfg.ExportWorkers = 1 // for the beacon
	nodes := map[string]*j1{}
	for _, name := range []string{"n1", "n2"} {
		c := cfg
		c.NodeName = name
		nodes[name], _ = startServeLogged(t, c)
	}
	n1 := nodes["n1"]
	waitFor(t, time.Minute, "both nodes sharing the export groups", func() bool {
		var v clusterView
		decode(t, n1.must(t, http.StatusOK, "GET", "/operator/v1/cluster", n1.opKey, nil), &v)
		return v.balanced(2)
	})

	key := n1.account(t, "acme", true)
	n1.enable(t, key, "acme", streamBucket, s3Owner)
	owner := exportNode(t, n1, key, "acme")
	other := "n1"
	if owner == "n1" {
		other = "n2"
	}

	// A beacon account exported by the same node.
	e.bucket(t, beaconBucket, s3Owner, locals3.WriterPolicy(beaconBucket, s3Writer))
	var beaconID, beaconKey string
	for i := 0; beaconID == ""; i++ {
		if i == 32 {
			t.Fatalf("none of 32 accounts is exported by %s", owner)
		}
		id := fmt.Sprintf("beacon-%d", i)
		bk := n1.account(t, id, true)
		n1.enable(t, bk, id, beaconBucket, s3Owner)
		if exportNode(t, n1, bk, id) == owner {
			beaconID, beaconKey = id, bk
		}
	}
	beaconChanges := 0

	first := n1.create(t, key, "acme", "entities", entity("acme-user-first", "test_user", []string{"User"}, "name", "First"))
	waitExported(t, n1, key, "acme", 1)
	n := len(exportRequests(e.proxy, "acme"))

	o := nodes[other]
	o.must(t, http.StatusOK, "PUT", "/operator/v1/accounts/acme/entitlements", o.opKey, map[string]any{"entitlements": []string{}})
	wantStopped(t, nodes[owner], key, "acme")
	n1.create(t, key, "acme", "entities", entity("acme-user-after", "test_user", []string{"User"}, "name", "After"))
	passBeyondAs(t, n1, beaconKey, beaconID, &beaconChanges, time.Now().Add(2*flushInterval+flushInterval/2))
	if r := exportRequests(e.proxy, "acme"); len(r) != n {
		t.Fatalf("%d export requests of acme after its entitlement was removed through %s, want none: %+v", len(r)-n, other, r[n:])
	}
	objs := e.objects(t, streamBucket, "acme")
	if len(objs) != 1 {
		t.Fatalf("%d objects of acme, want the one before the removal", len(objs))
	}
	compareRecords(t, "before the removal", objs[0].Lines, []write{first})
}

// passBeyondAs is beacon.passBeyond with account as the beacon: it must
// be exported by the node whose flushes are waited for, with one worker.
func passBeyondAs(t *testing.T, j *j1, key, account string, changes *int, at time.Time) {
	t.Helper()
	for {
		committed := time.Now() // the change's commit time is no earlier
		*changes++
		j.create(t, key, account, "entities", entity(fmt.Sprintf("beacon-change-%04d", *changes), "test_beacon", []string{"Beacon"}))
		waitExported(t, j, key, account, *changes)
		if !committed.Add(j.cfg.FlushInterval).Before(at) {
			return
		}
	}
}

// exportNode returns the name of the node that exports account, once one
// does.
func exportNode(t *testing.T, j *j1, key, account string) string {
	t.Helper()
	var name string
	waitFor(t, time.Minute, "a node exporting "+account, func() bool {
		var v struct {
			Status struct {
				ExportNode *struct {
					Name string `json:"name"`
				} `json:"exportNode"`
			} `json:"status"`
		}
		decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account), key, nil), &v)
		if v.Status.ExportNode != nil {
			name = v.Status.ExportNode.Name
		}
		return name != ""
	})
	return name
}
