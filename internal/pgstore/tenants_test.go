package pgstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/syncjobs"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// What the conformance suites of accounts, jobs and settings cannot see
// through the interfaces: the stored rows, the schema's keys, staging read
// in pages, and locks that hold across processes.

// tenantTables are the tables of schema/002_tenants.sql.
var tenantTables = []string{
	"accounts", "api_keys", "api_key_hashes", "sync_jobs", "sync_job_events",
	"sync_job_staging", "streaming_settings", "stream_states",
}

// TestTenantKeysStartWithAccount pins the rule of the schema: every
// primary key and index of the tenant tables starts with the account id,
// in the "C" collation, except the key of the hash lookup table.
func TestTenantKeysStartWithAccount(t *testing.T) {
	_, url := localpg.Shared(t)
	s, _ := reopenable(t, url, pgstore.Options{})
	ctx := context.Background()
	rows, err := s.Pool().Query(ctx, `SELECT c.relname, i.relname, a.attname, coalesce(co.collname, '')
		FROM pg_index x
		JOIN pg_class c ON c.oid = x.indrelid
		JOIN pg_class i ON i.oid = x.indexrelid
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		WHERE c.relname = ANY($1)
		ORDER BY c.relname, i.relname`, tenantTables)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got strings.Builder
	for rows.Next() {
		var table, index, column, collation string
		if err := rows.Scan(&table, &index, &column, &collation); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&got, "%s %s: %s %s\n", table, index, column, collation)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := `accounts accounts_pkey: account C
api_key_hashes api_key_hashes_pkey: hash 
api_keys api_keys_pkey: account C
stream_states stream_states_enabled: account C
stream_states stream_states_pkey: account C
streaming_settings streaming_settings_pkey: account C
sync_job_events sync_job_events_pkey: account C
sync_job_staging sync_job_staging_pkey: account C
sync_jobs sync_jobs_finalizing: account C
sync_jobs sync_jobs_open: account C
sync_jobs sync_jobs_pkey: account C
sync_jobs sync_jobs_touched: account C
`
	if got.String() != want {
		t.Errorf("first column of each index:\n%s\nwant:\n%s", got.String(), want)
	}
}

// TestAccountsRows pins the rows of an account and a key, byte for byte,
// that the secret is stored only hashed, and that revoking a key deletes
// its hash.
func TestAccountsRows(t *testing.T) {
	_, url := localpg.Shared(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, reopen := reopenable(t, url, pgstore.Options{Now: func() time.Time { return at }})
	a := s.Accounts()
	if _, err := a.CreateAccount("acme", []string{accounts.EntitlementDataStreaming}); err != nil {
		t.Fatal(err)
	}
	secret, k, err := a.CreateKey("acme", accounts.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	sum := accounts.HashSecret(secret)
	show := func(b []byte) string {
		b = bytes.ReplaceAll(b, sum[:], []byte("<sha256(secret)>"))
		return string(bytes.ReplaceAll(b, []byte(k.ID), []byte("<key id>")))
	}
	dump := func(s *pgstore.Store) string {
		t.Helper()
		var b strings.Builder
		body := []byte(strings.TrimPrefix(secret, accounts.SecretPrefix))
		for _, q := range []string{
			"SELECT 'accounts', account, convert_to('', 'UTF8'), record FROM accounts ORDER BY account",
			"SELECT 'api_keys', account, convert_to(key_id, 'UTF8') || ' ' || hash, record FROM api_keys ORDER BY account, key_id",
			"SELECT 'api_key_hashes', account, hash, convert_to(key_id, 'UTF8') FROM api_key_hashes ORDER BY hash",
		} {
			rows, err := s.Pool().Query(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var table, account string
				var x, y []byte
				if err := rows.Scan(&table, &account, &x, &y); err != nil {
					t.Fatal(err)
				}
				// Neither the secret nor its random part is stored.
				if bytes.Contains(x, body) || bytes.Contains(y, body) {
					t.Errorf("secret stored in %s", table)
				}
				fmt.Fprintf(&b, "%s %s %s -> %s\n", table, account, show(x), show(y))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			rows.Close()
		}
		return b.String()
	}
	want := `accounts acme  -> {"id":"acme","entitlements":["data-streaming"],"createdAt":"2026-01-02T03:04:05Z"}
api_keys acme <key id> <sha256(secret)> -> {"id":"<key id>","accountId":"acme","role":"admin","createdAt":"2026-01-02T03:04:05Z"}
api_key_hashes acme <sha256(secret)> -> <key id>
`
	if got := dump(s); got != want {
		t.Errorf("rows:\n%s\nwant:\n%s", got, want)
	}

	s = reopen()
	if got, err := s.Accounts().Authenticate(secret); err != nil || !reflect.DeepEqual(got, k) {
		t.Errorf("after reopen: Authenticate = %+v, %v; want %+v", got, err, k)
	}
	if err := s.Accounts().RevokeKey("acme", k.ID); err != nil {
		t.Fatal(err)
	}
	want = `accounts acme  -> {"id":"acme","entitlements":["data-streaming"],"createdAt":"2026-01-02T03:04:05Z"}
`
	if got := dump(s); got != want {
		t.Errorf("rows after revoke:\n%s\nwant:\n%s", got, want)
	}
}

// TestScanStagedPages stages more objects than one page of ScanStaged
// holds and reads them whole, from positions on either side of a page's
// end, and stopped early; staging is the account's.
func TestScanStagedPages(t *testing.T) {
	_, url := localpg.Shared(t)
	s, _ := reopenable(t, url, pgstore.Options{})
	js := s.Jobs()
	const n = 1300
	j := &syncjobs.Job{ID: "job-1", AccountID: "acct", Status: syncjobs.StatusAwaitingUploads}
	var objs []syncjobs.StagedObject
	var ids []string
	for i := n - 1; i >= 0; i-- {
		id := fmt.Sprintf("id-%05d", i)
		objs = append(objs, syncjobs.StagedObject{Kind: graph.KindEntity, ID: id, Data: []byte("d" + id)})
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if err := js.Stage(j, objs, func([]bool, syncjobs.Usage) error { return nil }); err != nil {
		t.Fatal(err)
	}
	scan := func(account, after string, stopAt int) ([]string, error) {
		var got []string
		err := js.ScanStaged(account, "job-1", graph.KindEntity, after, func(id string, data []byte) error {
			if string(data) != "d"+id {
				return fmt.Errorf("%s holds %q", id, data)
			}
			if len(got) == stopAt {
				return errStop
			}
			got = append(got, id)
			return nil
		})
		return got, err
	}
	for _, c := range []struct {
		after string
		from  int // index in ids of the first id read
	}{{"", 0}, {ids[510], 511}, {ids[511], 512}, {ids[512], 513}, {ids[n-2], n - 1}, {ids[n-1], n}} {
		got, err := scan("acct", c.after, -1)
		if err != nil || !slices.Equal(got, ids[c.from:]) {
			t.Errorf("ScanStaged after %q: %d ids from %v, %v; want %d from %v", c.after, len(got), first(got), err, n-c.from, first(ids[c.from:]))
		}
	}
	if got, err := scan("acct", "", 700); !errors.Is(err, errStop) || !slices.Equal(got, ids[:700]) {
		t.Errorf("ScanStaged stopped at 700: %d ids, %v", len(got), err)
	}
	if got, err := scan("other", "", -1); err != nil || len(got) != 0 {
		t.Errorf("ScanStaged of another account: %d ids, %v; want none", len(got), err)
	}
	if _, ok, err := js.Staged("other", "job-1", graph.KindEntity, ids[0]); ok || err != nil {
		t.Errorf("Staged of another account: %v, %v; want none", ok, err)
	}
}

var errStop = errors.New("stop")

func first(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return ids[0]
}

// TestSettingsLockAcrossStores runs read-modify-writes of one account
// through two stores on one database, as two processes would: each write
// is kept, from the account's first write on.
func TestSettingsLockAcrossStores(t *testing.T) {
	_, url := localpg.Shared(t)
	s1, _ := reopenable(t, url, pgstore.Options{})
	s2, _ := reopenable(t, url, pgstore.Options{})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for w, s := range []*pgstore.Store{s1, s2, s1, s2} {
		wg.Go(func() {
			for i := range n {
				_, err := s.Settings().Update("acme", func(r *settings.Record) error {
					r.Periods = append(r.Periods, settings.Period{StartLSN: uint64(w*n + i + 1)})
					r.Stream.Generation++
					return nil
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r, err := s1.Settings().Get("acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Periods) != 4*n || r.Stream.Generation != 4*n {
		t.Errorf("after %d updates through two stores: %d periods, generation %d", 4*n, len(r.Periods), r.Stream.Generation)
	}
}
