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
	"path/filepath"
	"sort"
	"strings"
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
	Listen        string
	FlushInterval time.Duration
	SyncEvery     time.Duration
	Entities      int
}

func runDemo(ctx context.Context, args []string) error {
	c := demoConfig{Listen: "127.0.0.1:8080", FlushInterval: 15 * time.Second, SyncEvery: 5 * time.Second, Entities: 300}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&c.Dir, "dir", "", "working directory (S3 data, j1ds data, logs); default: a temporary one, removed at exit")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of j1ds's API and settings page")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "j1ds's flush interval (the product uses 5 to 15 minutes)")
	fs.DurationVar(&c.SyncEvery, "sync-every", c.SyncEvery, "how often the synthetic integration syncs")
	fs.IntVar(&c.Entities, "entities", c.Entities, "size of the synthetic graph")
	if err := envFlags(fs, args); err != nil {
		return err
	}
	if c.FlushInterval < exporter.MinFlushInterval || c.SyncEvery < time.Second || c.Entities < 10 {
		return fmt.Errorf("%w: --flush-interval and --sync-every must be at least 1s, --entities at least 10", errUsage)
	}
	if c.Dir == "" {
		d, err := os.MkdirTemp("", "j1ds-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.Dir = d
	}
	return demo(ctx, c, os.Stdout)
}

func demo(ctx context.Context, c demoConfig, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	say("j1ds demo: a local S3 server (versitygw over TLS), j1ds, and a synthetic integration.")
	say("Working directory: %s", c.Dir)

	srv, err := locals3.Start(ctx, locals3.Options{Dir: filepath.Join(c.Dir, "s3"), Progress: out})
	if err != nil {
		return fmt.Errorf("start the local S3 server: %w", err)
	}
	defer srv.Close()
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
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	addrc := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- serve.Run(sctx, cfg, log, func(a string) { addrc <- a }) }()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a
	case err := <-served:
		return fmt.Errorf("start j1ds: %w", err)
	}
	defer func() { stop(); <-served }()
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
	say("Data streaming enabled: bucket %s, flush interval %s. Objects appear below as they land; Ctrl-C stops.", demoBucket, c.FlushInterval)
	say("")

	errc := make(chan error, 2)
	go func() { errc <- demoSync(ctx, c, g, client, out) }()
	go func() { errc <- demoWatch(ctx, srv.RootClient(), out) }()
	select {
	case <-ctx.Done():
		say("\nStopping: j1ds flushes what is pending, then everything stops.")
		return nil
	case err := <-errc:
		return err
	case err := <-served:
		served <- err
		return fmt.Errorf("j1ds stopped: %w", err)
	}
}

// demoSync runs the synthetic integration until ctx ends.
func demoSync(ctx context.Context, c demoConfig, g *synth.Graph, client *synth.Client, out io.Writer) error {
	t := time.NewTicker(c.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ents, rels := g.Step()
		j, err := client.Sync(ctx, demoScope, ents, rels)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		fmt.Fprintf(out, "  sync: entities +%d ~%d -%d, relationships +%d ~%d -%d\n",
			j.NumEntitiesCreated, j.NumEntitiesUpdated, j.NumEntitiesDeleted,
			j.NumRelationshipsCreated, j.NumRelationshipsUpdated, j.NumRelationshipsDeleted)
	}
}

// demoWatch lists the bucket and shows each new object. It reads as the
// server's root user: on versitygw a bucket policy replaces the owner's
// own access, and the policy grants only the writer.
func demoWatch(ctx context.Context, s3c *s3.Client, out io.Writer) error {
	seen := map[string]bool{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var keys []string
		p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: aws.String(demoBucket), Prefix: aws.String(exporter.KeyPrefix)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				return fmt.Errorf("list bucket: %w", err)
			}
			for _, o := range page.Contents {
				if k := aws.ToString(o.Key); !seen[k] {
					keys = append(keys, k)
				}
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			seen[k] = true
			if err := showObject(ctx, s3c, k, out); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

func showObject(ctx context.Context, s3c *s3.Client, key string, out io.Writer) error {
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(demoBucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(obj.Body, 1<<30))
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s is not gzip: %w", key, err)
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
			return fmt.Errorf("%s line %d: %w", key, n+1, err)
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
		return fmt.Errorf("%s: %w", key, err)
	}
	fmt.Fprintf(out, "object %s\n  %d records (%d bytes gzip): entities c%d u%d d%d, relationships c%d u%d d%d\n  sample: %s\n",
		key, n, len(raw), ops["ec"], ops["eu"], ops["ed"], ops["rc"], ops["ru"], ops["rd"], sample)
	return nil
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
