package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/failpoint"
	"github.com/j1ds/j1ds/internal/malloc"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Run runs j1ds serve until ctx ends, then shuts it down: the HTTP server
// first, then the exporter's final flush, then the stores. onListen, when
// set, receives the address the API listens on once it accepts requests.
// cfg must be valid (Validate).
func Run(ctx context.Context, cfg Config, log *slog.Logger, onListen func(addr string)) error {
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	opKey, err := operatorKey(cfg, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := pebblestore.Open(filepath.Join(cfg.Data, "graph"), pebblestore.Options{
		Retention:    changelog.Retention{MaxAge: cfg.LogRetention, MaxBytes: cfg.LogRetentionBytes, Interval: cfg.LogRetentionInterval},
		MinFreeBytes: cfg.MinFreeBytes,
		FreeSpace:    cfg.Test.FreeSpace,
		Logger:       log,
		Registerer:   reg,
	})
	if err != nil {
		return err
	}
	defer store.Close()
	if cfg.Test.StoreOpened != nil {
		cfg.Test.StoreOpened(store)
	}
	jobs, err := syncjobs.Open(store, store.Jobs(), syncjobs.Options{Logger: log})
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
	st := settings.New(store.Settings(), nil)
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
	exp, err := exporter.New(store, store.Settings(), s3Destination{s3c}, xcfg)
	if err != nil {
		return err
	}
	if err := exp.Open(); err != nil {
		return err
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exp.Close(fctx); err != nil {
			log.Warn("exporter stopped before its final flush ended; the rest is exported after the next start", slog.Any("err", err))
		}
	}()
	handler := api.New(api.Config{
		Graph: store, Log: store, Accounts: store.Accounts(), Jobs: jobs,
		OperatorKey: opKey, MaxBody: cfg.MaxBody, Logger: log,
		Registerer: reg, Gatherer: reg,
		Streaming: &api.Streaming{
			Settings: st, Exporter: exp,
			TestConnection: func(ctx context.Context, bucket, owner string, body []byte) error {
				return s3c.TestConnection(ctx, s3bucket.Target{Bucket: bucket, Owner: owner}, body)
			},
			Explain: func(err error, bucket, owner string) (string, string) {
				e := s3dest.Classify(err, s3bucket.Target{Bucket: bucket, Owner: owner}, s3c.Region())
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
	if onListen != nil {
		onListen(ln.Addr().String())
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

// s3Destination adapts the S3 client to the exporter.
type s3Destination struct{ c *s3dest.Client }

func (d s3Destination) Object(ctx context.Context, target, key string) exporter.Object {
	return d.c.ObjectAt(ctx, target, key)
}
