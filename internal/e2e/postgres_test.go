package e2e

// PostgreSQL itself going away under a running j1ds (serve --store): the
// database is restarted as after a crash, then stopped for a while, and
// started again, while writers and exports go on.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// TestPostgresRestart: while a REST writer and a synth writer keep
// changing two streaming accounts, PostgreSQL is restarted in immediate
// mode (as after a crash of the database), then stopped for a few
// seconds and started again. j1ds is never restarted. While the database
// is down, /readyz answers 503 NOT_READY saying it is unreachable, API
// calls answer 503 DATABASE_UNAVAILABLE, and the process goes on
// (/healthz). After each outage writes and exports resume by themselves.
// At the end no acknowledged write is missing from the graph, every sync
// job finished, each account's status shows no error and no gap, j1ds
// verify --compare is clean, and each bucket equals its account's log.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	srv, dbURL := localpg.Own(t) // its own server, to stop: the shared one stays up
	e := startS3(t, "")
	cfg := streamConfig(t, e)
	usePostgres(t, &cfg, dbURL)
	j := startServe(t, cfg)
	const accREST, accSynth = "pgrestart-rest", "pgrestart-synth"
	keys := map[string]string{accREST: j.account(t, accREST, true), accSynth: j.account(t, accSynth, true)}
	for a, k := range keys {
		j.enable(t, k, a, streamBucket, s3Owner)
	}

	live := &liveURL{}
	live.set(j.url)
	wctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { stop(); wg.Wait() }) }
	t.Cleanup(stopWriters)
	rest := &restWriter{t: t, c: newRobustClient(live), account: accREST, key: keys[accREST], acked: map[string]int{}}
	sw := &synthWriter{t: t, live: live, account: accSynth, key: keys[accSynth], entities: 200}
	wg.Go(func() { rest.run(wctx) })
	wg.Go(func() { sw.run(wctx) })

	// progress waits until both writers have written again and both
	// accounts have exported again since it was called.
	progress := func(what string) {
		t.Helper()
		writes, jobs := rest.writes.Load(), sw.jobs.Load()
		exported := map[string]int64{}
		for a, k := range keys {
			exported[a] = j.matrixStatus(t, k, a).Status.ObjectsExported
		}
		waitFor(t, 2*time.Minute, "writes and exports "+what, func() bool {
			if rest.writes.Load() < writes+10 || sw.jobs.Load() < jobs+1 {
				return false
			}
			for a, k := range keys {
				if j.matrixStatus(t, k, a).Status.ObjectsExported <= exported[a] {
					return false
				}
			}
			return true
		})
	}
	progress("before the database goes away")

	// An immediate restart, as a crash of the database, under load.
	if err := srv.Restart("immediate"); err != nil {
		t.Fatal(err)
	}
	progress("after PostgreSQL restarted")

	// An outage of a few seconds: what the operator sees.
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	code, b := j.call(t, "GET", "/readyz", "", nil)
	var eb struct{ Error problem }
	if json.Unmarshal(b, &eb) != nil || code != http.StatusServiceUnavailable || eb.Error.Code != "NOT_READY" || !strings.Contains(eb.Error.Message, "database is unreachable") {
		t.Errorf("readyz while PostgreSQL is down: %d %s, want 503 NOT_READY saying the database is unreachable", code, b)
	}
	code, b = j.call(t, "GET", "/api/v1/accounts/"+accREST+"/entities", keys[accREST], nil)
	eb.Error = problem{}
	if json.Unmarshal(b, &eb) != nil || code != http.StatusServiceUnavailable || eb.Error.Code != "DATABASE_UNAVAILABLE" {
		t.Errorf("a read while PostgreSQL is down: %d %s, want 503 DATABASE_UNAVAILABLE", code, b)
	}
	time.Sleep(2 * time.Second) // the writers retry meanwhile
	if code, b := j.call(t, "GET", "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz while PostgreSQL is down: %d %s: the process must go on", code, b)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "readyz after PostgreSQL is back", func() bool {
		code, _ := j.call(t, "GET", "/readyz", "", nil)
		return code == http.StatusOK
	})
	progress("after PostgreSQL came back")

	stopWriters()
	waitCaughtUp(t, j, 3*time.Minute, keys)

	// Every acknowledged write is in the graph.
	parallel(len(rest.ackedIDs()), func(i int) {
		id := rest.ackedIDs()[i]
		code, b := j.call(t, "GET", "/api/v1/accounts/"+accREST+"/entities/"+id, keys[accREST], nil)
		var o struct {
			Version int `json:"_version"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &o) != nil || o.Version < rest.ackedVersion(id) {
			t.Errorf("acknowledged version %d of %s, the graph has %d %s", rest.ackedVersion(id), id, code, b)
		}
	})
	var reports []string
	for a, k := range keys {
		st := j.matrixStatus(t, k, a)
		if st.Status.LastError != nil || st.Status.Failures != 0 || len(st.Status.Gaps) != 0 {
			t.Errorf("%s after the outages: last error %+v, %d failures, gaps %+v; want none", a, st.Status.LastError, st.Status.Failures, st.Status.Gaps)
		}
		rep := verifyClean(t, e, j, streamBucket, a, k)
		reports = append(reports, fmt.Sprintf("%s: %d objects, %d records, compare %d matching", a, rep.Objects, rep.Records.Total, rep.Compare.Matching))
	}
	j.stop()
	for a := range keys {
		checkAgainstLog(t, e.objects(t, streamBucket, a), readLogState(t, cfg, a), a)
	}
	t.Logf("writes acknowledged: %s %d; %s: %d sync jobs finished, %d attempts failed", accREST, rest.writes.Load(), accSynth, sw.jobs.Load(), sw.retries.Load())
	t.Logf("verify clean: %s", strings.Join(reports, "; "))
}
