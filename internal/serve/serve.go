package serve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/audit"
	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/failpoint"
	"github.com/j1ds/j1ds/internal/malloc"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Run runs j1ds serve until ctx ends, then shuts it down: the HTTP server
// first, then the exporter's final flush, then the stores. onListen, when
// set, receives the address the API listens on once it accepts requests.
// cfg must be valid (Validate). Its errors never hold the password of
// cfg.Store.
func Run(ctx context.Context, cfg Config, log *slog.Logger, onListen func(addr string)) error {
	return redactError(run(ctx, cfg, log, onListen), cfg.Store)
}

func run(ctx context.Context, cfg Config, log *slog.Logger, onListen func(addr string)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	limits := cfg.limits()
	if err := checkFDLimit(limits.MaxConnections, limits.Overflow); err != nil {
		return err
	}
	tlsConf, err := loadTLS(cfg.TLSCert, cfg.TLSKey, log, time.Now)
	if err != nil {
		return err
	}
	var (
		store  *backend
		pg     *pgstore.Store // with --store
		opKey  string
		opHash []byte
	)
	if cfg.Store == "" {
		if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		if err := checkDataDir(cfg.Data); err != nil {
			return err
		}
		if opKey, err = operatorKey(cfg, log); err != nil {
			return err
		}
		if store, err = openPebble(cfg, log, reg); err != nil {
			return err
		}
	} else {
		if pg, store, err = openPostgres(ctx, cfg, log, reg); err != nil {
			return err
		}
		if opKey, opHash, err = postgresOperatorKey(cfg, pg, log); err != nil {
			pg.Close()
			return err
		}
	}
	defer store.close()
	if cfg.Test.StoreOpened != nil {
		cfg.Test.StoreOpened(store.log)
	}
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
	auditLog := audit.New(log, audit.Config{JobEventsPerMinute: cfg.AuditJobEventsPerMinute, AuthFailuresPerMinute: cfg.AuditAuthFailuresPerMinute, Registerer: reg})
	st := settings.New(store.settings, nil).RequireEntitlement(settings.Entitlement{Accounts: store.accounts, Stopped: api.AuditStopped(auditLog)})
	xcfg := cfg.exporterConfig()
	xcfg.Logger, xcfg.Registerer = log, reg
	xcfg.Classify = func(err error) exporter.Classification {
		var se *s3dest.Error
		if errors.As(err, &se) {
			return exporter.Classification{Code: se.Code, Message: se.Message, Detail: se.Detail, ActionBy: se.ActionBy, Permanent: se.Permanent}
		}
		if store.unavailable != nil && store.unavailable(err) {
			return exporter.Classification{Code: "DATABASE_UNAVAILABLE", ActionBy: stream.ActionOperator,
				Message: "the service cannot reach its database; the export resumes where it stopped as soon as the database answers",
				Detail:  "j1ds cannot reach its database (--store)"}
		}
		return exporter.Classification{Code: "EXPORT_FAILED", ActionBy: stream.ActionOperator, Detail: err.Error(),
			Message: "the export failed for a reason on the service's side: nothing to change in your settings; your JupiterOne operator must fix it, and the service keeps retrying"}
	}
	xcfg.AfterUpload = func(string, string) { failpoint.Hit("export-after-upload") }
	// Listening before the cluster is joined: the node's row names its
	// address. Requests wait in the backlog until the server starts.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another j1ds running? pick another --listen)", cfg.Listen, err)
	}
	defer ln.Close()
	var checkpoint stream.Checkpoint = store.settings
	var mgr *cluster.Manager
	if pg != nil {
		mgr = cluster.New(pg.Cluster(), cluster.Config{
			Node:     cluster.Node{Name: nodeName(cfg.NodeName, ln.Addr()), Addr: ln.Addr().String()},
			LeaseTTL: cfg.LeaseTTL, Logger: log, Registerer: reg,
		})
		checkpoint = pg.Settings().Fenced(mgr.Fence, mgr.FencedWrite)
		xcfg.Owns = mgr.Owns
	}
	// An account streaming without its entitlement is stopped, not
	// exported (the entitlement's removal died before the stop).
	checkpoint = st.Gate(checkpoint, store.log.End)
	exp, err := exporter.New(store.log, checkpoint, s3Destination{s3c}, xcfg)
	if err != nil {
		return err
	}
	if err := exp.Open(); err != nil {
		return err
	}
	if mgr != nil {
		stop, err := joinCluster(ctx, pg, mgr, exp, log)
		if err != nil {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = exp.Close(cctx)
			return err
		}
		// Runs after the exporter's final flush (deferred below, so
		// earlier): then the node leaves and the others take over at once.
		defer stop()
	}
	defer func() {
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exp.Close(fctx); err != nil {
			log.Warn("exporter stopped before its final flush ended; the rest is exported after the next start", slog.Any("err", err))
		}
	}()
	// Opened once the node has joined its cluster, if any, and closed
	// first: finalizations stop before the exporter's final flush and
	// before the node leaves. In a cluster a node runs the finalizations
	// it claimed, taking over those of dead nodes (looked for every half
	// lease).
	jobsOpts := syncjobs.Options{Logger: slog.New(auditLog.JobHandler(log.Handler())), Retry: store.unavailable,
		MaxOpenJobs: cfg.MaxOpenJobs, MaxStagedBytes: cfg.MaxStagedBytes, JobExpiry: cfg.JobExpiry}
	if mgr != nil {
		jobsOpts.Node, jobsOpts.ResumePoll = mgr.ID(), mgr.LeaseTTL()/2
	}
	jobs, err := syncjobs.Open(store.graph, store.jobs, jobsOpts)
	if err != nil {
		return err
	}
	defer jobs.Close()
	handler := api.New(api.Config{
		Graph: store.graph, Log: store.log, Accounts: store.accounts, Jobs: jobs,
		OperatorKey: opKey, OperatorKeyHash: opHash, MaxBody: cfg.MaxBody, Logger: log,
		MaxBodyMemory: cfg.MaxBodyMemory, MaxRequestsPerKey: cfg.MaxRequestsPerKey, MaxGzipRatio: cfg.MaxGzipRatio, MaxPageBytes: cfg.MaxPageBytes,
		Registerer: reg, Gatherer: reg,
		Ready: store.ready, Unavailable: store.unavailable, Cluster: clusterAPI(mgr), Audit: auditLog,
		Streaming: &api.Streaming{
			Settings: st, Exporter: exp,
			TestConnection: func(ctx context.Context, bucket, owner string, body []byte) error {
				return s3c.TestConnection(ctx, s3bucket.Target{Bucket: bucket, Owner: owner}, body)
			},
			Explain: func(err error, bucket, owner string) stream.Problem {
				e := s3dest.Classify(err, s3bucket.Target{Bucket: bucket, Owner: owner}, s3c.Region())
				return stream.Problem{Code: e.Code, Message: e.Message, ActionBy: e.ActionBy}
			},
			RequiredRegion: s3c.Region(), PlatformAccountID: platform,
			FlushInterval: cfg.FlushInterval, DefaultObjectSuffix: cmp.Or(xcfg.Suffix, s3dest.DefaultSuffix), Now: time.Now,
		},
	})
	srv := newAPIServer(handler, ln, log, limits, tlsConf, reg)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	log.Info("j1ds serving", slog.String("addr", ln.Addr().String()), slog.Bool("tls", tlsConf != nil), store.where, slog.Int("malloc_arena_max", malloc.ArenaMax()))
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

// joinCluster makes this node a member of the cluster on pg's database:
// it hears the other nodes, joins with its share of the export groups,
// and keeps its lease. stop, after the exporter's final flush, stops
// renewing and leaves, freeing its groups for the others at once.
func joinCluster(ctx context.Context, pg *pgstore.Store, mgr *cluster.Manager, exp *exporter.Exporter, log *slog.Logger) (stop func(), err error) {
	err = pg.Listen(mgr.ID(), pgstore.ClusterEvents{
		Settings: func(account string) {
			if err := exp.Reload(account); err != nil {
				log.Warn("could not apply settings saved on another node; applied at the account's next export", slog.String("account", account), slog.Any("err", err))
			}
		},
		Cluster: mgr.Wake,
		Resync: func() {
			// Commits and settings sent meanwhile were not heard: start
			// every account again from its saved state.
			exp.Forget(func(string) bool { return false })
			if err := exp.Rescan(); err != nil {
				log.Warn("could not reload the accounts this node exports; retried at the next renewal", slog.Any("err", err))
			}
			mgr.Wake()
		},
	})
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		if err = mgr.Start(ctx, exp); err == nil {
			break
		}
		if !pgstore.Unavailable(err) || ctx.Err() != nil {
			return nil, fmt.Errorf("join the cluster: %w", err)
		}
		if attempt&(attempt-1) == 0 {
			log.Warn("could not join the cluster yet: the database is unreachable; retrying", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("join the cluster: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		mgr.Run(rctx)
	}()
	return func() {
		cancel()
		<-done
		lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer lcancel()
		if err := mgr.Leave(lctx); err != nil {
			log.Warn("could not leave the cluster: the other nodes take this node's accounts when its lease ends", slog.Any("err", err))
		}
	}, nil
}

// nodeName is --node-name, or HOSTNAME:PORT of the API's address.
func nodeName(name string, addr net.Addr) string {
	if name != "" {
		return name
	}
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(addr.String())
	return host + ":" + port
}

// clusterAPI is the cluster as the API shows it; nil on one node.
func clusterAPI(m *cluster.Manager) api.Cluster {
	if m == nil {
		return nil
	}
	return m
}
