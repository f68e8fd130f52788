package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/verify"
)

// runVerifyCLI runs j1ds verify, the binary, and returns its exit code,
// stdout and stderr.
func runVerifyCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	return runJ1ds(t, append([]string{"verify"}, args...)...)
}

// TestVerifyEndToEnd streams changes of every kind (creates, a
// relationship, updates, a delete cascading to its relationship, a sync
// job, an object that predates streaming) through a disable and re-enable
// into versitygw, then runs j1ds verify --compare against the bucket and
// j1ds: clean. Tampered objects (a record dropped, one duplicated),
// uploaded as the bucket's root, make it fail with exit code 1.
func TestVerifyEndToEnd(t *testing.T) {
	e := startS3(t, "")
	j := startServe(t, streamConfig(t, e))
	key := j.account(t, "acme", true)

	pre := j.create(t, key, "acme", "entities", entity("acme-user-pre", "test_user", []string{"User"}, "name", "Before streaming"))
	j.enable(t, key, "acme", streamBucket, s3Owner)
	events := 0
	change := func(w write) write { events++; return w }

	alice := change(j.create(t, key, "acme", "entities", entity("acme-user-alice", "test_user", []string{"User", "Person"}, "name", "Alice", "age", 41)))
	bob := change(j.create(t, key, "acme", "entities", entity("acme-user-bob", "test_user", []string{"User"}, "name", "Bob")))
	change(j.create(t, key, "acme", "relationships", map[string]any{"_key": "acme-user-alice|knows|acme-user-bob",
		"_type": "test_user_knows_user", "_class": "KNOWS", "_fromEntityId": idOf(t, alice), "_toEntityId": idOf(t, bob), "since": 2020}))
	change(j.patch(t, key, "acme", "entities", idOf(t, alice), map[string]any{"age": 42}))
	change(j.patch(t, key, "acme", "entities", idOf(t, pre), map[string]any{"name": "Renamed while streaming"}))
	waitExported(t, j, key, "acme", events)
	change(j.del(t, key, "acme", "entities", idOf(t, bob)))
	events++ // the cascade deletes knows in the same transaction
	var bulk []map[string]any
	for i := range 40 {
		bulk = append(bulk, entity(fmt.Sprintf("acme-host-%03d", i), "test_host", []string{"Host"}, "ip", fmt.Sprintf("10.0.0.%d", i)))
	}
	j.syncEntities(t, key, bulk)
	events += len(bulk)
	waitExported(t, j, key, "acme", events)

	// Disabled: alice changes and is not exported; changed again after
	// re-enabling, her version jumps across the two periods.
	j.save(t, key, "acme", false, streamBucket, s3Owner)
	j.patch(t, key, "acme", "entities", idOf(t, alice), map[string]any{"age": 43})
	j.save(t, key, "acme", true, streamBucket, s3Owner)
	change(j.patch(t, key, "acme", "entities", idOf(t, alice), map[string]any{"age": 44}))
	carol := change(j.create(t, key, "acme", "entities", entity("acme-user-carol", "test_user", []string{"User"}, "name", "Carol")))
	for _, n := range []string{"Carol B.", "Carol C."} {
		change(j.patch(t, key, "acme", "entities", idOf(t, carol), map[string]any{"name": n}))
	}
	waitExported(t, j, key, "acme", events)

	// The customer reads with their own credentials: here the gateway's
	// root, from the standard chain, and its CA from AWS_CA_BUNDLE.
	t.Setenv("AWS_ACCESS_KEY_ID", e.srv.RootAccess)
	t.Setenv("AWS_SECRET_ACCESS_KEY", e.srv.RootSecret)
	t.Setenv("AWS_CA_BUNDLE", e.srv.CAFile)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("J1DS_KEY", key)
	args := []string{"--account", "acme", "--bucket", streamBucket, "--s3-endpoint", e.srv.Endpoint, "--url", j.url, "--compare"}

	code, out, stderr := runVerifyCLI(t, append(args, "--json", "--progress")...)
	if code != 0 {
		t.Fatalf("verify of the untouched bucket: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep verify.Report
	decode(t, []byte(out), &rep)
	// Creates: alice, bob, knows, the hosts, carol. Updates: alice twice,
	// pre, carol twice. Deletes: bob and, by cascade, knows.
	wantRecords := verify.RecordCounts{Total: events, Create: 3 + len(bulk) + 1, Update: 5, Delete: 2, Entities: events - 2, Relationships: 2}
	if rep.Records != wantRecords || !rep.PeriodsFromJ1ds || len(rep.Periods) != 2 || rep.PredateStreaming != 1 {
		t.Errorf("report: records %+v (want %+v), %d periods (want 2), %d objects predate streaming (want 1, pre)",
			rep.Records, wantRecords, len(rep.Periods), rep.PredateStreaming)
	}
	if c := rep.Compare; c == nil || c.Matching != 2+len(bulk)+1 || c.StoreEntities != 2+len(bulk)+1 || c.Live != c.Matching {
		t.Errorf("compare: %+v", rep.Compare)
	}
	if !strings.Contains(stderr, fmt.Sprintf("objects read %d/%d", rep.Objects, rep.Objects)) {
		t.Errorf("no progress on stderr with --progress: %q", stderr)
	}

	// A local copy checked without j1ds: one assumed period, so alice's
	// jump across the disable is a gap, and the report says why.
	dir := t.TempDir()
	for _, k := range e.keys(t, streamBucket, verify.Prefix("acme")) {
		p := filepath.Join(dir, filepath.FromSlash(k))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, rawObject(t, e, k), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ = runVerifyCLI(t, "--account", "acme", "--dir", dir)
	t.Logf("verify --dir:\n%s", out)
	if code != 1 || !strings.Contains(out, "version-gap") || !strings.Contains(out, idOf(t, alice)) || !strings.Contains(out, "one period") {
		t.Errorf("verify --dir without periods: exit %d, want 1 and alice's version gap explained\n%s", code, out)
	}

	// Tampered: carol's middle update dropped, then duplicated instead.
	carolV2 := fmt.Sprintf(`"_id":%q,"_deleted":false,"_version":2,`, idOf(t, carol))
	k, lines := findLine(t, e, "acme", carolV2)
	orig := rawObject(t, e, k)
	for _, tc := range []struct {
		name string
		edit func([][]byte, int) [][]byte
		want verify.Kind
	}{
		{"dropped", func(l [][]byte, i int) [][]byte { return append(l[:i:i], l[i+1:]...) }, verify.KindVersionGap},
		{"duplicated", func(l [][]byte, i int) [][]byte { return append(l[:i+1:i+1], l[i:]...) }, verify.KindVersionDup},
	} {
		i := lineIndex(lines, carolV2)
		putObject(t, e, k, gzipLines(t, tc.edit(clone(lines), i)))
		code, out, stderr := runVerifyCLI(t, args...)
		if code != 1 || !strings.Contains(out, string(tc.want)) || !strings.Contains(out, idOf(t, carol)) || !strings.Contains(stderr, "violations found") {
			t.Errorf("%s record: exit %d, want 1 and %s of carol\n%s\n%s", tc.name, code, tc.want, out, stderr)
		}
	}
	putObject(t, e, k, orig)
	if code, out, _ := runVerifyCLI(t, args...); code != 0 {
		t.Errorf("restored: exit %d\n%s", code, out)
	}
}

// rawObject reads an object's stored bytes as root.
func rawObject(t *testing.T, e *s3Env, key string) []byte {
	t.Helper()
	out, err := e.srv.RootClient().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(streamBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func putObject(t *testing.T, e *s3Env, key string, body []byte) {
	t.Helper()
	_, err := e.srv.RootClient().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(streamBucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentType: aws.String("application/x-ndjson"), ContentEncoding: aws.String("gzip")})
	if err != nil {
		t.Fatal(err)
	}
}

// findLine returns the object holding the line that contains sub, and
// that object's lines.
func findLine(t *testing.T, e *s3Env, account, sub string) (string, [][]byte) {
	t.Helper()
	for _, o := range e.objects(t, streamBucket, account) {
		if lineIndex(o.Lines, sub) >= 0 {
			return o.Key, o.Lines
		}
	}
	t.Fatalf("no record contains %s", sub)
	return "", nil
}

func lineIndex(lines [][]byte, sub string) int {
	for i, l := range lines {
		if bytes.Contains(l, []byte(sub)) {
			return i
		}
	}
	return -1
}

func clone(lines [][]byte) [][]byte { return append([][]byte(nil), lines...) }

func gzipLines(t *testing.T, lines [][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	for _, l := range lines {
		zw.Write(l)
		zw.Write([]byte{'\n'})
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
