package e2e

// End-to-end tests of data streaming: j1ds serving, a real versitygw over
// TLS behind a recording proxy, and everything driven through j1ds's APIs.
// The harness is in streamharness_test.go.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

func isTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// waitExported waits until the account's status shows events exported
// and nothing pending.
func waitExported(t *testing.T, j *j1, key, account string, events int) streamingState {
	t.Helper()
	var st streamingState
	waitFor(t, time.Minute, account+" exporting "+strconv.Itoa(events)+" events", func() bool {
		st = j.state(t, key, account)
		return st.Status.EventsExported >= int64(events) && st.Status.PendingSince == nil
	})
	if st.Status.EventsExported != int64(events) {
		t.Fatalf("%s: %d events exported, want %d", account, st.Status.EventsExported, events)
	}
	return st
}

// beaconBucket holds the beacon's objects, apart from the accounts under
// test.
const beaconBucket = "beacon-bucket"

// beacon is an account, streaming into its own bucket, whose exports show
// how far the exporter has got: the evidence a test needs that something
// did not happen. The exporter runs flushes in the order they fall due (a
// batch a flush interval after its oldest change, a retry after its
// backoff) and, with one worker (serve.Config.ExportWorkers 1), one at a
// time: a beacon change committed at c is exported only after every flush
// due by c plus a flush interval has ended, its requests recorded by the
// proxy.
type beacon struct {
	j       *j1
	key     string
	changes int
}

// newBeacon creates the beacon account and bucket and enables streaming
// into it. j must run with one export worker.
func newBeacon(t *testing.T, e *s3Env, j *j1) *beacon {
	t.Helper()
	if j.cfg.ExportWorkers != 1 {
		t.Fatalf("a beacon needs one export worker, j1ds has %d", j.cfg.ExportWorkers)
	}
	e.bucket(t, beaconBucket, s3Owner, locals3.WriterPolicy(beaconBucket, s3Writer))
	b := &beacon{j: j, key: j.account(t, "beacon", true)}
	j.enable(t, b.key, "beacon", beaconBucket, s3Owner)
	return b
}

// pass commits a beacon change and waits until it is exported.
func (b *beacon) pass(t *testing.T) {
	t.Helper()
	b.changes++
	b.j.create(t, b.key, "beacon", "entities", entity(fmt.Sprintf("beacon-change-%04d", b.changes), "test_beacon", []string{"Beacon"}))
	waitExported(t, b.j, b.key, "beacon", b.changes)
}

// passBeyond makes beacon changes until every flush due by at has ended.
func (b *beacon) passBeyond(t *testing.T, at time.Time) {
	t.Helper()
	for {
		committed := time.Now() // the change's commit time is no earlier
		b.pass(t)
		if !committed.Add(b.j.cfg.FlushInterval).Before(at) {
			return
		}
	}
}

// owns reports whether r went to the beacon's bucket.
func (b *beacon) owns(r locals3.Request) bool {
	return strings.HasPrefix(r.Path, "/"+beaconBucket+"/")
}

// TestStreamRecordsEqualChanges: what lands in the bucket is the changes
// written, field for field and in commit order across objects, under keys
// of the documented layout; an idle interval writes nothing; two accounts
// share a bucket without collision; nothing from before enabling is
// exported.
func TestStreamRecordsEqualChanges(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamRecordsEqualChanges)
}

func testStreamRecordsEqualChanges(t *testing.T, bk backend) {
	e := startS3(t, "")
	cfg := bk.config(t, e)
	cfg.ExportWorkers = 1 // for the beacon
	j := startServe(t, cfg)
	b := newBeacon(t, e, j)
	ka := j.account(t, "acme", true)
	kb := j.account(t, "globex", true)

	// Written before streaming is enabled: never exported (no backfill).
	early := j.create(t, ka, "acme", "entities", entity("acme-user-early", "test_user", []string{"User"}, "name", "Early"))
	j.enable(t, ka, "acme", streamBucket, s3Owner)
	j.enable(t, kb, "globex", streamBucket, s3Owner)

	var wantA, wantB []write
	// First batch: creates, a relationship, an update.
	ann := j.create(t, ka, "acme", "entities", entity("acme-user-ann", "test_user", []string{"User", "Person"},
		"name", "Ann", "age", 41, "admin", true, "emails", []string{"ann@example.com", "a@example.com"}, "score", 3.25, "manager", nil))
	bob := j.create(t, ka, "acme", "entities", entity("acme-user-bob", "test_user", []string{"User"}, "name", "Bob \"the builder\" ☃"))
	knows := j.create(t, ka, "acme", "relationships", map[string]any{"_key": "acme-user-ann|knows|acme-user-bob", "_type": "test_user_knows_user",
		"_class": "KNOWS", "_fromEntityId": idOf(t, ann), "_toEntityId": idOf(t, bob), "since": 2020})
	annUp := j.patch(t, ka, "acme", "entities", idOf(t, ann), map[string]any{"name": "Ann B.", "age": 42})
	wantA = append(wantA, ann, bob, knows, annUp)
	wantB = append(wantB, j.create(t, kb, "globex", "entities", entity("globex-host", "test_host", []string{"Host"}, "ip", "10.0.0.1")))
	waitExported(t, j, ka, "acme", len(wantA))
	waitExported(t, j, kb, "globex", len(wantB))

	// Second batch, in a later object: a delete that cascades to the
	// relationship (one transaction), and a create.
	bobDel := j.del(t, ka, "acme", "entities", idOf(t, bob))
	knowsDel := write{op: "d", kind: "relationship", props: j.get(t, ka, "acme", "relationships", idOf(t, knows))}
	carl := j.create(t, ka, "acme", "entities", entity("acme-user-carl", "test_user", []string{"User"}, "name", "Carl"))
	// The store deletes an entity's relationships first, then the entity,
	// in the same transaction.
	wantA = append(wantA, knowsDel, bobDel, carl)
	wantB = append(wantB, j.create(t, kb, "globex", "entities", entity("globex-database", "test_db", []string{"Database", "DataStore"})))
	waitExported(t, j, ka, "acme", len(wantA))
	waitExported(t, j, kb, "globex", len(wantB))

	// Idle: more than two flush intervals with no change write nothing.
	// Idleness lasts a span of time, so the span is set here; its end is
	// an event: the beacon shows that every flush due by then, of acme or
	// globex, has ended and reached the proxy, however slow the machine.
	keysA, keysB := e.keys(t, streamBucket, accountPrefix("acme")), e.keys(t, streamBucket, accountPrefix("globex"))
	requests := len(e.proxy.Requests())
	b.passBeyond(t, time.Now().Add(2*flushInterval+flushInterval/2))
	if got := e.keys(t, streamBucket, accountPrefix("acme")); !slices.Equal(got, keysA) {
		t.Errorf("idle interval wrote objects: %v, then %v", keysA, got)
	}
	if got := e.keys(t, streamBucket, accountPrefix("globex")); !slices.Equal(got, keysB) {
		t.Errorf("idle interval wrote objects: %v, then %v", keysB, got)
	}
	for _, r := range e.proxy.Requests()[requests:] {
		if !b.owns(r) {
			t.Errorf("idle interval sent an S3 request: %+v", r)
		}
	}

	objsA, objsB := e.objects(t, streamBucket, "acme"), e.objects(t, streamBucket, "globex")
	if len(objsA) < 2 || len(objsB) < 2 {
		t.Fatalf("%d and %d objects; each batch was exported before the next was written, so want at least 2 each", len(objsA), len(objsB))
	}
	compareRecords(t, "acme", lines(objsA), wantA)
	compareRecords(t, "globex", lines(objsB), wantB)
	for _, l := range lines(objsA) {
		if bytes.Contains(l, []byte(idOf(t, early))) {
			t.Errorf("a change from before streaming was enabled was exported: %s", l)
		}
	}
	// Two accounts, one bucket: every key under the bucket is one
	// account's, and none is shared.
	all := e.keys(t, streamBucket, "jupiterone/graph/cdc/")
	if len(all) != len(objsA)+len(objsB) {
		t.Errorf("bucket holds %d export objects, the accounts %d and %d: %v", len(all), len(objsA), len(objsB), all)
	}
	for _, k := range all {
		m := keyRE.FindStringSubmatch(k)
		if m == nil || (m[1] != "acme" && m[1] != "globex") {
			t.Errorf("key %q does not follow the layout", k)
		}
	}

	// Against the log itself, once j1ds has stopped: byte for byte, keyed by
	// each object's first commit, whole transactions, cursor at the end.
	j.stop()
	checkAgainstLog(t, objsA, readLogState(t, j.cfg, "acme"), "acme")
	checkAgainstLog(t, objsB, readLogState(t, j.cfg, "globex"), "globex")
}

// TestStreamConnectionTestAPI: Test Connection through the API names what
// to fix, and saving enforces a passing test, valid fields, an
// administrator key and the entitlement.
func TestStreamConnectionTestAPI(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamConnectionTestAPI)
}

func testStreamConnectionTestAPI(t *testing.T, bk backend) {
	e := startS3(t, "")
	// A bucket whose policy lets the writer put only under another prefix.
	e.bucket(t, "elsewhere-bucket", s3Owner, strings.Replace(locals3.WriterPolicy("elsewhere-bucket", s3Writer),
		"arn:aws:s3:::elsewhere-bucket/jupiterone/*", "arn:aws:s3:::elsewhere-bucket/exports/*", 1))
	j := startServe(t, bk.config(t, e))
	admin := j.account(t, "acme", true)
	member := j.key(t, "acme", "member")
	unentitled := j.account(t, "initech", false)

	t.Run("success writes the test object", func(t *testing.T) {
		if r := j.testConnection(t, admin, "acme", streamBucket, s3Owner); !r.OK || r.Error != nil {
			t.Fatalf("test connection: %+v", r)
		}
		o := e.get(t, streamBucket, settingsConnectionTestKey)
		var doc map[string]any
		decode(t, o.Lines[0], &doc)
		if doc["account"] != "acme" {
			t.Errorf("%s holds %s, want JSON naming the account", settingsConnectionTestKey, o.Lines[0])
		}
		if ts, _ := doc["time"].(string); !isTime(ts) {
			t.Errorf("%s: time %v is not an RFC 3339 time", settingsConnectionTestKey, doc["time"])
		}
		st := j.state(t, admin, "acme")
		if st.Enabled || st.RequiredRegion != "us-east-1" {
			t.Errorf("state after a test: %+v", st)
		}
	})

	failures := []struct {
		name, bucket, owner, code string
		mention                   []string
	}{
		{"wrong owner", streamBucket, s3Stranger, "ACCESS_DENIED", []string{"bucket policy", "s3:PutObject", "arn:aws:s3:::" + streamBucket + "/jupiterone/*", "not owned by AWS account " + s3Stranger}},
		{"policy for another prefix", "elsewhere-bucket", s3Owner, "ACCESS_DENIED", []string{"bucket policy", "arn:aws:s3:::elsewhere-bucket/jupiterone/*", s3Owner}},
		{"no such bucket", "no-such-bucket", s3Owner, "NO_SUCH_BUCKET", []string{`"no-such-bucket"`, "does not exist"}},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			r := j.testConnection(t, admin, "acme", f.bucket, f.owner)
			if r.OK || r.Error == nil || r.Error.Code != f.code {
				t.Fatalf("test connection: %+v, want code %s", r, f.code)
			}
			for _, m := range f.mention {
				if !strings.Contains(r.Error.Message, m) {
					t.Errorf("message %q does not mention %q", r.Error.Message, m)
				}
			}
			// The failed test is shown, and enabling with it is refused.
			code, b := j.call(t, "PUT", streamingPath("acme"), admin, map[string]any{"enabled": true, "bucketName": f.bucket, "awsAccountId": f.owner, "regionConfirmed": true})
			if code != http.StatusConflict || !strings.Contains(string(b), "CONNECTION_TEST_REQUIRED") {
				t.Errorf("enabling after a failed test: %d %s, want 409 CONNECTION_TEST_REQUIRED", code, b)
			}
		})
	}

	t.Run("saving", func(t *testing.T) {
		put := func(key string, body map[string]any) (int, problem) {
			code, b := j.call(t, "PUT", streamingPath("acme"), key, body)
			var eb struct{ Error problem }
			if code != http.StatusOK {
				decode(t, b, &eb)
			}
			return code, eb.Error
		}
		valid := func(edit func(map[string]any)) map[string]any {
			m := map[string]any{"enabled": true, "bucketName": streamBucket, "awsAccountId": s3Owner, "regionConfirmed": true}
			if edit != nil {
				edit(m)
			}
			return m
		}
		// A bucket never tested.
		if code, p := put(admin, valid(func(m map[string]any) { m["bucketName"] = "untested-bucket" })); code != http.StatusConflict || p.Code != "CONNECTION_TEST_REQUIRED" {
			t.Errorf("enabling an untested bucket: %d %+v, want 409", code, p)
		}
		for _, c := range []struct {
			name  string
			edit  func(map[string]any)
			field string
		}{
			{"invalid bucket", func(m map[string]any) { m["bucketName"] = "Customer_Bucket" }, "bucketName"},
			{"11-digit account id", func(m map[string]any) { m["awsAccountId"] = "11112222333" }, "awsAccountId"},
			{"region not confirmed", func(m map[string]any) { m["regionConfirmed"] = false }, "regionConfirmed"},
		} {
			if code, p := put(admin, valid(c.edit)); code != http.StatusUnprocessableEntity || !strings.Contains(p.Message, c.field) {
				t.Errorf("%s: %d %+v, want 422 naming %s", c.name, code, p, c.field)
			}
		}
		// The last test (of another bucket) does not cover this one: pass
		// it again, then save.
		if r := j.testConnection(t, admin, "acme", streamBucket, s3Owner); !r.OK {
			t.Fatalf("test connection: %+v", r)
		}
		if code, p := put(admin, valid(nil)); code != http.StatusOK {
			t.Fatalf("enabling after a passing test: %d %+v", code, p)
		}
		if st := j.state(t, admin, "acme"); !st.Enabled || !st.Status.Enabled || st.BucketName != streamBucket || st.AWSAccountID != s3Owner {
			t.Errorf("state after enabling: %+v", st)
		}
	})

	t.Run("only entitled administrators", func(t *testing.T) {
		body := map[string]any{"bucketName": streamBucket, "awsAccountId": s3Owner, "regionConfirmed": true}
		before := len(e.proxy.Requests())
		for _, c := range []struct {
			name, key, account, method, path, code string
		}{
			{"member get", member, "acme", "GET", "", "ADMIN_REQUIRED"},
			{"member put", member, "acme", "PUT", "", "ADMIN_REQUIRED"},
			{"member test", member, "acme", "POST", "/test-connection", "ADMIN_REQUIRED"},
			{"member policy", member, "acme", "GET", "/bucket-policy", "ADMIN_REQUIRED"},
			// An administrator without the entitlement reads the settings
			// and disables (TestEntitlementGatesStreaming).
			{"not entitled test", unentitled, "initech", "POST", "/test-connection", "NOT_ENTITLED"},
			{"not entitled put", unentitled, "initech", "PUT", "", "NOT_ENTITLED"},
		} {
			var b any
			if c.method != "GET" {
				b = body
			}
			code, raw := j.call(t, c.method, streamingPath(c.account)+c.path, c.key, b)
			var eb struct{ Error problem }
			decode(t, raw, &eb)
			if code != http.StatusForbidden || eb.Error.Code != c.code {
				t.Errorf("%s: %d %s, want 403 %s", c.name, code, raw, c.code)
			}
		}
		// None of them reached S3.
		if r := e.proxy.Requests(); len(r) != before {
			t.Errorf("refused calls sent %d S3 requests", len(r)-before)
		}
	})
}

// TestStreamThroughProxy watches every request j1ds sends to S3, through a
// test connection, a small export (PutObject) and a large one (multipart
// with 5 MiB parts): each carries the expected bucket owner and goes over
// TLS; SSE-KMS headers go on PutObject and CreateMultipartUpload only when
// a KMS key is configured, and no SSE header goes anywhere otherwise; the
// multipart object reads back equal to the changes.
func TestStreamThroughProxy(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamThroughProxy)
}

func testStreamThroughProxy(t *testing.T, bk backend) {
	for _, kms := range []string{"", "alias/j1ds-test-key"} {
		name := "no KMS key"
		if kms != "" {
			name = "KMS key"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := startS3(t, "")
			cfg := bk.config(t, e)
			cfg.S3.KMSKeyID = kms
			cfg.S3.PartSize = 5 << 20 // versitygw needs real 5 MiB parts
			j := startServe(t, cfg)
			key := j.account(t, "acme", true)
			j.enable(t, key, "acme", streamBucket, s3Owner)

			small := j.create(t, key, "acme", "entities", entity("acme-small-one", "test_user", []string{"User"}, "name", "Small"))
			waitExported(t, j, key, "acme", 1)

			// About 7.5 MiB of records that gzip shrinks to about 5.6 MiB, in
			// one transaction: two parts.
			blobs := map[string]string{}
			var big []map[string]any
			for i := range 12 {
				k := "acme-big-" + strconv.Itoa(100+i)
				blobs[k] = randomText(640 << 10)
				big = append(big, entity(k, "test_blob", []string{"Record"}, "blob", blobs[k]))
			}
			j.syncEntities(t, key, big)
			waitExported(t, j, key, "acme", 1+len(big))

			reqs := e.proxy.Requests()
			ops := map[string]int{}
			for i, r := range reqs {
				ops[r.Op]++
				if got := r.ExpectedBucketOwner(); got != s3Owner {
					t.Errorf("request %d %s %s: x-amz-expected-bucket-owner %q, want %s", i, r.Op, r.Path, got, s3Owner)
				}
				if !r.TLS {
					t.Errorf("request %d %s %s was plain HTTP", i, r.Op, r.Path)
				}
				if r.Status != http.StatusOK {
					t.Errorf("request %d %s %s: status %d", i, r.Op, r.Path, r.Status)
				}
				sse := r.SSEHeaders()
				switch {
				case kms == "":
					if len(sse) != 0 {
						t.Errorf("request %d %s carries SSE headers %v with no KMS key configured", i, r.Op, sse)
					}
				case r.Op == "PutObject" || r.Op == "CreateMultipartUpload":
					want := map[string]string{"X-Amz-Server-Side-Encryption": "aws:kms", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id": kms}
					if !reflect.DeepEqual(sse, want) {
						t.Errorf("request %d %s: SSE headers %v, want %v", i, r.Op, sse, want)
					}
				default:
					if len(sse) != 0 {
						t.Errorf("request %d %s carries SSE headers %v: S3 rejects them there", i, r.Op, sse)
					}
				}
			}
			// A test connection and a small export as PutObject, the large
			// one as a multipart upload of two or more parts.
			if ops["PutObject"] != 2 || ops["CreateMultipartUpload"] != 1 || ops["UploadPart"] < 2 || ops["CompleteMultipartUpload"] != 1 || len(ops) != 4 {
				t.Errorf("operations %v, want 2 PutObject, 1 CreateMultipartUpload, 2 or more UploadPart, 1 CompleteMultipartUpload", ops)
			}
			for _, r := range reqs {
				// The body goes as it is, its CRC32 in a header.
				if r.Op == "UploadPart" && r.Query.Get("partNumber") == "1" && r.ContentLength != 5<<20 {
					t.Errorf("part 1 is %d bytes, want the part size %d", r.ContentLength, 5<<20)
				}
				if (r.Op == "PutObject" || r.Op == "UploadPart") && r.Header.Get("X-Amz-Checksum-Crc32") == "" {
					t.Errorf("request %s carries no x-amz-checksum-crc32 header", r.Op)
				}
			}

			objs := e.objects(t, streamBucket, "acme")
			if len(objs) != 2 {
				t.Fatalf("%d objects, want the small one and the large one", len(objs))
			}
			compareRecords(t, "small object", objs[0].Lines, []write{small})
			if len(objs[1].Lines) != len(big) {
				t.Errorf("large object: %d records, want %d", len(objs[1].Lines), len(big))
			}
			for _, l := range objs[1].Lines {
				var r struct {
					Operation  string
					Properties struct {
						Key  string `json:"_key"`
						Blob string `json:"blob"`
					}
				}
				decode(t, l, &r)
				if want, ok := blobs[r.Properties.Key]; !ok || r.Properties.Blob != want || r.Operation != "c" {
					t.Errorf("large object: record of %q (%d bytes of blob) is not the entity written", r.Properties.Key, len(r.Properties.Blob))
				}
				delete(blobs, r.Properties.Key)
			}
			j.stop()
			checkAgainstLog(t, objs, readLogState(t, j.cfg, "acme"), "acme")
		})
	}
}

// TestStreamWrongRegion: a bucket in another region fails Test Connection
// with an error naming both regions.
func TestStreamWrongRegion(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamWrongRegion)
}

func testStreamWrongRegion(t *testing.T, bk backend) {
	e := startS3(t, "eu-west-1")
	j := startServe(t, bk.config(t, e)) // requires us-east-1
	key := j.account(t, "acme", true)
	r := j.testConnection(t, key, "acme", streamBucket, s3Owner)
	if r.OK || r.Error == nil || r.Error.Code != "WRONG_REGION" {
		t.Fatalf("test connection: %+v, want WRONG_REGION", r)
	}
	for _, region := range []string{"eu-west-1", "us-east-1"} {
		if !strings.Contains(r.Error.Message, region) {
			t.Errorf("message %q does not name %s", r.Error.Message, region)
		}
	}
	if code, b := j.call(t, "PUT", streamingPath("acme"), key, map[string]any{"enabled": true, "bucketName": streamBucket, "awsAccountId": s3Owner, "regionConfirmed": true}); code != http.StatusConflict {
		t.Errorf("enabling after the failed test: %d %s, want 409", code, b)
	}
}

// TestStreamDisableReenable: disabling stops at once (an upload in flight
// is given up, pending changes are never written) and changes made while
// disabled are never exported; re-enabling exports only what comes after.
func TestStreamDisableReenable(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamDisableReenable)
}

func testStreamDisableReenable(t *testing.T, bk backend) {
	e := startS3(t, "")
	cfg := bk.config(t, e)
	cfg.ExportWorkers = 1 // for the beacon
	j := startServe(t, cfg)
	b := newBeacon(t, e, j)
	key := j.account(t, "acme", true)
	j.enable(t, key, "acme", streamBucket, s3Owner)

	first := j.create(t, key, "acme", "entities", entity("acme-user-first", "test_user", []string{"User"}, "name", "First"))
	waitExported(t, j, key, "acme", 1)

	// The next upload is held in the proxy, then refused; disabling while
	// it is held must give it up for good (no retry stores it).
	e.proxy.SetFault(locals3.Fault{Delay: 3 * time.Second, Status: http.StatusServiceUnavailable, Match: func(r *http.Request) bool {
		return strings.Contains(r.URL.Path, "/"+accountPrefix("acme"))
	}})
	n := len(exportRequests(e.proxy, "acme")) // the held upload is request n
	held := j.create(t, key, "acme", "entities", entity("acme-user-held", "test_user", []string{"User"}, "name", "Held"))
	waitFor(t, 30*time.Second, "the upload of the held change to reach the proxy", func() bool {
		return len(exportRequests(e.proxy, "acme")) > n
	})
	j.save(t, key, "acme", false, streamBucket, s3Owner)
	e.proxy.SetFault(locals3.Fault{})
	// Had the held upload not been given up, the SDK would retry it after
	// the 503 (with the fault cleared) and store it within its flush, or
	// the exporter would, at most a second (its first backoff) after the
	// flush failed; and the changes made while disabled would fall due a
	// flush interval after their commit. The beacon's first change is
	// exported only after the held upload's flush has ended, the next ones
	// only after every flush due within two and a half flush intervals of
	// that.
	waitFor(t, 10*time.Second, "the proxy to answer the held upload", func() bool {
		return exportRequests(e.proxy, "acme")[n].Status != 0
	})
	while := j.create(t, key, "acme", "entities", entity("acme-user-while", "test_user", []string{"User"}, "name", "While disabled"))
	j.patch(t, key, "acme", "entities", idOf(t, first), map[string]any{"name": "First, renamed while disabled"})
	b.pass(t)
	b.passBeyond(t, time.Now().Add(2*flushInterval+flushInterval/2))
	if r := exportRequests(e.proxy, "acme"); len(r) != n+1 {
		t.Errorf("%d export requests after disabling, want none: %+v", len(r)-n-1, r[n+1:])
	}
	if st := j.state(t, key, "acme"); st.Enabled || st.Status.Enabled || st.Status.ObjectsExported != 1 {
		t.Errorf("state while disabled: %+v", st)
	}

	// Re-enabling needs no new test within the hour (same bucket and
	// owner), and starts at the log's end.
	j.save(t, key, "acme", true, streamBucket, s3Owner)
	after := j.create(t, key, "acme", "entities", entity("acme-user-after", "test_user", []string{"User"}, "name", "After"))
	waitExported(t, j, key, "acme", 2) // the counters carry over
	// A late upload of acme, due within one and a half flush intervals of
	// its export, has ended once the beacon says so.
	b.passBeyond(t, time.Now().Add(flushInterval+flushInterval/2))

	objs := e.objects(t, streamBucket, "acme")
	if len(objs) != 2 {
		t.Fatalf("%d objects, want the one before disabling and the one after re-enabling", len(objs))
	}
	compareRecords(t, "before disabling", objs[0].Lines, []write{first})
	compareRecords(t, "after re-enabling", objs[1].Lines, []write{after})
	for _, l := range lines(objs) {
		for _, w := range []write{held, while} {
			if bytes.Contains(l, []byte(idOf(t, w))) {
				t.Errorf("a change not streamed was exported: %s", l)
			}
		}
	}
	j.stop()
	ls := readLogState(t, j.cfg, "acme")
	checkAgainstLog(t, objs[1:], ls, "acme") // the log since re-enabling
}

// TestStreamCrashBetweenUploadAndCursorSave kills j1ds (SIGKILL) right
// after an object is stored and before its cursor is saved; restarted on
// the same data, it writes the same key again (overwritten, not a second
// object) and every change is in the bucket exactly once, with no gap.
func TestStreamCrashBetweenUploadAndCursorSave(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamCrashBetweenUploadAndCursorSave)
}

func testStreamCrashBetweenUploadAndCursorSave(t *testing.T, bk backend) {
	e := startS3(t, "")
	cfg := bk.config(t, e)
	first := startChild(t, e, cfg, "J1DS_FAILPOINT=export-after-upload")
	key := first.account(t, "acme", true)
	first.enable(t, key, "acme", streamBucket, s3Owner)
	var want []write
	for i := range 5 {
		want = append(want, first.create(t, key, "acme", "entities", entity("acme-user-"+strconv.Itoa(1000+i), "test_user", []string{"User"}, "n", i)))
	}
	first.killed(t)

	// The object was stored before the process died.
	keys := e.keys(t, streamBucket, accountPrefix("acme"))
	if len(keys) != 1 {
		t.Fatalf("after the crash: keys %v, want the one object stored", keys)
	}
	crashed := e.get(t, streamBucket, keys[0])
	if len(crashed.Lines) == 0 {
		t.Fatalf("the object stored before the crash is empty")
	}
	compareRecords(t, "stored before the crash", crashed.Lines, want[:len(crashed.Lines)])

	// Restarted without the failpoint, the batch is written again, to the
	// same key.
	second := startChild(t, e, cfg)
	st := waitExported(t, second.j1, key, "acme", len(want))
	if st.Status.ObjectsExported != 1 || st.Status.LastExportKey != keys[0] {
		t.Errorf("after the restart: %d objects exported, the last %q; want 1, %q", st.Status.ObjectsExported, st.Status.LastExportKey, keys[0])
	}
	puts := 0
	for _, r := range exportRequests(e.proxy, "acme") {
		if r.Op == "PutObject" && strings.HasSuffix(r.Path, "/"+keys[0]) && r.Status == http.StatusOK {
			puts++
		}
	}
	if puts != 2 {
		t.Errorf("%d successful PutObject of %s, want 2 (before the crash and after the restart)", puts, keys[0])
	}

	// Later changes go on in a new object.
	more := second.create(t, key, "acme", "entities", entity("acme-user-later", "test_user", []string{"User"}, "n", 99))
	want = append(want, more)
	waitExported(t, second.j1, key, "acme", len(want))
	objs := e.objects(t, streamBucket, "acme")
	if len(objs) != 2 || objs[0].Key != keys[0] {
		t.Fatalf("objects %v, want %s and one more", objKeys(objs), keys[0])
	}
	compareRecords(t, "every change once", lines(objs), want)
	second.stop()
	checkAgainstLog(t, objs, readLogState(t, cfg, "acme"), "acme")
}

func objKeys(objs []s3Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

// TestStreamS3Outage: S3 answers 503 SlowDown, then resets connections,
// for several seconds while changes keep coming. The exporter retries, the
// cursor moves only on success, and afterwards every change is in the
// bucket exactly once, in order, and the status's error is cleared.
func TestStreamS3Outage(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamS3Outage)
}

func testStreamS3Outage(t *testing.T, bk backend) {
	e := startS3(t, "")
	j := startServe(t, bk.config(t, e))
	key := j.account(t, "acme", true)
	j.enable(t, key, "acme", streamBucket, s3Owner)

	// A writer commits a change every 100 ms throughout.
	var (
		mu      sync.Mutex
		want    []write
		stopped = make(chan struct{})
		done    = make(chan struct{})
		once    sync.Once
	)
	stopWriter := func() { once.Do(func() { close(stopped); <-done }) }
	t.Cleanup(stopWriter) // before j1ds stops, should the test end early
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stopped:
				return
			case <-time.After(100 * time.Millisecond):
			}
			code, b := j.call(t, "POST", "/api/v1/accounts/acme/entities", key, entity("acme-user-"+strconv.Itoa(10000+i), "test_user", []string{"User"}, "n", i))
			if code != http.StatusCreated {
				t.Errorf("create %d: %d %s", i, code, b)
				return
			}
			mu.Lock()
			want = append(want, write{op: "c", kind: "entity", props: b})
			mu.Unlock()
		}
	}()
	exports := func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/"+accountPrefix("acme")) }
	seen := map[string]string{} // status error code: message
	// phase lasts at least d, and until the status shows code ("" for
	// none), within a minute.
	phase := func(d time.Duration, code string) {
		end := time.Now().Add(d)
		waitFor(t, time.Minute, "the status to show "+code, func() bool {
			if p := j.state(t, key, "acme").Status.LastError; p != nil {
				seen[p.Code] = p.Message
			}
			return time.Now().After(end) && (code == "" || seen[code] != "")
		})
	}
	phase(1500*time.Millisecond, "") // streaming normally
	e.proxy.SetFault(locals3.Fault{Status: http.StatusServiceUnavailable, Count: -1, Match: exports})
	phase(3*time.Second, "THROTTLED")
	e.proxy.SetFault(locals3.Fault{Reset: true, Count: -1, Match: exports})
	phase(3*time.Second, "NETWORK")
	e.proxy.SetFault(locals3.Fault{})
	phase(time.Second, "") // changes keep coming after the outage too
	stopWriter()

	mu.Lock()
	defer mu.Unlock()
	var st streamingState
	waitFor(t, 90*time.Second, "every change to be exported after the outage", func() bool {
		st = j.state(t, key, "acme")
		return st.Status.EventsExported >= int64(len(want)) && st.Status.PendingSince == nil
	})
	if st.Status.LastError != nil || st.Status.Failures != 0 {
		t.Errorf("after recovering, the status still shows an error: %+v, %d failures", st.Status.LastError, st.Status.Failures)
	}
	if len(seen) != 2 {
		t.Errorf("the status showed errors %v during the outage, want THROTTLED and NETWORK only", seen)
	}
	faults := map[string]int{}
	for _, r := range exportRequests(e.proxy, "acme") {
		faults[r.Fault]++
	}
	if faults["status"] == 0 || faults["reset"] == 0 || faults[""] == 0 {
		t.Errorf("export requests by fault: %v, want some refused, some reset and some through", faults)
	}
	objs := e.objects(t, streamBucket, "acme")
	compareRecords(t, "after the outage", lines(objs), want)
	j.stop()
	checkAgainstLog(t, objs, readLogState(t, j.cfg, "acme"), "acme")
}

// TestStreamManyAccounts: 1,000 enabled accounts over 5 buckets (each
// owned by another AWS account), one change each: every account's object
// lands in its own bucket under its own prefix, and every request names
// the owner of the bucket it writes to. 995 accounts are enabled directly
// in the data directory (accounts and settings stores) before j1ds
// starts, as if saved earlier; 5 go through the API.
func TestStreamManyAccounts(t *testing.T) {
	t.Parallel()
	onBackends(t, testStreamManyAccounts)
}

func testStreamManyAccounts(t *testing.T, bk backend) {
	const accountsN, viaAPI = 1000, 5
	e := startS3(t, "")
	ctx := context.Background()
	buckets := []string{"fleet-bucket-0", "fleet-bucket-1", "fleet-bucket-2", "fleet-bucket-3", "fleet-bucket-4"}
	owners := map[string]string{}
	for i, b := range buckets {
		owner := "20000000000" + strconv.Itoa(i)
		if err := e.srv.CreateAccount(ctx, owner, "fleet-owner-secret-"+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
		e.bucket(t, b, owner, locals3.WriterPolicy(b, s3Writer))
		owners[b] = owner
	}
	id := func(i int) string { return fmt.Sprintf("tenant-%04d", i) }
	bucketOf := func(i int) string { return buckets[i%len(buckets)] }

	cfg := bk.config(t, e)
	cfg.ExportWorkers = 16 // uploads are mostly waiting on S3
	keys := enableOffline(t, cfg, viaAPI, accountsN, id, func(i int) (string, string) { return bucketOf(i), owners[bucketOf(i)] })

	j := startServe(t, cfg)
	for i := range viaAPI {
		keys[i] = j.account(t, id(i), true)
		j.enable(t, keys[i], id(i), bucketOf(i), owners[bucketOf(i)])
	}
	// One change per account.
	parallel(accountsN, func(i int) {
		code, b := j.call(t, "POST", "/api/v1/accounts/"+id(i)+"/entities", keys[i], entity(id(i)+"-user", "test_user", []string{"User"}, "n", i))
		if code != http.StatusCreated {
			t.Errorf("create in %s: %d %s", id(i), code, b)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// Wait for an export per account (the proxy counts them: listing
	// buckets over and over would slow versitygw down), then list.
	waitFor(t, 2*time.Minute, "an object for each of the accounts", func() bool {
		n := 0
		for _, r := range e.proxy.Requests() {
			if r.Op == "PutObject" && r.Status == http.StatusOK && strings.Contains(r.Path, "/jupiterone/graph/cdc/") {
				n++
			}
		}
		return n >= accountsN
	})
	byBucket := map[string][]string{}
	for _, b := range buckets {
		byBucket[b] = e.keys(t, b, "jupiterone/graph/cdc/")
	}
	seen := map[string]string{} // account: key
	for _, b := range buckets {
		for _, k := range byBucket[b] {
			m := keyRE.FindStringSubmatch(k)
			if m == nil {
				t.Errorf("%s: key %q does not follow the layout", b, k)
				continue
			}
			var i int
			if _, err := fmt.Sscanf(m[1], "tenant-%04d", &i); err != nil || id(i) != m[1] {
				t.Errorf("%s: key %q of no account", b, k)
				continue
			}
			if bucketOf(i) != b {
				t.Errorf("%s's object %s is in %s, its bucket is %s", m[1], k, b, bucketOf(i))
			}
			if prev, dup := seen[m[1]]; dup {
				t.Errorf("%s has two objects: %s and %s", m[1], prev, k)
			}
			seen[m[1]] = k
		}
	}
	if len(seen) != accountsN {
		t.Fatalf("%d of %d accounts have an object", len(seen), accountsN)
	}
	// Each object holds its account's change, and only that.
	parallel(accountsN, func(i int) {
		o, err := e.read(bucketOf(i), seen[id(i)])
		if err != nil {
			t.Error(err)
			return
		}
		var r struct {
			Properties struct {
				Account string `json:"_accountId"`
				Key     string `json:"_key"`
			}
		}
		if len(o.Lines) != 1 {
			t.Errorf("%s: %d records, want 1", o.Key, len(o.Lines))
		} else if err := json.Unmarshal(o.Lines[0], &r); err != nil || r.Properties.Account != id(i) || r.Properties.Key != id(i)+"-user" {
			t.Errorf("%s holds %s", o.Key, o.Lines[0])
		}
	})

	for _, r := range e.proxy.Requests() {
		b, _, _ := strings.Cut(strings.TrimPrefix(r.Path, "/"), "/")
		if want := owners[b]; r.ExpectedBucketOwner() != want || !r.TLS {
			t.Errorf("%s %s: expected bucket owner %q (TLS %v), want %s", r.Op, r.Path, r.ExpectedBucketOwner(), r.TLS, want)
		}
	}
}
