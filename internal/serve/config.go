package serve

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/audit"
	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/cluster"
	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/s3dest"
	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/syncjobs"
)

// Config is the configuration of j1ds serve.
type Config struct {
	// Store is a PostgreSQL connection URL (postgres://...) that keeps
	// every store of j1ds; empty: the embedded store in Data.
	Store             string
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
	// AuditJobEventsPerMinute and AuditAuthFailuresPerMinute bound the
	// audit log's job events per job and failed authentications per
	// remote address (package audit); 0 is the default.
	AuditJobEventsPerMinute    int
	AuditAuthFailuresPerMinute int

	// Connections and transport of the API: connections served at once,
	// the minimum rate of a request body (bytes/s; 0: none), and TLS
	// (both files, or neither for plain HTTP behind a TLS proxy).
	MaxConnections int
	MinBodyRate    int64
	TLSCert        string
	TLSKey         string

	// Request bodies and list pages within memory (package api): the
	// budget of body bytes held at once, requests with a body in progress
	// per API key, the largest gzip ratio, and the bytes of a list page.
	MaxBodyMemory     int64
	MaxRequestsPerKey int
	MaxGzipRatio      int
	MaxPageBytes      int64

	// Sync job quotas of each account (package syncjobs): open jobs,
	// bytes staged by them, and how long a job may await uploads idle.
	MaxOpenJobs    int
	MaxStagedBytes int64
	JobExpiry      time.Duration

	// Data streaming.
	FlushInterval     time.Duration
	MaxBatchBytes     int64
	ExportWorkers     int
	GzipLevel         int
	S3                s3dest.Config
	PlatformAccountID string

	// The exporter's slow lane, and each upload's time limit.
	ExportSlowWorkers    int
	ExportSlowAfter      time.Duration
	ExportAttemptTimeout time.Duration

	// Cluster mode (with Store): this node's name, for people, and the
	// lease of its share of the export work.
	NodeName string
	LeaseTTL time.Duration

	// Test holds hooks that tests set; no flag reaches them, and the
	// binary leaves them nil.
	Test TestHooks
}

// TestHooks let tests reach into Run. They are set by tests only, never
// by a flag.
type TestHooks struct {
	// FreeSpace replaces statfs as the data directory's free space
	// (pebblestore.Options.FreeSpace; the embedded store only).
	FreeSpace func(dir string) (uint64, error)
	// StoreOpened receives the store's log once it is open, to read it.
	StoreOpened func(changelog.Reader)
}

// DefaultConfig returns the configuration of j1ds serve with no flag set.
func DefaultConfig() Config {
	return Config{
		Data:                 "./j1ds-data",
		Listen:               "127.0.0.1:8080",
		LogRetention:         7 * 24 * time.Hour,
		LogRetentionBytes:    8 << 30,
		LogRetentionInterval: time.Minute,
		MaxBody:              api.DefaultMaxBody,
		MaxBodyMemory:        api.DefaultMaxBodyMemory,
		MaxRequestsPerKey:    api.DefaultMaxRequestsPerKey,
		MaxGzipRatio:         api.DefaultMaxGzipRatio,
		MaxPageBytes:         api.DefaultMaxPageBytes,
		MinFreeBytes:         pebblestore.DefaultMinFreeBytes,
		LogLevel:             "info",
		MaxConnections:       DefaultMaxConnections,
		MinBodyRate:          DefaultMinBodyRate,
		FlushInterval:        exporter.DefaultFlushInterval,
		MaxBatchBytes:        exporter.DefaultMaxBatchBytes,
		ExportWorkers:        4,
		ExportSlowWorkers:    exporter.DefaultSlowWorkers,
		ExportSlowAfter:      exporter.DefaultSlowAfter,
		ExportAttemptTimeout: exporter.DefaultAttemptTimeout,
		GzipLevel:            exporter.DefaultGzipLevel,
		LeaseTTL:             cluster.DefaultLeaseTTL,
		MaxOpenJobs:          syncjobs.DefaultMaxOpenJobs,
		MaxStagedBytes:       syncjobs.DefaultMaxStagedBytes,
		JobExpiry:            syncjobs.DefaultJobExpiry,
		S3:                   s3dest.Config{Region: s3dest.DefaultRegion, PartSize: s3dest.DefaultPartSize, Suffix: s3dest.DefaultSuffix},
	}
}

// NewFlagSet returns the flags of j1ds serve, each bound to its field of
// c with c's value as the default.
func NewFlagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Store, "store", c.Store, "PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE?sslmode=...) that keeps every store; empty: the embedded store in --data")
	fs.StringVar(&c.Data, "data", c.Data, "data directory (graph store, transaction log, settings) of the embedded store; unused with --store")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the HTTP API")
	fs.StringVar(&c.OperatorKey, "operator-key", c.OperatorKey, "key of the operator API; when empty, one is generated into DATA/operator-key (with --store: generated once, logged once, kept hashed in the database)")
	fs.DurationVar(&c.LogRetention, "log-retention", c.LogRetention, "keep transaction log entries this long (0: no age limit)")
	fs.Int64Var(&c.LogRetentionBytes, "log-retention-bytes", c.LogRetentionBytes, "keep at most this many bytes of transaction log (0: no size limit)")
	fs.DurationVar(&c.LogRetentionInterval, "log-retention-interval", c.LogRetentionInterval, "time between two retention passes over the transaction log")
	fs.Int64Var(&c.MaxBody, "max-body", c.MaxBody, "largest request body accepted, in bytes after gzip decoding")
	fs.Int64Var(&c.MaxBodyMemory, "max-body-memory", c.MaxBodyMemory, "request body bytes (after gzip decoding) held by all requests at once; a body that would take more is answered 503 with Retry-After (at least --max-body)")
	fs.IntVar(&c.MaxRequestsPerKey, "max-requests-per-key", c.MaxRequestsPerKey, "requests with a body one API key may have in progress at once (the operator key, or one address before authentication, likewise); more are answered 429 with Retry-After")
	fs.IntVar(&c.MaxGzipRatio, "max-gzip-ratio", c.MaxGzipRatio, "refuse (413) a gzip request body that expands more than this many times, beyond its first MiB")
	fs.Int64Var(&c.MaxPageBytes, "max-page-bytes", c.MaxPageBytes, "bytes of objects in one list page; a page stops there (always holding one object at least) and gives nextCursor")
	fs.Int64Var(&c.MinFreeBytes, "min-free-bytes", c.MinFreeBytes, "refuse writes (507) while the data directory has less free space than this; -1: never (embedded store only)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.IntVar(&c.AuditJobEventsPerMinute, "audit-job-events-per-minute", cmp.Or(c.AuditJobEventsPerMinute, audit.DefaultJobEventsPerMinute), "audit log lines of one sync job per minute (job created, finalized, aborted, its events); the rest are dropped and counted")
	fs.IntVar(&c.AuditAuthFailuresPerMinute, "audit-auth-failures-per-minute", cmp.Or(c.AuditAuthFailuresPerMinute, audit.DefaultAuthFailuresPerMinute), "audit log lines of failed authentications per remote address per minute; the rest are dropped and counted")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "API connections served at once; a few more answer only /healthz and /readyz (and 503 to the rest), idle keep-alive connections make room for new ones")
	fs.Int64Var(&c.MinBodyRate, "min-body-rate", c.MinBodyRate, "cut with 408 a request body arriving slower than this many bytes/s after its first 10s (0: never)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate (then its chain) to serve the API over HTTPS, with --tls-key; empty: plain HTTP, for behind a TLS-terminating proxy")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key of --tls-cert")
	fs.DurationVar(&c.FlushInterval, "flush-interval", c.FlushInterval, "write an account's changes when the oldest is this old (at least 1s)")
	fs.Int64Var(&c.MaxBatchBytes, "max-batch-bytes", c.MaxBatchBytes, "write an object at once when its records reach this many bytes (uncompressed)")
	fs.IntVar(&c.ExportWorkers, "export-workers", c.ExportWorkers, "objects built and uploaded at once for accounts whose buckets answer promptly")
	fs.IntVar(&c.ExportSlowWorkers, "export-slow-workers", c.ExportSlowWorkers, "objects built and uploaded at once for accounts whose last upload failed or stalled for --export-slow-after (a lane apart, so slow buckets never hold the others' workers)")
	fs.DurationVar(&c.ExportSlowAfter, "export-slow-after", c.ExportSlowAfter, "an upload whose bucket accepts no byte for this long leaves the workers of --export-workers for those of --export-slow-workers (cancelled and retried there when they are all busy)")
	fs.DurationVar(&c.ExportAttemptTimeout, "export-attempt-timeout", c.ExportAttemptTimeout, "give up one object's upload after this long and retry it (same key, same records)")
	fs.IntVar(&c.GzipLevel, "gzip-level", c.GzipLevel, "gzip level of objects, 1 (fastest) to 9 (smallest)")
	fs.StringVar(&c.S3.Region, "region", c.S3.Region, "the AWS region customers' buckets must be in")
	fs.StringVar(&c.S3.Endpoint, "s3-endpoint", c.S3.Endpoint, "S3-compatible endpoint (path-style), e.g. https://127.0.0.1:7070; empty for AWS")
	fs.BoolVar(&c.S3.AllowInsecureEndpoint, "allow-insecure-endpoint", c.S3.AllowInsecureEndpoint, "allow a plain http:// --s3-endpoint (development only)")
	fs.StringVar(&c.S3.AssumeRoleARN, "assume-role-arn", c.S3.AssumeRoleARN, "assume this role (jupiterone-data-streaming) with the standard credential chain")
	fs.StringVar(&c.S3.KMSKeyID, "kms-key-id", c.S3.KMSKeyID, "request SSE-KMS with this key: an AWS key id, ARN or alias, or the key name of an S3-compatible server; empty: the bucket's default encryption")
	fs.Int64Var(&c.S3.PartSize, "part-size", c.S3.PartSize, "multipart threshold and part size in bytes (at least 5 MiB)")
	fs.StringVar(&c.S3.Suffix, "object-suffix", c.S3.Suffix, "object key suffix, .jsonl or .jsonl.gz, of the accounts that chose none on the settings page")
	fs.IntVar(&c.MaxOpenJobs, "max-open-jobs", c.MaxOpenJobs, "sync jobs one account may have open (awaiting uploads or being finalized); creating another is answered 429 TOO_MANY_OPEN_JOBS")
	fs.Int64Var(&c.MaxStagedBytes, "max-staged-bytes", c.MaxStagedBytes, "bytes the open sync jobs of one account may stage (uploads not finalized yet); an upload beyond is answered 429 STAGING_QUOTA_EXCEEDED")
	fs.DurationVar(&c.JobExpiry, "job-expiry", c.JobExpiry, "a sync job awaiting uploads this long after its last upload (or its creation) is aborted and its staging dropped")
	fs.StringVar(&c.PlatformAccountID, "platform-aws-account-id", c.PlatformAccountID, "the operator's AWS account id for the bucket policy; empty: asked of STS")
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "this node's name in GET /operator/v1/cluster and the status (with --store); empty: HOSTNAME:PORT")
	fs.DurationVar(&c.LeaseTTL, "lease-ttl", c.LeaseTTL, "how long this node's share of the export lasts unrenewed (with --store); renewed every quarter of it; a dead node's accounts move after at most 1.25 times it")
	return fs
}

// Validate checks the configuration; errors name the flag and the value.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.Store != "":
		if err := pgstore.CheckURL(c.Store); err != nil {
			errs = append(errs, fmt.Errorf("--store %s: %v", pgstore.RedactURL(c.Store), err))
		}
	case c.Data == "":
		errs = append(errs, errors.New("--data must name a directory (or --store a PostgreSQL URL)"))
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
	if c.MaxBodyMemory < c.MaxBody || c.MaxBodyMemory > 1<<40 {
		errs = append(errs, fmt.Errorf("--max-body-memory %d must be at least --max-body (%d), so that the largest body can be read, and at most 1099511627776", c.MaxBodyMemory, c.MaxBody))
	}
	if c.MaxRequestsPerKey < 1 || c.MaxRequestsPerKey > 1<<16 {
		errs = append(errs, fmt.Errorf("--max-requests-per-key %d must be between 1 and 65536", c.MaxRequestsPerKey))
	}
	if c.MaxGzipRatio < 1 || c.MaxGzipRatio > 1<<20 {
		errs = append(errs, fmt.Errorf("--max-gzip-ratio %d must be between 1 and 1048576", c.MaxGzipRatio))
	}
	if c.MaxPageBytes < 64<<10 || c.MaxPageBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("--max-page-bytes %d must be between 65536 and 1073741824", c.MaxPageBytes))
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.AuditJobEventsPerMinute < 0 || c.AuditJobEventsPerMinute > 1<<20 {
		errs = append(errs, fmt.Errorf("--audit-job-events-per-minute %d must be between 1 and 1048576", c.AuditJobEventsPerMinute))
	}
	if c.AuditAuthFailuresPerMinute < 0 || c.AuditAuthFailuresPerMinute > 1<<20 {
		errs = append(errs, fmt.Errorf("--audit-auth-failures-per-minute %d must be between 1 and 1048576", c.AuditAuthFailuresPerMinute))
	}
	if c.OperatorKey != "" && len(c.OperatorKey) < MinOperatorKeyLen {
		errs = append(errs, fmt.Errorf("--operator-key must be at least %d characters", MinOperatorKeyLen))
	}
	if c.MaxConnections < 1 || c.MaxConnections > 1<<20 {
		errs = append(errs, fmt.Errorf("--max-connections %d must be between 1 and 1048576", c.MaxConnections))
	}
	if c.MinBodyRate < 0 {
		errs = append(errs, fmt.Errorf("--min-body-rate %d must not be negative (0 turns it off)", c.MinBodyRate))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together: set both to serve HTTPS, or neither to serve plain HTTP behind a TLS-terminating proxy"))
	}
	if c.MaxOpenJobs < 1 {
		errs = append(errs, fmt.Errorf("--max-open-jobs %d must be at least 1", c.MaxOpenJobs))
	}
	if c.MaxStagedBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("--max-staged-bytes %d must be at least 1048576 (1 MiB)", c.MaxStagedBytes))
	}
	if c.JobExpiry < time.Minute {
		errs = append(errs, fmt.Errorf("--job-expiry %s must be at least 1m", c.JobExpiry))
	}
	if c.LeaseTTL < cluster.MinLeaseTTL || c.LeaseTTL > time.Hour {
		errs = append(errs, fmt.Errorf("--lease-ttl %s must be between %s and 1h", c.LeaseTTL, cluster.MinLeaseTTL))
	}
	if len(c.NodeName) > 200 {
		errs = append(errs, errors.New("--node-name is limited to 200 bytes"))
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
		if err := s3bucket.ValidateAWSAccountID(c.PlatformAccountID); err != nil {
			errs = append(errs, fmt.Errorf("--platform-aws-account-id: %v", err))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) exporterConfig() exporter.Config {
	return exporter.Config{FlushInterval: c.FlushInterval, MaxBatchBytes: c.MaxBatchBytes, Workers: c.ExportWorkers, Suffix: c.S3.Suffix, GzipLevel: c.GzipLevel,
		SlowWorkers: c.ExportSlowWorkers, SlowAfter: c.ExportSlowAfter, AttemptTimeout: c.ExportAttemptTimeout}
}

// ParseLevel returns the log level named by --log-level: debug, info, warn
// or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q is not debug, info, warn or error", s)
	}
	return l, nil
}
