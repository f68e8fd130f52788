package audit

import (
	"context"
	"log/slog"
)

// JobHandler returns h with the job budget applied to its records below
// Warn that carry a "job" attribute: the sync jobs' own log lines (job
// events reported by integrations, finished jobs) count against the same
// per-job budget as Job, so a client repeating a request of one job
// cannot flood the log. Warnings and errors pass unlimited.
func (l *Logger) JobHandler(h slog.Handler) slog.Handler {
	return &jobHandler{h: h, l: l}
}

type jobHandler struct {
	h   slog.Handler
	l   *Logger
	job string // a "job" attribute given to WithAttrs
}

func (j *jobHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return j.h.Enabled(ctx, level)
}

func (j *jobHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		job := j.job
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "job" {
				job = a.Value.String()
				return false
			}
			return true
		})
		if job != "" && !j.l.jobs.allow(slog.New(j.h), job) {
			return nil
		}
	}
	return j.h.Handle(ctx, r)
}

func (j *jobHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := &jobHandler{h: j.h.WithAttrs(as), l: j.l, job: j.job}
	for _, a := range as {
		if a.Key == "job" {
			c.job = a.Value.String()
		}
	}
	return c
}

func (j *jobHandler) WithGroup(name string) slog.Handler {
	return &jobHandler{h: j.h.WithGroup(name), l: j.l, job: j.job}
}
