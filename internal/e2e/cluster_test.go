package e2e

// Cluster mode (serve --store postgres://...): several j1ds serve
// processes on one database share the export of the accounts
// (internal/cluster). These tests run real nodes (child processes of the
// race-enabled binary), a real PostgreSQL and versitygw over TLS, and
// check what an operator and a customer see: any node answers any request,
// a dead or frozen node's accounts move to the others, a node that stops
// hands over at once, a joining node takes its share, a sync job whose
// finalizing node dies is finished by another, and every change lands in
// the bucket exactly once throughout.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/serve"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

// TestClusterChaos: three nodes export two dozen accounts (created and
// enabled through different nodes) while REST writers spread over every
// node and a synth sync job writer keep changing them. Meanwhile, one
// event per round: a node is SIGKILLed and started again (twice); one is
// frozen (SIGSTOP) with an upload in flight for longer than its lease, so
// its groups are claimed by the others, then thawed: it must find its
// groups lost and its late checkpoint writes refused (fenced); PostgreSQL
// is restarted in immediate mode; a node is stopped with SIGTERM and
// started again. After each round the three nodes share the groups again.
// At the end every account's cursor reaches its log's end, j1ds verify
// --compare is clean for each, and each bucket holds every change of its
// log exactly once. The full version (J1DS_MATRIX=full) runs more rounds,
// two nodes killed at once among them, over more accounts.
func TestClusterChaos(t *testing.T) {
	t.Parallel()
	full := matrixFull(t)
	accounts := 24
	rounds := []string{"kill", "pause", "pg-restart", "term", "kill"}
	if full {
		accounts = 48
		rounds = []string{"kill", "pause", "term", "kill2", "pg-restart", "kill", "pause", "kill2", "term", "pause", "pg-restart", "kill"}
	}
	start := time.Now()
	tc := startCluster(t, clusterOptions{nodes: 3, leaseTTL: 3 * time.Second, ownPG: true})
	keys := map[string]string{}
	var ids []string
	for i := range accounts + 1 {
		a := fmt.Sprintf("chaos-%02d", i)
		if i == accounts {
			a = "chaos-sync"
		}
		keys[a] = tc.nodes[i%3].account(t, a, true)
		tc.nodes[(i+1)%3].enable(t, keys[a], a, streamBucket, s3Owner)
		ids = append(ids, a)
	}
	restIDs, accSync := ids[:accounts], ids[accounts]
	t.Logf("cluster of 3 up and %d accounts enabled in %s", len(ids), time.Since(start).Round(100*time.Millisecond))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stopWriters := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stopWriters)
	var loads []*restLoad
	for k := range 3 {
		from := k * accounts / 3 // each load writes every account, from its own first one
		w := newRESTLoad(t, fmt.Sprintf("w%d", k), tc.newRoute(), append(slices.Clone(restIDs[from:]), restIDs[:from]...), keys, 30*time.Millisecond)
		loads = append(loads, w)
		wg.Go(func() { w.run(ctx) })
	}
	sw := &synthWriter{t: t, live: tc.newRoute(), account: accSync, key: keys[accSync], entities: 100, seed: 13, scope: "synth-cluster"}
	wg.Go(func() { sw.run(ctx) })
	writes := func() int64 {
		var n int64
		for _, w := range loads {
			n += w.writes.Load()
		}
		return n
	}
	// progress waits for more writes and more objects since it was last
	// called: every round starts under load.
	lastWrites, lastObjects := int64(0), 0
	progress := func(what string) {
		t.Helper()
		waitFor(t, 2*time.Minute, "writes and exports "+what, func() bool {
			return writes() >= lastWrites+20 && uploads(tc.e.proxy, "", time.Time{}) >= lastObjects+3
		})
		lastWrites, lastObjects = writes(), uploads(tc.e.proxy, "", time.Time{})
	}

	var took []string
	var pauses []pauseResult
	for r, ev := range rounds {
		progress(fmt.Sprintf("before round %d (%s)", r+1, ev))
		roundStart := time.Now()
		up := tc.up()
		switch ev {
		case "kill", "kill2":
			victims := []*clusterNode{up[rand.IntN(len(up))]}
			if ev == "kill2" {
				victims = append(victims, up[(slices.Index(up, victims[0])+1+rand.IntN(len(up)-1))%len(up)])
			}
			for _, n := range victims {
				tc.kill(n)
			}
			time.Sleep(time.Duration(200+rand.IntN(1300)) * time.Millisecond)
			for _, n := range victims {
				tc.restart(n)
			}
		case "term":
			n := up[rand.IntN(len(up))]
			tc.term(n)
			tc.restart(n)
		case "pause":
			pauses = append(pauses, chaosPause(t, tc, keys, up[rand.IntN(len(up))]))
		case "pg-restart":
			if err := tc.pg.Restart("immediate"); err != nil {
				t.Fatal(err)
			}
			tc.waitReady(time.Minute)
		}
		tc.waitBalanced(2*time.Minute, 3)
		took = append(took, fmt.Sprintf("%s %.1fs", ev, time.Since(roundStart).Seconds()))
	}
	progress("after the last round")
	stopWriters()
	chaosTime := time.Since(start)

	tc.waitCaughtUp(2*time.Minute, keys)
	n := tc.any(0)
	checkAcked(t, n, keys, loads...)
	if sw.jobs.Load() == 0 {
		t.Errorf("%s: no sync job finished", accSync)
	}
	for _, a := range ids {
		st := n.clusterStatus(t, keys[a], a)
		if st.Status.LastError != nil || len(st.Status.Gaps) != 0 || st.Status.ExportNode == nil || !st.Status.ExportNode.Live {
			t.Errorf("%s at the end: last error %+v, gaps %+v, export node %+v; want no error, no gap and a live export node",
				a, st.Status.LastError, st.Status.Gaps, st.Status.ExportNode)
		}
	}
	verifyStart := time.Now()
	records := verifyAll(t, tc.e, n, keys)
	verifyTime := time.Since(verifyStart)
	tc.checkExactlyOnce(ids)

	var metrics []string
	for _, n := range tc.up() {
		metrics = append(metrics, fmt.Sprintf("%s: takeovers %.0f, groups lost %.0f, fenced writes %.0f", n.name,
			n.metric(t, "j1ds_cluster_takeovers_total"), n.metric(t, "j1ds_cluster_groups_lost_total"), n.metric(t, "j1ds_cluster_fenced_writes_total")))
	}
	t.Logf("chaos: %d rounds in %s (%s)", len(rounds), chaosTime.Round(time.Second), strings.Join(took, ", "))
	for _, p := range pauses {
		t.Logf("pause of %s: %s", p.node, p)
	}
	t.Logf("writes acknowledged: %d REST; %s: %d sync jobs finished, %d attempts failed", writes(), accSync, sw.jobs.Load(), len(sw.failed()))
	for _, f := range sw.failed() {
		t.Logf("failed sync attempt: %s", f)
	}
	t.Logf("verify --compare clean for %d accounts (%d records) in %s; every bucket equals its log", len(ids), records, verifyTime.Round(100*time.Millisecond))
	t.Logf("nodes at the end (since their last start): %s", strings.Join(metrics, "; "))
}

// pauseResult is what a node frozen for longer than its lease went
// through.
type pauseResult struct {
	node     string
	accounts int           // accounts it exported when frozen
	inFlight string        // the key of an upload it had in flight, if caught
	claimed  time.Duration // from SIGSTOP until the others held every group
	lost     float64       // groups it found lost when thawed
	fenced   float64       // its checkpoint writes refused
}

func (p pauseResult) String() string {
	return fmt.Sprintf("%d accounts, upload in flight %q, its groups claimed %.1fs after SIGSTOP; thawed: %.0f groups lost, %.0f checkpoint writes fenced",
		p.accounts, p.inFlight, p.claimed.Seconds(), p.lost, p.fenced)
}

// chaosPause freezes n (SIGSTOP), if it can with one of its uploads in
// flight (held for a second by the S3 proxy, then stored: a late request of
// the old owner), until the other nodes have claimed all its groups, then
// thaws it (SIGCONT). The thawed node must find its groups lost; with an
// upload in flight it must also have a checkpoint write refused, since
// its group has a new token by then.
func chaosPause(t *testing.T, tc *testCluster, keys map[string]string, n *clusterNode) pauseResult {
	t.Helper()
	res := pauseResult{node: n.name}
	id := n.nodeID(t)
	var owned []string
	for a, o := range tc.settledOwners(keys) {
		if o == n {
			owned = append(owned, a)
		}
	}
	slices.Sort(owned)
	res.accounts = len(owned)
	lost0 := n.metric(t, "j1ds_cluster_groups_lost_total")
	fenced0 := n.metric(t, "j1ds_cluster_fenced_writes_total")
	if len(owned) > 0 {
		set := time.Now()
		tc.e.proxy.SetFault(locals3.Fault{Delay: time.Second, Late: true, Count: 1, Match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && hasAccountPrefix(r.URL.Path, owned)
		}})
		deadline := time.Now().Add(20 * time.Second)
		for res.inFlight == "" && time.Now().Before(deadline) {
			for _, r := range tc.e.proxy.Requests() {
				if !r.Time.Before(set) && r.Method == http.MethodPut && hasAccountPrefix(r.Path, owned) {
					res.inFlight = strings.TrimPrefix(r.Path, "/"+streamBucket+"/")
					break
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if res.inFlight == "" {
			tc.e.proxy.SetFault(locals3.Fault{})
		}
	}
	tc.pause(n)
	paused := time.Now()
	waitFor(t, time.Minute, n.name+"'s groups to be claimed by the other nodes", func() bool {
		v := tc.any(0).view(t)
		nv, ok := v.byID(id)
		return ok && !nv.Live && v.FreeGroups == 0
	})
	res.claimed = time.Since(paused)
	tc.resume(n)
	waitFor(t, time.Minute, n.name+" to find its groups lost", func() bool {
		res.lost = n.metric(t, "j1ds_cluster_groups_lost_total") - lost0
		return res.lost > 0
	})
	if res.inFlight != "" {
		waitFor(t, time.Minute, n.name+" to have its late checkpoint write refused", func() bool {
			res.fenced = n.metric(t, "j1ds_cluster_fenced_writes_total") - fenced0
			return res.fenced > 0
		})
	} else {
		res.fenced = n.metric(t, "j1ds_cluster_fenced_writes_total") - fenced0
		t.Logf("%s exported no account with changes (%d accounts) when frozen: no upload in flight to fence", n.name, len(owned))
	}
	return res
}

// hasAccountPrefix reports whether an S3 request path (/bucket/key) is
// under the prefix of one of the accounts.
func hasAccountPrefix(path string, accounts []string) bool {
	for _, a := range accounts {
		if strings.HasPrefix(path, "/"+streamBucket+"/"+accountPrefix(a)) {
			return true
		}
	}
	return false
}

// uploads counts the objects stored under the account's prefix (every
// account's when empty) whose upload arrived at the proxy after since.
func uploads(p *locals3.Proxy, account string, since time.Time) int {
	n := 0
	for _, r := range p.Requests() {
		if (r.Op == "PutObject" || r.Op == "CompleteMultipartUpload") && r.Status == http.StatusOK && r.Time.After(since) &&
			strings.Contains(r.Path, "/jupiterone/graph/cdc/") && (account == "" || strings.Contains(r.Path, "/"+accountPrefix(account))) {
			n++
		}
	}
	return n
}

// firstUpload returns when the first upload of an object of account that
// was stored arrived at the proxy after since.
func firstUpload(p *locals3.Proxy, account string, since time.Time) (time.Time, bool) {
	for _, r := range p.Requests() {
		if (r.Op == "PutObject" || r.Op == "CompleteMultipartUpload") && r.Status == http.StatusOK && r.Time.After(since) &&
			strings.Contains(r.Path, "/"+accountPrefix(account)) {
			return r.Time, true
		}
	}
	return time.Time{}, false
}

// TestClusterAnyNode: a client may send each request to any node. A sync
// job created on node1, its uploads sent to node2 and its finalize to
// node3 finishes and is exported. Streaming disabled on a node that does
// not export the account stops it on the node that does, and enabled
// again on the third node starts it there again: the times this takes
// are logged. Changes made while it was disabled are not exported; the
// bucket holds the changes of both enabled periods exactly once.
func TestClusterAnyNode(t *testing.T) {
	t.Parallel()
	tc := startCluster(t, clusterOptions{nodes: 3})
	n1, n2, n3 := tc.nodes[0], tc.nodes[1], tc.nodes[2]
	const acc = "anynode"
	key := n1.account(t, acc, true)
	n2.enable(t, key, acc, streamBucket, s3Owner)

	const jobs = "/persister/synchronization/jobs"
	type jobAnswer struct {
		Job struct {
			ID                      string `json:"id"`
			Status                  string `json:"status"`
			NumEntitiesCreated      int    `json:"numEntitiesCreated"`
			NumRelationshipsCreated int    `json:"numRelationshipsCreated"`
		} `json:"job"`
	}
	var job jobAnswer
	decode(t, n1.must(t, http.StatusOK, "POST", jobs, key, map[string]any{"source": "integration-managed", "integrationInstanceId": "anynode-okta"}), &job)
	path := jobs + "/" + job.Job.ID
	var ents, rels []map[string]any
	for i := range 20 {
		ents = append(ents, entity(fmt.Sprintf("anynode-user-%03d", i), "okta_user", []string{"User"}, "email", fmt.Sprintf("user%d@example.com", i)))
	}
	for i := range 10 {
		rels = append(rels, map[string]any{"_key": fmt.Sprintf("anynode-user-%03d|knows|anynode-user-%03d", i, i+10),
			"_type": "okta_user_knows_user", "_class": "KNOWS",
			"_fromEntityKey": fmt.Sprintf("anynode-user-%03d", i), "_toEntityKey": fmt.Sprintf("anynode-user-%03d", i+10)})
	}
	jobStart := time.Now()
	n2.must(t, http.StatusOK, "POST", path+"/entities", key, map[string]any{"entities": ents})
	n2.must(t, http.StatusOK, "POST", path+"/relationships", key, map[string]any{"relationships": rels})
	n3.must(t, http.StatusOK, "POST", path+"/finalize", key, map[string]any{})
	waitFor(t, time.Minute, "the sync job to finish", func() bool {
		decode(t, n1.must(t, http.StatusOK, "GET", path, key, nil), &job)
		return job.Job.Status == "FINISHED"
	})
	if job.Job.NumEntitiesCreated != len(ents) || job.Job.NumRelationshipsCreated != len(rels) {
		t.Errorf("job created %d entities and %d relationships, want %d and %d", job.Job.NumEntitiesCreated, job.Job.NumRelationshipsCreated, len(ents), len(rels))
	}
	var st clusterStatus
	waitFor(t, time.Minute, "the job's changes to be exported", func() bool {
		st = n3.clusterStatus(t, key, acc)
		return st.Status.PendingSince == nil && st.Status.EventsExported >= int64(len(ents)+len(rels))
	})
	if st.Status.EventsExported != int64(len(ents)+len(rels)) {
		t.Fatalf("%d events exported, want %d", st.Status.EventsExported, len(ents)+len(rels))
	}
	jobTime := time.Since(jobStart)
	// The export node, as every status names it and as its exporter
	// counts.
	owner := tc.settledOwners(map[string]string{acc: key})[acc]
	ownerID := owner.nodeID(t)
	for _, n := range tc.nodes {
		if en := n.clusterStatus(t, key, acc).Status.ExportNode; en == nil || en.ID != ownerID || en.Name != owner.name {
			t.Errorf("%s's status on %s names export node %+v, want %s (%s)", acc, n.name, en, owner.name, ownerID)
		}
	}
	var others []*clusterNode
	for _, n := range tc.nodes {
		if n != owner {
			others = append(others, n)
		}
	}
	// Disabled on a node that does not export it.
	objects := len(tc.e.keys(t, streamBucket, accountPrefix(acc)))
	saved := time.Now()
	others[0].save(t, key, acc, false, streamBucket, s3Owner)
	waitFor(t, time.Minute, owner.name+" to stop exporting "+acc, func() bool {
		return owner.metric(t, "j1ds_cluster_owned_accounts") == 0
	})
	disableTook := time.Since(saved)
	// A change while disabled: not exported. (An object changed only
	// then would be missing from the bucket for good: the user is changed
	// again after re-enabling.)
	var list struct {
		Items []struct {
			ID string `json:"_id"`
		} `json:"items"`
	}
	decode(t, n1.must(t, http.StatusOK, "GET", "/api/v1/accounts/"+acc+"/entities?type=okta_user&limit=1", key, nil), &list)
	if len(list.Items) != 1 {
		t.Fatalf("no okta_user in %s", acc)
	}
	user := list.Items[0].ID
	others[1].patch(t, key, acc, "entities", user, map[string]any{"note": "changed while disabled"})
	time.Sleep(3 * flushInterval)
	if n := len(tc.e.keys(t, streamBucket, accountPrefix(acc))); n != objects {
		t.Errorf("%d objects after a change made while disabled, want %d (none exported)", n, objects)
	}

	// Enabled again on the third node: the export node picks it up.
	saved = time.Now()
	others[1].enable(t, key, acc, streamBucket, s3Owner)
	waitFor(t, time.Minute, owner.name+" to export "+acc+" again", func() bool {
		return owner.metric(t, "j1ds_cluster_owned_accounts") == 1
	})
	enableTook := time.Since(saved)
	committed := time.Now()
	others[0].patch(t, key, acc, "entities", user, map[string]any{"note": "changed after re-enabling"})
	waitFor(t, time.Minute, "the change after re-enabling to be exported", func() bool {
		return len(tc.e.keys(t, streamBucket, accountPrefix(acc))) > objects
	})
	at, _ := firstUpload(tc.e.proxy, acc, committed)
	st = n1.clusterStatus(t, key, acc)
	if st.Status.ExportNode == nil || st.Status.ExportNode.ID != ownerID || len(st.Status.Periods) != 2 {
		t.Errorf("status after re-enabling: export node %+v, %d periods; want %s and 2", st.Status.ExportNode, len(st.Status.Periods), owner.name)
	}

	tc.waitCaughtUp(time.Minute, map[string]string{acc: key})
	verifyClean(t, tc.e, n2.j1, streamBucket, acc, key)
	checkPeriodsAgainstLog(t, tc, acc)
	t.Logf("sync job created on %s, uploaded to %s, finalized on %s: finished and exported by %s in %s",
		n1.name, n2.name, n3.name, owner.name, jobTime.Round(10*time.Millisecond))
	t.Logf("disable saved on %s applied on %s in %s; enable saved on %s applied in %s; a change committed on %s reached S3 %s later (flush interval %s)",
		others[0].name, owner.name, disableTook.Round(time.Millisecond), others[1].name, enableTook.Round(time.Millisecond),
		others[0].name, at.Sub(committed).Round(time.Millisecond), flushInterval)
}

// checkPeriodsAgainstLog checks an account's bucket against the changes
// of its log made while streaming was enabled (each of its periods), as
// checkAgainstLog does.
func checkPeriodsAgainstLog(t *testing.T, tc *testCluster, account string) {
	t.Helper()
	ls := readLogStateSince(t, tc.cfg, account, true)
	var in []int
	for i, e := range ls.entries {
		for _, p := range ls.rec.Periods {
			if e.LSN > p.StartLSN && (p.EndLSN == 0 || e.LSN <= p.EndLSN) {
				in = append(in, i)
				break
			}
		}
	}
	if len(in) == len(ls.entries) {
		t.Errorf("%s: no change of its log was made while disabled; the test meant to make one", account)
	}
	entries := ls.entries
	ls.entries = nil
	for _, i := range in {
		ls.entries = append(ls.entries, entries[i])
	}
	checkAgainstLog(t, tc.e.objects(t, streamBucket, account), ls, account)
}

// TestClusterFailover: three nodes export a dozen accounts. The node that
// exports the most is SIGKILLed with changes of its accounts pending (S3
// refuses its uploads of them until it dies, so none can have left): the
// others see it dead and take its groups (GET /operator/v1/cluster lists
// it not live, and no group is left free), each of its accounts names a
// new export node, and the pending changes are exported; the time from
// SIGKILL to each account's first object is logged. Then a node with
// pending changes is stopped with SIGTERM: it exports them before it
// leaves, shows as leaving, and its groups go to the last node at once.
// Every bucket holds every change exactly once.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	const accounts = 12
	id := func(i int) string { return fmt.Sprintf("failover-%02d", i) }
	var keyList []string
	tc := startCluster(t, clusterOptions{nodes: 3, flush: 3 * time.Second, before: func(cfg serve.Config) {
		keyList = enableOffline(t, cfg, 0, accounts, id, func(int) (string, string) { return streamBucket, s3Owner })
	}})
	keys := map[string]string{}
	var ids []string
	for i := range accounts {
		keys[id(i)] = keyList[i]
		ids = append(ids, id(i))
	}
	change := func(n *clusterNode, a, name string) string {
		k := fmt.Sprintf("%s-%s", a, name)
		n.create(t, keys[a], a, "entities", entity(k, "test_user", []string{"User"}, "note", randomText(32)))
		return k
	}
	for i, a := range ids {
		change(tc.any(i), a, "first")
	}
	waitFor(t, time.Minute, "every account's first change to be exported", func() bool {
		for a, k := range keys {
			if st := tc.any(0).clusterStatus(t, k, a); st.Status.PendingSince != nil || st.Status.ObjectsExported == 0 {
				return false
			}
		}
		return true
	})

	// The victim: the node that exports the most accounts.
	byNode := map[*clusterNode][]string{}
	for a, o := range tc.settledOwners(keys) {
		byNode[o] = append(byNode[o], a)
	}
	var victim *clusterNode
	for n, as := range byNode {
		if victim == nil || len(as) > len(byNode[victim]) {
			victim = n
		}
	}
	victimID, victimAccounts := victim.nodeID(t), byNode[victim]
	slices.Sort(victimAccounts)
	var survivors []*clusterNode
	for _, n := range tc.up() {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	victimGroups := 0
	if nv, ok := tc.any(0).view(t).byID(victimID); ok {
		victimGroups = nv.Groups
	}
	takeovers := func() float64 {
		var sum float64
		for _, n := range survivors {
			sum += n.metric(t, "j1ds_cluster_takeovers_total")
		}
		return sum
	}
	takeovers0 := takeovers()

	// Its accounts change (on another node); their uploads are refused
	// until it is dead.
	refused := time.Now()
	tc.e.proxy.SetFault(locals3.Fault{Status: http.StatusServiceUnavailable, Count: -1, Match: func(r *http.Request) bool {
		return hasAccountPrefix(r.URL.Path, victimAccounts)
	}})
	pending := map[string]string{}
	for _, a := range victimAccounts {
		pending[a] = change(survivors[0], a, "pending")
	}
	// Made on another node, the changes reach the victim's exporter by
	// notification.
	waitFor(t, time.Minute, victim.name+" to hear of the changes", func() bool {
		for _, a := range victimAccounts {
			if victim.clusterStatus(t, keys[a], a).Status.PendingSince == nil {
				return false
			}
		}
		return true
	})
	killed := time.Now()
	tc.kill(victim)
	tc.e.proxy.SetFault(locals3.Fault{})
	for _, a := range victimAccounts {
		if n := uploads(tc.e.proxy, a, refused); n != 0 {
			t.Fatalf("%s: %d objects stored while its uploads were refused", a, n)
		}
	}

	var v clusterView
	waitFor(t, 2*time.Minute, "the other nodes to take the dead node's groups", func() bool {
		v = survivors[0].view(t)
		nv, ok := v.byID(victimID)
		return ok && !nv.Live && v.FreeGroups == 0
	})
	handover := time.Since(killed)
	if nv, _ := v.byID(victimID); nv.Groups != 0 || nv.Leaving {
		t.Errorf("the dead node as listed: %+v; want no group and not leaving (it did not leave, it died)", nv)
	}
	held := 0
	for _, n := range v.live() {
		held += n.Groups
	}
	if held != v.Groups || len(v.live()) != 2 {
		t.Errorf("after the handover: %s; want two live nodes holding all %d groups", v, v.Groups)
	}
	survivorIDs := map[string]string{}
	for _, n := range survivors {
		survivorIDs[n.nodeID(t)] = n.name
	}
	var firsts []string
	for _, a := range victimAccounts {
		waitFor(t, time.Minute, a+" to name a new export node", func() bool {
			en := survivors[1].clusterStatus(t, keys[a], a).Status.ExportNode
			return en != nil && survivorIDs[en.ID] != ""
		})
		var at time.Time
		waitFor(t, 2*time.Minute, a+"'s pending change to be exported by its new node", func() bool {
			var ok bool
			at, ok = firstUpload(tc.e.proxy, a, killed)
			return ok
		})
		firsts = append(firsts, fmt.Sprintf("%s %.2fs", a, at.Sub(killed).Seconds()))
	}
	claimedAt, claimed := lastClaim(survivors, killed, true)
	if got := takeovers() - takeovers0; got < float64(victimGroups) {
		t.Errorf("the survivors counted %.0f takeovers, want at least the %d groups of the dead node", got, victimGroups)
	}
	tc.waitBalanced(time.Minute, 2)
	t.Logf("SIGKILL of %s (%d groups, %d accounts with pending changes): the others claimed %d groups from it, the last %.2fs after the SIGKILL (their logs), and GET /operator/v1/cluster showed no free group %.2fs after it (lease %gs); first object after SIGKILL: %s",
		victim.name, victimGroups, len(victimAccounts), claimed, claimedAt.Sub(killed).Seconds(), handover.Seconds(), v.LeaseTTLSeconds, strings.Join(firsts, ", "))
	tc.waitCaughtUp(time.Minute, keys)

	// SIGTERM of the survivor that exports more, with pending changes.
	byNode = map[*clusterNode][]string{}
	for a, o := range tc.settledOwners(keys) {
		byNode[o] = append(byNode[o], a)
	}
	leaver, last := survivors[0], survivors[1]
	if len(byNode[last]) > len(byNode[leaver]) {
		leaver, last = last, leaver
	}
	leaverID, leaverAccounts := leaver.nodeID(t), byNode[leaver]
	slices.Sort(leaverAccounts)
	for _, a := range leaverAccounts {
		pending[a] = change(last, a, "before-sigterm")
	}
	termed := time.Now()
	tc.term(leaver)
	stopped := time.Since(termed)
	exported := exportedKeys(leaver.stderr.String())
	for _, a := range leaverAccounts {
		found := false
		for _, k := range tc.e.keys(t, streamBucket, accountPrefix(a)) {
			if bytes.Contains(bytes.Join(tc.e.get(t, streamBucket, k).Lines, nil), []byte(`"`+pending[a]+`"`)) {
				found = true
				if !exported[k] {
					t.Errorf("%s: the change made before the SIGTERM is in %s, which %s did not export", a, k, leaver.name)
				}
			}
		}
		if !found {
			t.Errorf("%s: the change made before %s's SIGTERM is not in the bucket when it has exited", a, leaver.name)
		}
	}
	waitFor(t, time.Minute, "the last node to hold every group", func() bool {
		v = last.view(t)
		return v.balanced(1)
	})
	handover = time.Since(termed) - stopped
	if nv, ok := v.byID(leaverID); !ok || !nv.Leaving || nv.Live {
		t.Errorf("the node that left as listed: %+v (listed %v); want leaving and not live", nv, ok)
	}
	left := logLines(leaver.stderr.String(), "left the cluster")
	if len(left) != 1 {
		t.Fatalf("%s's log says %d times that it left the cluster, want once", leaver.name, len(left))
	}
	claimedAt, claimed = lastClaim([]*clusterNode{last}, left[0].Time, false)
	t.Logf("SIGTERM of %s (%d accounts with pending changes): exited %.2fs later after exporting them; %s claimed its %d groups %.3fs after it left (their logs) and GET /operator/v1/cluster showed it holding every group %.3fs after the exit",
		leaver.name, len(leaverAccounts), stopped.Seconds(), last.name, claimed, claimedAt.Sub(left[0].Time).Seconds(), handover.Seconds())

	tc.waitCaughtUp(time.Minute, keys)
	for _, a := range ids {
		if en := last.clusterStatus(t, keys[a], a).Status.ExportNode; en == nil || en.Name != last.name {
			t.Errorf("%s: export node %+v, want %s", a, en, last.name)
		}
	}
	for _, a := range append(slices.Clone(victimAccounts), leaverAccounts...) {
		verifyClean(t, tc.e, last.j1, streamBucket, a, keys[a])
	}
	tc.checkExactlyOnce(ids)
}

// exportedKeys returns the keys of the objects a j1ds's JSON log says it
// exported.
func exportedKeys(log string) map[string]bool {
	out := map[string]bool{}
	for _, l := range logLines(log, "object exported") {
		out[l.Key] = true
	}
	return out
}

// logLine is a line of a j1ds's JSON log, as far as these tests read it.
type logLine struct {
	Time          time.Time `json:"time"`
	Msg           string    `json:"msg"`
	Key           string    `json:"key"`
	Groups        int       `json:"groups"`
	FromDeadNodes int       `json:"from_dead_nodes"`
}

// logLines returns the lines of a j1ds's JSON log whose message is msg or
// starts with msg and a colon.
func logLines(log, msg string) []logLine {
	var out []logLine
	for l := range strings.Lines(log) {
		var line logLine
		if json.Unmarshal([]byte(l), &line) == nil && (line.Msg == msg || strings.HasPrefix(line.Msg, msg+":")) {
			out = append(out, line)
		}
	}
	return out
}

// lastClaim returns when the last of the nodes' claims after since was
// logged, counting only claims from dead nodes when dead, and how many
// groups they claimed.
func lastClaim(nodes []*clusterNode, since time.Time, dead bool) (time.Time, int) {
	var last time.Time
	groups := 0
	for _, n := range nodes {
		for _, l := range logLines(n.stderr.String(), "claimed export groups") {
			if l.Time.After(since) && (!dead || l.FromDeadNodes > 0) {
				groups += l.Groups
				if l.Time.After(last) {
					last = l.Time
				}
			}
		}
	}
	return last, groups
}

// TestClusterJoin: a fourth node joins three that export 32 accounts under
// steady writes: the groups spread over four nodes without restarting the
// others, the new node exports the accounts of its groups, each account's
// status names the node that exports it, and every change is in the
// bucket exactly once.
func TestClusterJoin(t *testing.T) {
	t.Parallel()
	const accounts = 32
	id := func(i int) string { return fmt.Sprintf("join-%02d", i) }
	var keyList []string
	tc := startCluster(t, clusterOptions{nodes: 3, before: func(cfg serve.Config) {
		keyList = enableOffline(t, cfg, 0, accounts, id, func(int) (string, string) { return streamBucket, s3Owner })
	}})
	keys := map[string]string{}
	var ids []string
	for i := range accounts {
		keys[id(i)] = keyList[i]
		ids = append(ids, id(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stopWriters := sync.OnceFunc(func() { cancel(); wg.Wait() })
	t.Cleanup(stopWriters)
	var loads []*restLoad
	for k := range 2 {
		w := newRESTLoad(t, fmt.Sprintf("w%d", k), tc.newRoute(), append(slices.Clone(ids[k*accounts/2:]), ids[:k*accounts/2]...), keys, 30*time.Millisecond)
		loads = append(loads, w)
		wg.Go(func() { w.run(ctx) })
	}
	waitFor(t, time.Minute, "writes and exports", func() bool {
		return loads[0].writes.Load() > 20 && loads[1].writes.Load() > 20 && uploads(tc.e.proxy, "", time.Time{}) > 5
	})
	var lost0 float64
	for _, n := range tc.nodes {
		lost0 += n.metric(t, "j1ds_cluster_groups_lost_total")
	}

	joined := time.Now()
	n4 := tc.add("node4")
	started := time.Since(joined)
	tc.waitBalanced(time.Minute, 4)
	balanced := time.Since(joined)
	// Every account names a live export node, and each node exports as
	// many accounts as name it.
	counts := map[string]int{}
	for _, o := range tc.settledOwners(keys) {
		counts[o.name]++
	}
	if counts[n4.name] > 0 {
		waitFor(t, time.Minute, n4.name+" to export objects", func() bool {
			return n4.metric(t, "j1ds_export_objects_total") > 0
		})
	} else {
		t.Logf("none of the %d accounts falls in %s's groups", accounts, n4.name)
	}
	waitFor(t, time.Minute, "more writes after the join", func() bool {
		return loads[0].writes.Load()+loads[1].writes.Load() > 100
	})
	stopWriters()
	tc.waitCaughtUp(2*time.Minute, keys)
	checkAcked(t, n4, keys, loads...)
	tc.checkExactlyOnce(ids)
	var lost float64
	for _, n := range tc.nodes[:3] {
		lost += n.metric(t, "j1ds_cluster_groups_lost_total")
	}
	t.Logf("node4 joined (listening %.2fs after its start); four nodes shared the groups %.2fs after its start; accounts per node %v; groups lost by the first three during the join: %.0f; writes %d",
		started.Seconds(), balanced.Seconds(), counts, lost-lost0, loads[0].writes.Load()+loads[1].writes.Load())
}

// TestClusterFinalizeTakeover: a sync job's finalize is sent to a node that
// dies after its first chunk of objects is committed (SIGKILL by the crash
// build's sync-after-chunk failpoint). The other node takes the job over
// from its saved progress once the dead node's lease has ended: the job
// finishes with every object created once (its counts add up, each chunk
// applied once), and the account's bucket holds every change of its log
// exactly once. The time from the death to the finished job is logged.
func TestClusterFinalizeTakeover(t *testing.T) {
	t.Parallel()
	const acc = "takeover"
	var key string
	tc := startCluster(t, clusterOptions{nodes: 1, before: func(cfg serve.Config) {
		key = enableOffline(t, cfg, 0, 1, func(int) string { return acc }, func(int) (string, string) { return streamBucket, s3Owner })[0]
	}})
	n1 := tc.nodes[0]
	n2 := tc.addNode("node2", tc.spawnBuild(crashBuild, "node2", "J1DS_FAILPOINT=sync-after-chunk:1"))
	tc.waitBalanced(time.Minute, 2)

	const jobs, entities = "/persister/synchronization/jobs", 1200 // three chunks of at most 500
	var job struct {
		Job struct {
			ID                 string `json:"id"`
			Status             string `json:"status"`
			NumEntitiesCreated int    `json:"numEntitiesCreated"`
		} `json:"job"`
	}
	decode(t, n1.must(t, http.StatusOK, "POST", jobs, key, map[string]any{"source": "integration-managed", "integrationInstanceId": "takeover-okta"}), &job)
	path := jobs + "/" + job.Job.ID
	var ents []map[string]any
	for i := range entities {
		ents = append(ents, entity(fmt.Sprintf("takeover-user-%04d", i), "okta_user", []string{"User"}, "email", fmt.Sprintf("user%d@example.com", i)))
	}
	n1.must(t, http.StatusOK, "POST", path+"/entities", key, map[string]any{"entities": ents})
	if code, b, err := rawCall(n2.j1, "POST", path+"/finalize", key, map[string]any{}); err == nil {
		t.Fatalf("the finalize on %s was answered (%d %s): its failpoint did not fire", n2.name, code, b)
	}
	tc.died(n2)
	died := time.Now()
	waitFor(t, time.Minute, n1.name+" to take the job over and finish it", func() bool {
		decode(t, n1.must(t, http.StatusOK, "GET", path, key, nil), &job)
		return job.Job.Status == "FINISHED"
	})
	finished := time.Since(died)
	if job.Job.NumEntitiesCreated != entities {
		t.Errorf("the job created %d entities, want %d", job.Job.NumEntitiesCreated, entities)
	}
	tc.waitCaughtUp(time.Minute, map[string]string{acc: key})
	st := n1.clusterStatus(t, key, acc)
	if st.Status.EventsExported != entities {
		t.Errorf("%d events exported, want %d", st.Status.EventsExported, entities)
	}
	verifyClean(t, tc.e, n1.j1, streamBucket, acc, key)
	tc.checkExactlyOnce([]string{acc})
	t.Logf("%s died after the first chunk of the finalize; %s finished the job %.2fs later (lease 6s)", n2.name, n1.name, finished.Seconds())
}
