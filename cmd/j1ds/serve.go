package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/failpoint"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/malloc"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// serveConfig is the configuration of j1ds serve.
type serveConfig struct {
	Data              string
	Listen            string
	OperatorKey       string
	LogRetention      time.Duration
	LogRetentionBytes int64
	// LogRetentionInterval is the time between retention passes.
	LogRetentionInterval time.Duration
	MaxBody              int64
	MinFreeBytes         int64
	LogLevel             string

	// Data streaming.
	FlushInterval     time.Duration
	MaxBatchBytes     int64
	ExportWorkers     int
	GzipLevel         int
	S3                s3dest.Config
	PlatformAccountID string

	// test holds hooks that only tests set; no flag reaches them.
	test serveTestHooks
}

// serveTestHooks let tests of this package reach into serve.
type serveTestHooks struct {
	// freeSpace replaces statfs as the data directory's free space
	// (graph.Options.FreeSpace).
	freeSpace func(dir string) (uint64, error)
	// storeOpened receives the store once it is open, to read its log.
	storeOpened func(*graph.Store)
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Data:                 "./j1ds-data",
		Listen:               "127.0.0.1:8080",
		LogRetention:         7 * 24 * time.Hour,
		LogRetentionBytes:    8 << 30,
		LogRetentionInterval: time.Minute,
		MaxBody:              api.DefaultMaxBody,
		MinFreeBytes:         graph.DefaultMinFreeBytes,
		LogLevel:             "info",
		FlushInterval:        exporter.DefaultFlushInterval,
		MaxBatchBytes:        exporter.DefaultMaxBatchBytes,
		ExportWorkers:        4,
		GzipLevel:            exporter.DefaultGzipLevel,
		S3:                   s3dest.Config{Region: s3dest.DefaultRegion, PartSize: s3dest.DefaultPartSize, Suffix: s3dest.DefaultSuffix},
	}
}

func newServeFlags(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Data, "data", c.Data, "data directory (graph store, transaction log, settings)")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the HTTP API")
	fs.StringVar(&c.OperatorKey, "operator-key", c.OperatorKey, "key of the operator API; when empty, one is generated into DATA/operator-key")
	fs.DurationVar(&c.LogRetention, "log-retention", c.LogRetention, "keep transaction log entries this long (0: no age limit)")
	fs.Int64Var(&c.LogRetentionBytes, "log-retention-bytes", c.LogRetentionBytes, "keep at most this many bytes of transaction log (0: no size limit)")
	fs.DurationVar(&c.LogRetentionInterval, "log-retention-interval", c.LogRetentionInterval, "time between two retention passes over the transaction log")
	fs.Int64Var(&c.MaxBody, "max-body", c.MaxBody, "largest request body accepted, in bytes after gzip decoding")
	fs.Int64Var(&c.MinFreeBytes, "min-free-bytes", c.MinFreeBytes, "refuse writes (507) while the data directory has less free space than this; -1: never")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "write an account's changes when the oldest is this old (at least 1s)")
	fs.Int64Var(&c.MaxBatchBytes, "max-batch-bytes", c.MaxBatchBytes, "write an object at once when its records reach this many bytes (uncompressed)")
	fs.IntVar(&c.ExportWorkers, "export-workers", c.ExportWorkers, "objects built and uploaded at once")
	fs.IntVar(&c.GzipLevel, "gzip-level", c.GzipLevel, "gzip level of objects, 1 (fastest) to 9 (smallest)")
	fs.StringVar(&c.S3.Region, "region", c.S3.Region, "the AWS region customers' buckets must be in")
	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", c.S3.Endpoint, "S3-compatible endpoint (path-style), e.g. https://127.0.0.1:7070; empty for AWS")
	fs.BoolVar(&c.S3.AllowInsecureEndpoint, "allow-insecure-endpoint", c.S3.AllowInsecureEndpoint, "allow a plain http:// --s3-endpoint (development only)")
	fs.StringVar(&c.S3.AssumeRoleARN, "assume-role-arn", c.S3.AssumeRoleARN, "assume this role (jupiterone-data-streaming) with the standard credential chain")
	fs.StringVar(&c.S3.KMSKeyID, "kms-key-id", c.S3.KMSKeyID, "request SSE-KMS with this key; empty: the bucket's default encryption")
	fs.Int64Var(&c.S3.PartSize, "part-size", c.S3.PartSize, "multipart threshold and part size in bytes (at least 5 MiB)")
	fs.StringVar(&c.S3.Suffix, "object-suffix", c.S3.Suffix, "object key suffix: .jsonl or .jsonl.gz")
	fs.StringVar(&c.PlatformAccountID, "platform-aws-account-id", c.PlatformAccountID, "the operator's AWS account id for the bucket policy; empty: asked of STS")
	return fs
}

// Validate checks the configuration; errors name the flag and the value.
func (c *serveConfig) Validate() error {
	var errs []error
	if c.Data == "" {
		errs = append(errs, errors.New("--data must name a directory"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q is not host:port: %v", c.Listen, err))
	}
	if c.LogRetention < 0 {
		errs = append(errs, fmt.Errorf("--log-retention %s must not be negative", c.LogRetention))
	}
	if c.LogRetentionBytes < 0 {
		errs = append(errs, fmt.Errorf("--log-retention-bytes %d must not be negative", c.LogRetentionBytes))
	}
	if c.LogRetentionInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--log-retention-interval %s must be at least 100ms", c.LogRetentionInterval))
	}
	if c.MaxBody < 1<<10 || c.MaxBody > 1<<30 {
		errs = append(errs, fmt.Errorf("--max-body %d must be between 1024 and 1073741824", c.MaxBody))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.OperatorKey != "" && len(c.OperatorKey) < 16 {
		errs = append(errs, errors.New("--operator-key must be at least 16 characters"))
	}
	if c.FlushInterval < exporter.MinFlushInterval {
		errs = append(errs, fmt.Errorf("--flush-interval %s is below the minimum of %s", c.FlushInterval, exporter.MinFlushInterval))
	}
	if err := c.exporterConfig().Validate(); err != nil && c.FlushInterval >= exporter.MinFlushInterval {
		errs = append(errs, err)
	}
	if err := c.S3.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.PlatformAccountID != "" {
		if err := settings.ValidateAWSAccountID(c.PlatformAccountID); err != nil {
			errs = append(errs, fmt.Errorf("--platform-aws-account-id: %v", err))
		}
	}
	return errors.Join(errs...)
}

func (c *serveConfig) exporterConfig() exporter.Config {
	return exporter.Config{FlushInterval: c.FlushInterval, MaxBatchBytes: c.MaxBatchBytes, Workers: c.ExportWorkers, Suffix: c.S3.Suffix, GzipLevel: c.GzipLevel}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q is not debug, info, warn or error", s)
	}
	return l, nil
}

func runServe(ctx context.Context, args []string) error {
	cfg := defaultServeConfig()
	if err := envFlags(newServeFlags(&cfg), args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	level, _ := parseLevel(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return serve(ctx, cfg, log, nil)
}

// serve runs j1ds until ctx ends. ready, when set, receives the address
// the API listens on.
func serve(ctx context.Context, cfg serveConfig, log *slog.Logger, ready func(addr string)) error {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	opKey, err := operatorKey(cfg, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := graph.Open(filepath.Join(cfg.Data, "graph"), graph.Options{
		Retention:    graph.Retention{MaxAge: cfg.LogRetention, MaxBytes: cfg.LogRetentionBytes, Interval: cfg.LogRetentionInterval},
		MinFreeBytes: cfg.MinFreeBytes,
		FreeSpace:    cfg.test.freeSpace,
		Logger:       log,
		Registerer:   reg,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.test.storeOpened != nil {
		cfg.test.storeOpened(store)
	}
	jobs, err := syncjobs.Open(store, syncjobs.Options{Logger: log})
	if err != nil {
		return err
	}
	defer jobs.Close()
	s3cfg := cfg.S3
	s3cfg.Registerer, s3cfg.Logger = reg, log
	s3c, err := s3dest.New(ctx, s3cfg)
	if err != nil {
		return err
	}
	platform := cfg.PlatformAccountID
	if platform == "" {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		platform, err = s3c.AccountID(sctx)
		cancel()
		if err != nil {
			log.Warn("the operator's AWS account id is unknown: set --platform-aws-account-id; the bucket policy shows a placeholder until then", slog.Any("err", err))
			platform = "<PLATFORM_AWS_ACCOUNT_ID>"
		}
	}
	st := settings.New(store.DB(), nil)
	xcfg := cfg.exporterConfig()
	xcfg.Logger, xcfg.Registerer = log, reg
	xcfg.Classify = func(err error) exporter.Classification {
		var se *s3dest.Error
		if errors.As(err, &se) {
			return exporter.Classification{Code: se.Code, Message: se.Message, Permanent: se.Permanent}
		}
		return exporter.Classification{Code: "EXPORT_FAILED", Message: err.Error()}
	}
	xcfg.AfterUpload = func(string, string) { failpoint.Hit("export-after-upload") }
	exp, err := exporter.New(store, st, s3Destination{s3c}, xcfg)
	if err != nil {
		return err
	}
	if err := exp.Open(); err != nil {
		return err
	}
	store.OnCommit(exp.Notify)
	defer func() {
		store.OnCommit(nil)
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exp.Close(fctx); err != nil {
			log.Warn("exporter stopped before its final flush ended; the rest is exported after the next start", slog.Any("err", err))
		}
	}()
	handler := api.New(api.Config{
		Graph: store, Accounts: accounts.New(store.DB()), Jobs: jobs,
		OperatorKey: opKey, MaxBody: cfg.MaxBody, Logger: log,
		Registerer: reg, Gatherer: reg,
		Streaming: &api.Streaming{
			Settings: st, Exporter: exp,
			TestConnection: func(ctx context.Context, bucket, owner string, body []byte) error {
				return s3c.TestConnection(ctx, s3dest.Target{Bucket: bucket, Owner: owner}, body)
			},
			Explain: func(err error, bucket, owner string) (string, string) {
				e := s3dest.Classify(err, s3dest.Target{Bucket: bucket, Owner: owner}, s3c.Region())
				return e.Code, e.Message
			},
			RequiredRegion: s3c.Region(), PlatformAccountID: platform,
			FlushInterval: cfg.FlushInterval, Now: time.Now,
		},
	})
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another j1ds running? pick another --listen)", cfg.Listen, err)
	}
	srv := newHTTPServer(handler, log, defaultReadHeaderTimeout)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("j1ds serving", slog.String("addr", ln.Addr().String()), slog.String("data", cfg.Data), slog.Int("malloc_arena_max", malloc.ArenaMax()))
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("j1ds shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// defaultReadHeaderTimeout is how long a client may take to send a
// request's headers: a slow-loris client is cut off after it.
const defaultReadHeaderTimeout = 10 * time.Second

// newHTTPServer returns the API's http.Server with j1ds's connection
// limits; tests shorten readHeaderTimeout.
func newHTTPServer(handler http.Handler, log *slog.Logger, readHeaderTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

const operatorKeyFile = "operator-key"

// operatorKey returns the configured operator key, or the one kept in the
// data directory, generating it on first start.
func operatorKey(cfg serveConfig, log *slog.Logger) (string, error) {
	if cfg.OperatorKey != "" {
		return cfg.OperatorKey, nil
	}
	path := filepath.Join(cfg.Data, operatorKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read operator key: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key := "j1op_" + base64.RawURLEncoding.EncodeToString(b[:])
	if err := writeFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write operator key: %w", err)
	}
	log.Info("operator key generated; j1ds admin reads it from the data directory", slog.String("file", path))
	return key, nil
}

// writeFileAtomic writes a file under a temporary name, syncs it and renames
// it into place, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// s3Destination adapts the S3 client to the exporter.
type s3Destination struct{ c *s3dest.Client }

func (d s3Destination) Object(ctx context.Context, bucket, owner, key string) exporter.Object {
	return d.c.Object(ctx, s3dest.Target{Bucket: bucket, Owner: owner}, key)
}
