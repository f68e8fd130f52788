package e2e

// The data-streaming entitlement gates streaming through the real exporter
// and versitygw: removing it stops the export at once, a restart after a
// crash between the entitlement's write and the stop does not resume it,
// and, in cluster mode, removing it through one node stops the export of
// another. The audit log of these runs is checked too: its events, the
// per-job limit of a sync job's lines, and no secret anywhere in it.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/audit"
	"github.com/j1ds/j1ds/internal/settings"
)

// logRecords returns the records of a JSON log whose msg is msg.
func logRecords(t *testing.T, logs *testLog, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			continue // a line another writer cut (none expected)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// auditEvents returns "event actor" of the audit records of account, in
// order, the actor shown as KEY when it is a key id.
func auditEvents(t *testing.T, logs *testLog, account string) []string {
	t.Helper()
	var out []string
	for _, m := range logRecords(t, logs, "audit") {
		if m["account"] != account {
			continue
		}
		actor, _ := m["actor"].(string)
		if len(actor) == 12 && actor != audit.ActorOperator {
			actor = "KEY"
		}
		out = append(out, fmt.Sprintf("%s %s", m["event"], actor))
	}
	return out
}

// stoppedView is what the tests read of a stopped stream's settings.
type stoppedView struct {
	Enabled  bool `json:"enabled"`
	Entitled bool `json:"entitled"`
	Status   struct {
		Enabled   bool              `json:"enabled"`
		LastError *problem          `json:"lastError"`
		Periods   []settings.Period `json:"periods"`
	} `json:"status"`
}

// wantStopped checks that the account's stream shows stopped for want of
// the entitlement, as its administrator reads it.
func wantStopped(t *testing.T, j *j1, key, account string) {
	t.Helper()
	var v stoppedView
	decode(t, j.must(t, http.StatusOK, "GET", streamingPath(account), key, nil), &v)
	if v.Enabled || v.Status.Enabled || v.Entitled {
		t.Fatalf("%s: %+v, want disabled and not entitled", account, v)
	}
	if p := v.Status.LastError; p == nil || p.Code != settings.CodeEntitlementRemoved || !strings.Contains(p.Message, "entitlement was removed") {
		t.Fatalf("%s: last error %+v, want %s", account, p, settings.CodeEntitlementRemoved)
	}
	if n := len(v.Status.Periods); n == 0 || v.Status.Periods[n-1].EndReason != settings.ReasonEntitlementRemoved || v.Status.Periods[n-1].EndAt.IsZero() {
		t.Fatalf("%s: periods %+v, want the last ended for want of the entitlement", account, v.Status.Periods)
	}
}

// TestEntitlementGatesStreaming: the operator removes the entitlement of a
// streaming account: its status shows it stopped with the reason at once,
// changes made after it are never exported, its administrator can read
// and disable but not enable. Then j1ds is stopped, another streaming
// account loses its entitlement in the store alone (the process died
// between that write and the stop) and j1ds restarts: that account is not
// exported either, and shows stopped. A sync job's repeated events are
// logged at most the per-job budget, and no secret is ever logged.
func TestEntitlementGatesStreaming(t *testing.T) {
	t.Parallel()
	onBackends(t, testEntitlementGatesStreaming)
}

func testEntitlementGatesStreaming(t *testing.T, bk backend) {
	e := startS3(t, "")
	cfg := bk.config(t, e)
	cfg.ExportWorkers = 1 // for the beacon
	cfg.AuditJobEventsPerMinute = 5
	if bk == pebbleBackend {
		if err := os.Chmod(cfg.Data, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	j, logs := startServeLogged(t, cfg)
	b := newBeacon(t, e, j)
	key := j.account(t, "acme", true)
	crashKey := j.account(t, "crash", true)
	j.enable(t, key, "acme", streamBucket, s3Owner)
	j.enable(t, crashKey, "crash", streamBucket, s3Owner)
	first := j.create(t, key, "acme", "entities", entity("acme-user-first", "test_user", []string{"User"}, "name", "First"))
	j.create(t, crashKey, "crash", "entities", entity("crash-user-first", "test_user", []string{"User"}, "name", "First"))
	waitExported(t, j, key, "acme", 1)
	waitExported(t, j, crashKey, "crash", 1)

	// The operator removes acme's entitlement.
	n := len(exportRequests(e.proxy, "acme"))
	j.must(t, http.StatusOK, "PUT", "/operator/v1/accounts/acme/entitlements", j.opKey, map[string]any{"entitlements": []string{}})
	wantStopped(t, j, key, "acme")
	j.create(t, key, "acme", "entities", entity("acme-user-after", "test_user", []string{"User"}, "name", "After"))
	// A change of acme would be due a flush interval after its commit;
	// the beacon's changes pass every flush due within two and a half.
	b.passBeyond(t, time.Now().Add(2*flushInterval+flushInterval/2))
	if r := exportRequests(e.proxy, "acme"); len(r) != n {
		t.Fatalf("%d export requests of acme after its entitlement was removed, want none: %+v", len(r)-n, r[n:])
	}
	objs := e.objects(t, streamBucket, "acme")
	if len(objs) != 1 {
		t.Fatalf("%d objects of acme, want the one before the removal", len(objs))
	}
	compareRecords(t, "before the removal", objs[0].Lines, []write{first})

	// Its administrator can disable, not enable, test or retarget.
	code, body := j.call(t, "PUT", streamingPath("acme"), key, map[string]any{"enabled": true, "bucketName": streamBucket, "awsAccountId": s3Owner, "regionConfirmed": true})
	if code != http.StatusForbidden || !strings.Contains(string(body), `"NOT_ENTITLED"`) || !strings.Contains(string(body), "ask your JupiterOne operator") {
		t.Fatalf("enable without the entitlement: %d %s, want 403 NOT_ENTITLED saying what to do", code, body)
	}
	code, body = j.call(t, "POST", streamingPath("acme")+"/test-connection", key, map[string]any{"bucketName": streamBucket, "awsAccountId": s3Owner, "regionConfirmed": true})
	if code != http.StatusForbidden || !strings.Contains(string(body), `"NOT_ENTITLED"`) {
		t.Fatalf("test connection without the entitlement: %d %s, want 403 NOT_ENTITLED", code, body)
	}
	j.save(t, key, "acme", false, streamBucket, s3Owner)

	// A sync job's events, repeated, are logged within its budget.
	var job struct{ Job struct{ ID string } }
	decode(t, j.must(t, http.StatusOK, "POST", "/persister/synchronization/jobs", key, map[string]any{"source": "api", "scope": "audit"}), &job)
	for i := range 40 {
		j.must(t, http.StatusOK, "POST", "/persister/synchronization/jobs/"+job.Job.ID+"/events", key,
			map[string]any{"events": []map[string]any{{"name": "step", "description": fmt.Sprint("event ", i)}}})
	}

	// j1ds stops; crash's entitlement is removed in the store alone, as
	// if the process had died right after that write.
	j.stop()
	store := openStore(t, cfg)
	if _, err := store.accounts.SetEntitlements("crash", []string{}); err != nil {
		t.Fatal(err)
	}
	if err := store.close(); err != nil {
		t.Fatal(err)
	}
	m := len(exportRequests(e.proxy, "crash"))
	j2, logs2 := startServeLogged(t, cfg)
	b2 := &beacon{j: j2, key: b.key, changes: b.changes}
	j2.create(t, crashKey, "crash", "entities", entity("crash-user-after", "test_user", []string{"User"}, "name", "After"))
	b2.passBeyond(t, time.Now().Add(2*flushInterval+flushInterval/2))
	if r := exportRequests(e.proxy, "crash"); len(r) != m {
		t.Fatalf("%d export requests of crash after the restart, want none: %+v", len(r)-m, r[m:])
	}
	wantStopped(t, j2, crashKey, "crash")
	j2.stop()

	// The audit log.
	for _, c := range []struct {
		logs    *testLog
		account string
		want    []string
	}{
		{logs, "acme", []string{
			"account.created operator", "key.created operator", "settings.enabled KEY",
			"entitlements.changed operator", "settings.disabled operator", "settings.saved KEY", "job.created KEY",
		}},
		{logs2, "crash", []string{"settings.disabled exporter"}},
	} {
		if got := auditEvents(t, c.logs, c.account); strings.Join(got, ", ") != strings.Join(c.want, ", ") {
			t.Errorf("audit events of %s: %q, want %q", c.account, got, c.want)
		}
	}
	var jobLines int
	for _, m := range logRecords(t, logs, "job event") {
		if m["job"] == job.Job.ID {
			jobLines++
		}
	}
	limited := 0
	for _, m := range logRecords(t, logs, "audit") {
		if m["event"] == "audit.rate_limited" && m["job"] == job.Job.ID {
			limited++
		}
	}
	// The job's budget of 5 a minute: job.created and 4 events, or, if a
	// minute began meanwhile, at most twice that.
	if jobLines < 4 || jobLines > 9 || limited < 1 || limited > 2 {
		t.Errorf("40 events of one job: %d logged, %d rate-limit notices; want at most the budget of 5 a minute (job.created counts)", jobLines, limited)
	}
	for _, secret := range []string{key, crashKey, b.key, cfg.OperatorKey} {
		if strings.Contains(logs.String(), secret) || strings.Contains(logs2.String(), secret) {
			t.Fatal("the log holds a secret")
		}
	}
}
