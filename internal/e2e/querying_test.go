package e2e

// TestQueryingDoc runs the DuckDB queries of docs/querying.md, taken from
// the document itself, over a local copy of a bucket that a real j1ds
// filled, and checks each answer against the graph the test changed.
// DuckDB is npm's @duckdb/node-api (testdata/duckdb), installed into a
// cache directory outside the repository; node and npm must be on PATH (a
// missing tool fails the test, it never skips).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/testbed/npmpkg"
)

const (
	queryingDoc       = "../../docs/querying.md"
	duckdbSourceDir   = "testdata/duckdb"
	duckdbInstallTime = 10 * time.Minute
	duckdbRunTime     = 2 * time.Minute
	// syncedBucket is the directory docs/querying.md syncs the bucket
	// into; its queries read relative paths under it.
	syncedBucket = "j1-bucket"
)

// exportKeyRE is the object layout with either suffix j1ds writes.
var exportKeyRE = regexp.MustCompile(`^jupiterone/graph/cdc/accountId=([A-Za-z0-9_-]+)/year=(\d{4})/month=(\d{2})/day=(\d{2})/time=(\d{6}\.\d{6})Z(\.jsonl|\.jsonl\.gz)$`)

// docQuery is one ```sql block of docs/querying.md.
type docQuery struct {
	name, sql string
}

// docSQLBlock is a fenced sql block; its first line names it.
var docSQLBlock = regexp.MustCompile("(?ms)^```sql\n(.*?)^```")

// readDocQueries returns the DuckDB queries of docs/querying.md in the
// order the document gives them: every ```sql block whose first line is
// `-- query: NAME`. A block must start with that or with `-- athena:`
// (Athena DDL, not run here), so no query of the document escapes the
// test.
func readDocQueries(t *testing.T) []docQuery {
	t.Helper()
	doc, err := os.ReadFile(queryingDoc)
	if err != nil {
		t.Fatalf("reading %s: %v", queryingDoc, err)
	}
	var out []docQuery
	for _, m := range docSQLBlock.FindAllStringSubmatch(string(doc), -1) {
		first, _, _ := strings.Cut(m[1], "\n")
		switch {
		case strings.HasPrefix(first, "-- query: "):
			out = append(out, docQuery{name: strings.TrimSpace(strings.TrimPrefix(first, "-- query: ")), sql: m[1]})
		case strings.HasPrefix(first, "-- athena:"):
		default:
			t.Errorf("%s: a ```sql block starts with %q; start it with `-- query: NAME` (DuckDB, run by this test) or `-- athena:` (not run here)", queryingDoc, first)
		}
	}
	return out
}

// duckAnswer is the answer to one block: its columns and the rows of its
// last statement, values as @duckdb/node-api's getRowObjectsJson gives
// them (BIGINT and TIMESTAMP as strings).
type duckAnswer struct {
	Name    string           `json:"name"`
	Columns []string         `json:"columns"`
	Rows    []map[string]any `json:"rows"`
}

// runDuckDB runs blocks in order in one in-memory DuckDB database, with
// dir as the working directory, and returns the answers by block name.
func runDuckDB(t *testing.T, install, dir string, blocks []docQuery) map[string]duckAnswer {
	t.Helper()
	type block struct {
		Name string `json:"name"`
		SQL  string `json:"sql"`
	}
	in := struct {
		Cwd    string  `json:"cwd"`
		Blocks []block `json:"blocks"`
	}{Cwd: dir}
	for _, b := range blocks {
		in.Blocks = append(in.Blocks, block{b.name, b.sql})
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(t.TempDir(), "blocks.json")
	if err := os.WriteFile(input, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), duckdbRunTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "query.js", input)
	cmd.Dir = install
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node query.js (DuckDB over %s): %v\n%s", dir, err, stderr.String())
	}
	out := map[string]duckAnswer{}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		var a duckAnswer
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		if err := d.Decode(&a); err != nil {
			t.Fatalf("node query.js: bad output line %q: %v", sc.Text(), err)
		}
		out[a.Name] = a
	}
	if len(out) != len(blocks) {
		t.Fatalf("node query.js answered %d of %d blocks\nstderr:\n%s", len(out), len(blocks), stderr.String())
	}
	return out
}

// installDuckDB installs testdata/duckdb with its node_modules into a
// cache outside the repository (npmpkg.Install) and returns that directory.
// The cache root is $J1DS_DUCKDB_CACHE if set, else
// os.UserCacheDir()/j1ds-duckdb-test.
func installDuckDB(t *testing.T) string {
	t.Helper()
	dir, err := npmpkg.Package{
		Src: duckdbSourceDir, CacheEnv: "J1DS_DUCKDB_CACHE", CacheName: "j1ds-duckdb-test",
		Module: "@duckdb/node-api", Timeout: duckdbInstallTime,
	}.Install()
	if err != nil {
		t.Fatalf("installDuckDB: the querying test runs DuckDB from npm's @duckdb/node-api: %v", err)
	}
	return dir
}

// syncBucket copies every export object of the bucket to dir/<key>, as
// `aws s3 sync` does, and returns the keys, sorted.
func syncBucket(t *testing.T, e *s3Env, dir string) []string {
	t.Helper()
	keys := e.keys(t, streamBucket, "jupiterone/graph/cdc/")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, k := range keys {
		out, err := e.srv.RootClient().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(streamBucket), Key: aws.String(k)})
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		raw, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// waitRecords waits until the bucket holds n records of account.
func waitRecords(t *testing.T, e *s3Env, account string, n int) {
	t.Helper()
	got := 0
	waitFor(t, time.Minute, fmt.Sprintf("%d records of %s in the bucket", n, account), func() bool {
		got = len(lines(e.objects(t, streamBucket, account)))
		return got >= n
	})
	if got != n {
		t.Fatalf("%s: %d records in the bucket, want %d", account, got, n)
	}
}

// graphChange is a change the test made and the graph object it touched.
type graphChange struct {
	account string
	write
	kinds, id, typ string
}

func TestQueryingDoc(t *testing.T) {
	install := installDuckDB(t)
	queries := readDocQueries(t)
	if t.Failed() {
		t.FailNow()
	}

	// Account ids that look like numbers: DuckDB would read them as
	// BIGINT 1042 and 9001 unless the query pins accountId to VARCHAR.
	const acct, other = "1042", "9001"
	e := startS3(t, "")
	cfg := streamConfig(t, e)
	cfg.S3.Suffix = ".jsonl"
	j := startServe(t, cfg)
	key := j.account(t, acct, true)
	j.enable(t, key, acct, streamBucket, s3Owner)

	var changes []graphChange
	note := func(account, kinds string, w write) graphChange {
		var p struct {
			ID   string `json:"_id"`
			Type string `json:"_type"`
		}
		decode(t, w.props, &p)
		c := graphChange{account: account, write: w, kinds: kinds, id: p.ID, typ: p.Type}
		changes = append(changes, c)
		return c
	}
	user := func(k, name string) map[string]any {
		return entity(k, "test_user", []string{"User"}, "name", name, "active", true)
	}
	host := func(k, ip string) map[string]any { return entity(k, "test_host", []string{"Host"}, "ip", ip) }
	has := func(from, to graphChange) map[string]any {
		return map[string]any{"_key": from.id + "|has|" + to.id, "_type": "test_user_has_host", "_class": "HAS",
			"_fromEntityId": from.id, "_toEntityId": to.id}
	}
	count := func(account string) int {
		n := 0
		for _, c := range changes {
			if c.account == account {
				n++
			}
		}
		return n
	}

	// Batch 1: creates of two entity types and a relationship type.
	alice := note(acct, "entities", j.create(t, key, acct, "entities", user("test-user-alice", "Alice")))
	bob := note(acct, "entities", j.create(t, key, acct, "entities", user("test-user-bob", "Bob")))
	carol := note(acct, "entities", j.create(t, key, acct, "entities", user("test-user-carol", "Carol")))
	h1 := note(acct, "entities", j.create(t, key, acct, "entities", host("test-host-1", "10.0.0.1")))
	h2 := note(acct, "entities", j.create(t, key, acct, "entities", host("test-host-2", "10.0.0.2")))
	r1 := note(acct, "relationships", j.create(t, key, acct, "relationships", has(alice, h1)))
	r2 := note(acct, "relationships", j.create(t, key, acct, "relationships", has(bob, h2)))
	waitRecords(t, e, acct, count(acct))

	// Batch 2: updates and deletes, in a later object.
	note(acct, "entities", j.patch(t, key, acct, "entities", alice.id, map[string]any{"title": "Engineer"}))
	note(acct, "entities", j.patch(t, key, acct, "entities", h1.id, map[string]any{"os": "linux"}))
	early := []graphChange{
		note(acct, "entities", j.del(t, key, acct, "entities", carol.id)),
		note(acct, "relationships", j.del(t, key, acct, "relationships", r2.id)),
	}
	waitRecords(t, e, acct, count(acct))

	// j1ds restarted with --object-suffix .jsonl.gz: the objects of an
	// account created now end in .jsonl.gz, so the copy holds both names.
	j.stop()
	cfg.S3.Suffix = ".jsonl.gz"
	j = startServe(t, cfg)
	keyOther := j.account(t, other, true)
	j.enable(t, keyOther, other, streamBucket, s3Owner)
	device := note(other, "entities", j.create(t, keyOther, other, "entities", entity("test-laptop-1", "test_device", []string{"Device"}, "serial", "S-1")))
	note(other, "entities", j.patch(t, keyOther, other, "entities", device.id, map[string]any{"serial": "S-2"}))

	// Batch 3: a delete that cascades to a relationship (the relationship
	// first, in the same transaction), a create, updates (Alice's second).
	r1Deleted := write{op: "d", kind: "relationship"}
	h1Del := j.del(t, key, acct, "entities", h1.id)
	r1Deleted.props = j.get(t, key, acct, "relationships", r1.id)
	late := []graphChange{note(acct, "relationships", r1Deleted), note(acct, "entities", h1Del)}
	note(acct, "entities", j.create(t, key, acct, "entities", user("test-user-dave", "Dave")))
	note(acct, "entities", j.patch(t, key, acct, "entities", bob.id, map[string]any{"active": false}))
	note(acct, "entities", j.patch(t, key, acct, "entities", alice.id, map[string]any{"title": "Staff engineer"}))
	waitRecords(t, e, acct, count(acct))
	waitRecords(t, e, other, count(other))
	// The graph's current objects, deleted ones too, as the API shows them.
	current := map[string]json.RawMessage{}
	for _, c := range changes {
		k := c.object()
		if _, ok := current[k]; !ok {
			current[k] = j.get(t, map[string]string{acct: key, other: keyOther}[c.account], c.account, c.kinds, c.id)
		}
	}
	j.stop()

	// The synced copy.
	dir := t.TempDir()
	keys := syncBucket(t, e, filepath.Join(dir, syncedBucket))

	// The deletes period: batch 3's deletes, by their _endOn, which must
	// come after batch 2's for the query to have something to tell apart.
	endOn := func(c graphChange) int64 {
		var p struct {
			EndOn int64 `json:"_endOn"`
		}
		decode(t, c.props, &p)
		if p.EndOn == 0 {
			t.Fatalf("deleted %s has no _endOn: %s", c.id, c.props)
		}
		return p.EndOn
	}
	from, to := endOn(late[0]), endOn(late[0])
	for _, c := range late {
		from, to = min(from, endOn(c)), max(to, endOn(c))
	}
	for _, c := range early {
		if endOn(c) >= from {
			t.Fatalf("batch 2's delete of %s (_endOn %d) is not before batch 3's (%d)", c.id, endOn(c), from)
		}
	}
	ms := func(v int64) string { return time.UnixMilli(v).UTC().Format("2006-01-02 15:04:05.000") }
	testPeriod := docQuery{name: "test-period", sql: fmt.Sprintf(
		"SET VARIABLE period_start = TIMESTAMP '%s';\nSET VARIABLE period_end = TIMESTAMP '%s';", ms(from), ms(to+1))}

	// The document's queries in its order; the test's period right after
	// the document's example period.
	var blocks []docQuery
	for _, q := range queries {
		blocks = append(blocks, q)
		if q.name == "period" {
			blocks = append(blocks, testPeriod)
		}
	}
	answers := runDuckDB(t, install, dir, blocks)
	names := slices.Sorted(maps.Keys(answers))
	want := []string{"changes", "changes-by-operation-and-type", "current-objects", "deletes-in-period", "gz-only", "latest-state", "objects", "period", "schema", "test-period"}
	if !slices.Equal(names, want) {
		t.Fatalf("queries of %s: %v, want %v (a new query needs a check here)", queryingDoc, names, want)
	}

	t.Run("schema", func(t *testing.T) { checkSchema(t, answers["schema"]) })
	t.Run("objects", func(t *testing.T) { checkObjects(t, answers["objects"], e, keys, acct, other) })
	t.Run("gz-only", func(t *testing.T) { checkGzOnly(t, answers["gz-only"], e, keys) })
	t.Run("changes-by-operation-and-type", func(t *testing.T) {
		checkCounts(t, answers["changes-by-operation-and-type"], changes)
	})
	t.Run("latest-state", func(t *testing.T) { checkLatest(t, answers["latest-state"], current, false) })
	t.Run("current-objects", func(t *testing.T) { checkLatest(t, answers["current-objects"], current, true) })
	t.Run("deletes-in-period", func(t *testing.T) { checkDeletes(t, answers["deletes-in-period"], late) })
}

// object names the graph object c touched: account and _id.
func (c graphChange) object() string { return c.account + "/" + c.id }

// str returns a row's column as text (getRowObjectsJson gives BIGINT and
// TIMESTAMP as strings, numbers that fit as JSON numbers).
func str(row map[string]any, col string) string {
	switch v := row[col].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// checkSchema: the partition columns have the pinned types, the object
// time is a timestamp.
func checkSchema(t *testing.T, a duckAnswer) {
	want := map[string]string{"accountId": "VARCHAR", "year": "INTEGER", "month": "INTEGER", "day": "INTEGER",
		"object_time": "TIMESTAMP", "operation": "VARCHAR", "eventType": "VARCHAR", "properties": "JSON"}
	got := map[string]string{}
	for _, r := range a.Rows {
		got[str(r, "column_name")] = str(r, "column_type")
	}
	for col, typ := range want {
		if got[col] != typ {
			t.Errorf("column %s: type %q, want %s (DESCRIBE says %v)", col, got[col], typ, got)
		}
	}
}

// checkObjects: one row per object of the bucket, with its account, its
// time from the key and its number of records.
func checkObjects(t *testing.T, a duckAnswer, e *s3Env, keys []string, accounts ...string) {
	type obj struct {
		account, time string
		records       int
	}
	want := map[string]obj{}
	for _, k := range keys {
		m := exportKeyRE.FindStringSubmatch(k)
		if m == nil {
			t.Fatalf("key %q does not follow the layout", k)
		}
		tm, err := time.Parse("2006-01-02 150405.000000", m[2]+"-"+m[3]+"-"+m[4]+" "+m[5])
		if err != nil {
			t.Fatal(err)
		}
		want[syncedBucket+"/"+k] = obj{m[1], tm.Format("2006-01-02 15:04:05.000000"), len(e.get(t, streamBucket, k).Lines)}
	}
	got := map[string]obj{}
	for _, r := range a.Rows {
		n, err := strconv.Atoi(str(r, "records"))
		if err != nil {
			t.Fatalf("records %v: %v", r["records"], err)
		}
		ts, err := time.Parse("2006-01-02 15:04:05.999999", str(r, "object_time"))
		if err != nil {
			t.Fatalf("object_time %v: %v", r["object_time"], err)
		}
		got[str(r, "object_file")] = obj{str(r, "accountId"), ts.Format("2006-01-02 15:04:05.000000"), n}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("objects query:\n got %v\nwant %v", got, want)
	}
	suffixes := map[string]bool{}
	for _, k := range keys {
		suffixes[exportKeyRE.FindStringSubmatch(k)[6]] = true
	}
	if !suffixes[".jsonl"] || !suffixes[".jsonl.gz"] {
		t.Errorf("the copy should hold objects of both names, has %v", suffixes)
	}
	for _, acc := range accounts {
		if !slices.ContainsFunc(slices.Collect(maps.Values(got)), func(o obj) bool { return o.account == acc }) {
			t.Errorf("no object of account %q in the answer (accountId read as a number?)", acc)
		}
	}
}

// checkGzOnly: the query without the compression option reads the
// .jsonl.gz objects, all of their records.
func checkGzOnly(t *testing.T, a duckAnswer, e *s3Env, keys []string) {
	want := 0
	for _, k := range keys {
		if strings.HasSuffix(k, ".jsonl.gz") {
			want += len(e.get(t, streamBucket, k).Lines)
		}
	}
	if want == 0 {
		t.Fatal("no .jsonl.gz object in the bucket")
	}
	if len(a.Rows) != 1 || str(a.Rows[0], "records") != strconv.Itoa(want) {
		t.Errorf("gz-only: %v, want records %d", a.Rows, want)
	}
}

// checkCounts: changes per account, type of object, _type and operation
// are the test's changes.
func checkCounts(t *testing.T, a duckAnswer, changes []graphChange) {
	want := map[string]int{}
	for _, c := range changes {
		want[strings.Join([]string{c.account, c.kind, c.typ, c.op}, " ")]++
	}
	got := map[string]int{}
	for _, r := range a.Rows {
		n, err := strconv.Atoi(str(r, "changes"))
		if err != nil {
			t.Fatalf("changes %v: %v", r["changes"], err)
		}
		got[strings.Join([]string{str(r, "accountId"), str(r, "eventType"), str(r, "type"), str(r, "operation")}, " ")] = n
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("changes by operation and type:\n got %v\nwant %v", got, want)
	}
}

// checkLatest: one row per graph object (live ones only when live) whose
// properties are the object as the API shows it now.
func checkLatest(t *testing.T, a duckAnswer, current map[string]json.RawMessage, live bool) {
	want := map[string]map[string]any{}
	for k, raw := range current {
		var p map[string]any
		decodeNumber(t, raw, &p)
		if live && p["_deleted"] == true {
			continue
		}
		want[k] = p
	}
	got := map[string]map[string]any{}
	for _, r := range a.Rows {
		var p map[string]any
		decodeNumber(t, []byte(str(r, "properties")), &p)
		k := str(r, "accountId") + "/" + str(r, "id")
		if _, dup := got[k]; dup {
			t.Errorf("%s twice in the answer", k)
		}
		got[k] = p
	}
	if len(got) != len(want) {
		t.Errorf("%d objects in the answer, want %d", len(got), len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s missing from the answer", k)
		} else if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %s\nwant %s", k, mustJSON(g), mustJSON(w))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s in the answer, not among the graph's objects", k)
		}
	}
}

// checkDeletes: the deletes in the period are batch 3's, no more.
func checkDeletes(t *testing.T, a duckAnswer, late []graphChange) {
	var want, got []string
	for _, c := range late {
		want = append(want, strings.Join([]string{c.account, c.kind, c.typ, c.id}, " "))
	}
	for _, r := range a.Rows {
		got = append(got, strings.Join([]string{str(r, "accountId"), str(r, "eventType"), str(r, "type"), str(r, "id")}, " "))
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("deletes in the period:\n got %v\nwant %v", got, want)
	}
}
