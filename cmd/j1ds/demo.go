package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/serve"
	"github.com/j1ds/j1ds/internal/testbed/locals3"
	"github.com/j1ds/j1ds/internal/testbed/synth"
)

// The demo's cast: a customer's AWS account owning the bucket, and the
// operator's AWS account that j1ds writes as (versitygw accepts access keys
// as policy principals, so the writer's access key is that account id).
const (
	demoOwnerAccount    = "111122223333"
	demoPlatformAccount = "123456789012"
	demoBucket          = "acme-security-lake"
	demoAccount         = "acme"
	demoScope           = "synth-aws-1"
)

type demoConfig struct {
	Dir           string
	Keep          bool // Dir was given: keep it at exit and say how to read it
	Listen        string
	FlushInterval time.Duration
	SyncEvery     time.Duration
	Entities      int
	// StopTimeout bounds the wait for the integration's last sync and for
	// j1ds's final flush after Ctrl-C.
	StopTimeout time.Duration
}

// demoStopTimeout is the default of demoConfig.StopTimeout: above serve's
// own bounds (30 s to drain requests, 30 s for the final flush).
const demoStopTimeout = 2 * time.Minute

// demoInspectAddr is where the printed command starts the local S3 server
// again on a kept directory.
const demoInspectAddr = "127.0.0.1:7070"

func runDemo(ctx context.Context, args []string) error {
	c := demoConfig{Listen: "127.0.0.1:8080", FlushInterval: 15 * time.Second, SyncEvery: 5 * time.Second, Entities: 300, StopTimeout: demoStopTimeout}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&c.Dir, "dir", "", "working directory (S3 data, j1ds data, logs), kept at exit with a note on how to read the bucket; default: a temporary one, removed at exit")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of j1ds's API and settings page")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "j1ds's flush interval (the product uses 5 to 15 minutes)")
	fs.DurationVar(&c.SyncEvery, "sync-every", c.SyncEvery, "how often the synthetic integration syncs")
	fs.IntVar(&c.Entities, "entities", c.Entities, "size of the synthetic graph")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", c.StopTimeout, "after Ctrl-C, how long to wait for the last sync and for j1ds's final flush before giving up")
	if err := envFlags(fs, args); err != nil {
		return err
	}
	if c.FlushInterval < exporter.MinFlushInterval || c.SyncEvery < time.Second || c.Entities < 10 || c.StopTimeout < time.Second {
		return fmt.Errorf("%w: --flush-interval, --sync-every and --stop-timeout must be at least 1s, --entities at least 10", errUsage)
	}
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "j1ds-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.Dir = d
	} else {
		d, err := filepath.Abs(c.Dir)
		if err != nil {
			return err
		}
		c.Dir, c.Keep = d, true
		// A second run would meet the first one's S3 accounts and j1ds
		// account; the kept data stay as they are.
		for _, sub := range []string{"s3", "data"} {
			if entries, err := os.ReadDir(filepath.Join(d, sub)); err == nil && len(entries) > 0 {
				return fmt.Errorf("%w: --dir %s already holds a demo's data (%s): give a new or empty directory; to read the bucket kept there, see %s",
					errUsage, d, filepath.Join(d, sub), filepath.Join(d, "inspect-bucket.txt"))
			}
		}
	}
	// main ends ctx at the first Ctrl-C (or SIGTERM); the second one, seen
	// here, forces the exit while the demo waits for its parts to stop.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	force, done := make(chan struct{}), make(chan struct{})
	defer close(done)
	go func() {
		for n := 0; ; {
			select {
			case <-sig:
				if n++; n == 2 {
					close(force)
					return
				}
			case <-done:
				return
			}
		}
	}()
	return demo(ctx, c, os.Stdout, force)
}

// demo runs the local S3 server, j1ds and the synthetic integration until
// ctx ends (Ctrl-C), then stops them in the order that loses nothing: the
// integration (its sync under way finishes), j1ds (its final flush exports
// every committed change) and only then the S3 server. It waits for each at
// most c.StopTimeout, and not at all once force is closed (a second
// Ctrl-C). It returns an error when the bucket does not hold every change
// the integration committed while streaming was on.
func demo(ctx context.Context, c demoConfig, out io.Writer, force <-chan struct{}) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	say("j1ds demo: a local S3 server (versitygw over TLS), j1ds, and a synthetic integration.")
	say("Working directory: %s", c.Dir)

	srv, err := locals3.Start(ctx, locals3.Options{Dir: filepath.Join(c.Dir, "s3"), Progress: out})
	if err != nil {
		return fmt.Errorf("start the local S3 server: %w", err)
	}
	defer srv.Close() // versitygw has its own process group: Ctrl-C does not stop it, this does
	ownerSecret, writerSecret := randomHex(20), randomHex(20)
	for _, a := range []struct{ id, secret string }{{demoOwnerAccount, ownerSecret}, {demoPlatformAccount, writerSecret}} {
		if err := srv.CreateAccount(ctx, a.id, a.secret); err != nil {
			return fmt.Errorf("create S3 account %s: %w", a.id, err)
		}
	}
	if err := srv.CreateBucket(ctx, demoBucket, demoOwnerAccount); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	if err := srv.PutBucketPolicy(ctx, demoBucket, locals3.WriterPolicy(demoBucket, demoPlatformAccount)); err != nil {
		return fmt.Errorf("apply the bucket policy: %w", err)
	}
	say("S3: %s, bucket %s owned by AWS account %s, writable by j1ds only under jupiterone/ over TLS.", srv.Endpoint, demoBucket, demoOwnerAccount)

	// j1ds itself, on its real code path: serve with an S3 endpoint.
	cfg := serve.DefaultConfig()
	cfg.Data, cfg.Listen, cfg.FlushInterval = filepath.Join(c.Dir, "data"), c.Listen, c.FlushInterval
	cfg.OperatorKey = "j1op_" + randomHex(24)
	cfg.PlatformAccountID = demoPlatformAccount
	cfg.S3.Endpoint, cfg.S3.Region, cfg.S3.RootCAs = srv.Endpoint, srv.Region, srv.CAPool
	cfg.S3.Credentials = credentials.NewStaticCredentialsProvider(demoPlatformAccount, writerSecret, "")
	if err := cfg.Validate(); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(c.Dir, "j1ds.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := slog.New(slog.NewJSONHandler(logFile, nil))

	// The parts run until the demo stops them, one after the other: ctx's
	// end (Ctrl-C) stops none of them by itself.
	life := context.WithoutCancel(ctx)
	stopWait := func(what string, done <-chan struct{}) error {
		t := time.NewTimer(c.StopTimeout)
		defer t.Stop()
		select {
		case <-done:
			return nil
		case <-force:
			return fmt.Errorf("second Ctrl-C: stopped without waiting for %s; the bucket may lack the last changes", what)
		case <-t.C:
			return fmt.Errorf("gave up waiting for %s after %s (--stop-timeout); the bucket may lack the last changes, see %s", what, c.StopTimeout, filepath.Join(c.Dir, "j1ds.log"))
		}
	}
	sctx, stopServe := context.WithCancel(life)
	defer stopServe()
	addrc := make(chan string, 1)
	var servedErr error
	served := make(chan struct{})
	go func() {
		defer close(served)
		servedErr = serve.Run(sctx, cfg, log, func(a string) { addrc <- a })
	}()
	// stopJ1ds stops j1ds and waits for serve.Run to return, which it does
	// after its final flush.
	stopJ1ds := func() error {
		stopServe()
		if err := stopWait("j1ds's final flush", served); err != nil {
			return err
		}
		if servedErr != nil {
			return fmt.Errorf("j1ds stopped: %w", servedErr)
		}
		return nil
	}
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case <-served:
		return fmt.Errorf("start j1ds: %w", servedErr)
	case <-ctx.Done():
		return errors.Join(ctx.Err(), stopJ1ds())
	}
	stopped := false // stopJ1ds ran, in order, below
	defer func() {
		if !stopped {
			_ = stopJ1ds()
		}
	}()
	say("j1ds: %s (logs in %s)", base, logFile.Name())

	api := &demoAPI{base: base, http: &http.Client{Timeout: 30 * time.Second}}
	if err := api.call(ctx, "POST", "/operator/v1/accounts", cfg.OperatorKey, map[string]any{"id": demoAccount, "entitlements": []string{"data-streaming"}}, nil); err != nil {
		return err
	}
	var key struct{ Key string }
	if err := api.call(ctx, "POST", "/operator/v1/accounts/"+demoAccount+"/api-keys", cfg.OperatorKey, map[string]any{"role": "admin"}, &key); err != nil {
		return err
	}
	say("")
	say("Account %q, administrator API key:\n  %s", demoAccount, key.Key)
	say("Settings page: %s/settings/data-streaming (sign in with account %q and the key)", base, demoAccount)
	say("Settings API:  %s/api/v1/accounts/%s/data-streaming (Authorization: Bearer <key>)", base, demoAccount)
	say("")

	// The integration's first sync happens before streaming is enabled:
	// it is not exported (no backfill).
	g := synth.New(synth.Config{Seed: 1, Scope: demoScope, Entities: c.Entities})
	client := &synth.Client{BaseURL: base, Account: demoAccount, APIKey: key.Key, HTTP: api.http}
	ents, rels := g.Step()
	say("Synthetic integration: first sync of %d entities and %d relationships (before streaming is on: not exported)...", len(ents), len(rels))
	if _, err := client.Sync(ctx, demoScope, ents, rels); err != nil {
		return fmt.Errorf("first sync: %w", err)
	}

	// Enable streaming exactly as an administrator does.
	form := map[string]any{"bucketName": demoBucket, "awsAccountId": demoOwnerAccount, "regionConfirmed": true}
	var test struct {
		OK    bool
		Error *struct{ Code, Message string }
	}
	if err := api.call(ctx, "POST", "/api/v1/accounts/"+demoAccount+"/data-streaming/test-connection", key.Key, form, &test); err != nil {
		return err
	}
	if !test.OK {
		return fmt.Errorf("test connection failed: %s: %s", test.Error.Code, test.Error.Message)
	}
	say("Test Connection: ok (wrote jupiterone/.connection-test)")
	form["enabled"] = true
	if err := api.call(ctx, "PUT", "/api/v1/accounts/"+demoAccount+"/data-streaming", key.Key, form, nil); err != nil {
		return err
	}
	say("Data streaming enabled: bucket %s, flush interval %s.", demoBucket, c.FlushInterval)
	say("List the bucket with the AWS CLI meanwhile (as the S3 server's root user: the bucket policy lets j1ds only write):")
	say("  %s", awsListCommand(srv, srv.Endpoint))
	say("Objects appear below as they land. Ctrl-C stops: the integration, then j1ds after its final flush, then the S3 server.")
	say("")

	syncer := &demoSyncer{every: c.SyncEvery, graph: g, client: client, out: out, stop: make(chan struct{}), done: make(chan struct{})}
	watcher := &demoWatcher{s3: srv.RootClient(), out: out, seen: map[string]bool{}}
	wctx, stopWatch := context.WithCancel(life)
	defer stopWatch()
	errc := make(chan error, 2)
	go func() { defer close(syncer.done); errc <- syncer.run(life) }()
	watched := make(chan struct{})
	go func() { defer close(watched); errc <- watcher.run(wctx) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	case <-served:
		return fmt.Errorf("j1ds stopped: %v", servedErr)
	}

	say("")
	say("Stopping (Ctrl-C again to stop at once): the integration first, then j1ds after its final flush, then the S3 server.")
	close(syncer.stop)
	if err := stopWait("the integration's last sync", syncer.done); err != nil {
		return err
	}
	say("Integration stopped: %d changes committed while streaming was on. j1ds is flushing them...", syncer.committed)
	stopped = true
	if err := stopJ1ds(); err != nil {
		return err
	}
	say("j1ds stopped.")
	stopWatch()
	<-watched
	// A last look at the bucket, S3 still up: the objects of the final flush.
	if err := watcher.pass(life); err != nil {
		return err
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("stop the local S3 server: %w", err)
	}
	where := fmt.Sprintf("s3://%s/%saccountId=%s/ (removed with the temporary working directory; --dir keeps it)", demoBucket, exporter.KeyPrefix, demoAccount)
	if c.Keep {
		where = fmt.Sprintf("s3://%s/%saccountId=%s/ (kept in %s)", demoBucket, exporter.KeyPrefix, demoAccount, filepath.Join(srv.Dir, "data", demoBucket))
	}
	say("S3 server stopped.")
	say("")
	summary := fmt.Sprintf("Summary: %d object(s) with %d events written to %s; the integration committed %d changes while streaming was on", watcher.objects, watcher.events, where, syncer.committed)
	if watcher.events != syncer.committed {
		say("%s: %d are not in the bucket (see %s).", summary, syncer.committed-watcher.events, logFile.Name())
		return fmt.Errorf("the bucket holds %d events of the %d changes committed while streaming was on", watcher.events, syncer.committed)
	}
	say("%s: all of them are in the bucket.", summary)
	if c.Keep {
		note := demoInspectNote(c, srv)
		say("")
		fmt.Fprint(out, note)
		if err := os.WriteFile(filepath.Join(c.Dir, "inspect-bucket.txt"), []byte(note), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// awsListCommand is an AWS CLI command line that lists every object of the
// demo's bucket on endpoint, as the S3 server's root user.
func awsListCommand(srv *locals3.Server, endpoint string) string {
	return fmt.Sprintf("AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_CA_BUNDLE=%s aws --endpoint-url %s --region %s s3 ls --recursive s3://%s/",
		srv.RootAccess, srv.RootSecret, srv.CAFile, endpoint, srv.Region, demoBucket)
}

// demoInspectNote says how to read a kept working directory's bucket once
// the demo has stopped: on disk, with j1ds verify, and through S3 by
// starting versitygw again on it.
func demoInspectNote(c demoConfig, srv *locals3.Server) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	bucketDir := filepath.Join(srv.Dir, "data", demoBucket)
	p("The working directory %s is kept (this note is in %s too).", c.Dir, filepath.Join(c.Dir, "inspect-bucket.txt"))
	p("The bucket is a plain directory (versitygw's posix backend, a file per object): %s", filepath.Join(bucketDir, exporter.KeyPrefix))
	p("Check its objects (from the j1ds checkout):")
	p("  go run ./cmd/j1ds verify --account %s --dir %s", demoAccount, bucketDir)
	p("Read it through S3 again: start the local S3 server on it (the same TLS certificate, accounts and root credentials; Ctrl-C stops it):")
	p("  %s", srv.ShellCommand(demoInspectAddr))
	p("and, in another shell, with the AWS CLI:")
	p("  %s", awsListCommand(srv, "https://"+demoInspectAddr))
	p("  endpoint https://%s, region %s, CA file %s, root access key %s, secret %s", demoInspectAddr, srv.Region, srv.CAFile, srv.RootAccess, srv.RootSecret)
	p("  (the bucket's owner is AWS account %s, on versitygw the user whose access key is that id; the bucket policy grants only j1ds's writes and versitygw then refuses the owner too, so read as the root user)", demoOwnerAccount)
	return b.String()
}

// demoSyncer runs the synthetic integration: a sync every interval until
// stop is closed. A sync under way when stop closes finishes, so that
// committed counts every change j1ds committed for it.
type demoSyncer struct {
	every  time.Duration
	graph  *synth.Graph
	client *synth.Client
	out    io.Writer
	stop   chan struct{}
	done   chan struct{} // closed when run returned
	// committed counts the changes of the syncs that finished.
	committed int
}

func (s *demoSyncer) run(ctx context.Context) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return nil
		case <-t.C:
		}
		ents, rels := s.graph.Step()
		j, err := s.client.Sync(ctx, demoScope, ents, rels)
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		s.committed += j.NumEntitiesCreated + j.NumEntitiesUpdated + j.NumEntitiesDeleted +
			j.NumRelationshipsCreated + j.NumRelationshipsUpdated + j.NumRelationshipsDeleted
		fmt.Fprintf(s.out, "  sync: entities +%d ~%d -%d, relationships +%d ~%d -%d (%d changes committed so far)\n",
			j.NumEntitiesCreated, j.NumEntitiesUpdated, j.NumEntitiesDeleted,
			j.NumRelationshipsCreated, j.NumRelationshipsUpdated, j.NumRelationshipsDeleted, s.committed)
	}
}

// demoWatcher lists the bucket and shows each new object. It reads as the
// server's root user: on versitygw a bucket policy replaces the owner's
// own access, and the policy grants only the writer.
type demoWatcher struct {
	s3   *s3.Client
	out  io.Writer
	seen map[string]bool
	// objects and events count what pass has shown.
	objects, events int
}

// run calls pass every second until ctx ends.
func (w *demoWatcher) run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := w.pass(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

// pass shows the objects that appeared since the last pass.
func (w *demoWatcher) pass(ctx context.Context) error {
	var keys []string
	p := s3.NewListObjectsV2Paginator(w.s3, &s3.ListObjectsV2Input{Bucket: aws.String(demoBucket), Prefix: aws.String(exporter.KeyPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list bucket: %w", err)
		}
		for _, o := range page.Contents {
			if k := aws.ToString(o.Key); !w.seen[k] {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		n, err := showObject(ctx, w.s3, k, w.out)
		if err != nil {
			return err
		}
		w.seen[k] = true
		w.objects++
		w.events += n
	}
	return nil
}

// showObject prints an object's key, its records by kind and a sample
// record, and returns how many records it holds.
func showObject(ctx context.Context, s3c *s3.Client, key string, out io.Writer) (int, error) {
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(demoBucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(obj.Body, 1<<30))
	if err != nil {
		return 0, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return 0, fmt.Errorf("%s is not gzip: %w", key, err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	ops := map[string]int{}
	var sample string
	n := 0
	for sc.Scan() {
		var rec struct {
			Operation  string         `json:"operation"`
			EventType  string         `json:"eventType"`
			Properties map[string]any `json:"properties"`
			Labels     []string       `json:"labels"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return 0, fmt.Errorf("%s line %d: %w", key, n+1, err)
		}
		n++
		ops[rec.EventType[:1]+rec.Operation]++
		if sample == "" {
			labels, _ := json.Marshal(rec.Labels)
			sample = fmt.Sprintf(`{"operation":%q,"eventType":%q,"labels":%s,"properties":{"_key":%q,"_type":%q,"_version":%v,...}}`,
				rec.Operation, rec.EventType, labels, rec.Properties["_key"], rec.Properties["_type"], rec.Properties["_version"])
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	fmt.Fprintf(out, "object %s\n  %d records (%d bytes gzip): entities c%d u%d d%d, relationships c%d u%d d%d\n  sample: %s\n",
		key, n, len(raw), ops["ec"], ops["eu"], ops["ed"], ops["rc"], ops["ru"], ops["rd"], sample)
	return n, nil
}

// demoAPI calls j1ds's HTTP API as a user would.
type demoAPI struct {
	base string
	http *http.Client
}

func (a *demoAPI) call(ctx context.Context, method, path, key string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(rb)))
	}
	if out != nil {
		return json.Unmarshal(rb, out)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed"))
	}
	return hex.EncodeToString(b)
}
