package audit

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Actor of the operator API.
const ActorOperator = "operator"

// Defaults of Config.
const (
	DefaultJobEventsPerMinute    = 20
	DefaultAuthFailuresPerMinute = 10
	DefaultMaxTracked            = 10000
)

// Config configures a Logger.
type Config struct {
	// JobEventsPerMinute bounds the job events logged per job per
	// minute; DefaultJobEventsPerMinute when zero.
	JobEventsPerMinute int
	// AuthFailuresPerMinute bounds the failed authentications logged
	// per remote address per minute; DefaultAuthFailuresPerMinute when
	// zero.
	AuthFailuresPerMinute int
	// MaxTracked bounds the jobs (and remote addresses) given a budget
	// of their own per minute; DefaultMaxTracked when zero.
	MaxTracked int
	// Now is the clock of the rate limits; time.Now when nil.
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// Logger writes audit records. It is safe for concurrent use.
type Logger struct {
	log  *slog.Logger
	jobs *limiter
	auth *limiter
}

// New returns a Logger writing to log (slog.Default() when nil).
func New(log *slog.Logger, cfg Config) *Logger {
	if log == nil {
		log = slog.Default()
	}
	if cfg.JobEventsPerMinute <= 0 {
		cfg.JobEventsPerMinute = DefaultJobEventsPerMinute
	}
	if cfg.AuthFailuresPerMinute <= 0 {
		cfg.AuthFailuresPerMinute = DefaultAuthFailuresPerMinute
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = DefaultMaxTracked
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	dropped := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "j1ds_audit_dropped_total",
		Help: "Audit records dropped by a rate limit, by kind (job: per sync job; auth: failed authentications per remote address).",
	}, []string{"kind"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(dropped)
	}
	l := &Logger{log: log}
	l.jobs = newLimiter("job", "job", cfg.JobEventsPerMinute, cfg.MaxTracked, cfg.Now, dropped.WithLabelValues("job"))
	l.auth = newLimiter("auth", "remote", cfg.AuthFailuresPerMinute, cfg.MaxTracked, cfg.Now, dropped.WithLabelValues("auth"))
	return l
}

// Event logs a change: event (e.g. "settings.enabled"), the account it
// changed, the actor (a key id, ActorOperator, or the part of j1ds that
// acted) and the change's details. Changes are never rate limited: only
// the operator and administrators make them.
func (l *Logger) Event(event, account, actor string, attrs ...slog.Attr) {
	l.write(slog.LevelInfo, event, account, actor, attrs)
}

// Job logs an event of sync job job, within the job's budget.
func (l *Logger) Job(event, account, actor, job string, attrs ...slog.Attr) {
	if !l.jobs.allow(l.log, job) {
		return
	}
	l.write(slog.LevelInfo, event, account, actor, append([]slog.Attr{slog.String("job", job)}, attrs...))
}

// AuthFailure logs a failed authentication from remote (the client's
// address) within the address's budget: reason names what failed,
// account is the account asked for (empty when none), actor the key id
// when the key is known ("" otherwise). Never pass a secret.
func (l *Logger) AuthFailure(remote, reason, account, actor string, attrs ...slog.Attr) {
	if !l.auth.allow(l.log, remote) {
		return
	}
	l.write(slog.LevelWarn, "auth.failed", account, actor,
		append([]slog.Attr{slog.String("reason", reason), slog.String("remote", remote)}, attrs...))
}

// Dropped returns how many job events and authentication failures were
// dropped so far.
func (l *Logger) Dropped() (jobs, auth int64) {
	return l.jobs.total(), l.auth.total()
}

func (l *Logger) write(level slog.Level, event, account, actor string, attrs []slog.Attr) {
	all := make([]slog.Attr, 0, 3+len(attrs))
	all = append(all, slog.String("event", event), slog.String("account", account), slog.String("actor", actor))
	l.log.LogAttrs(context.Background(), level, "audit", append(all, attrs...)...)
}
