package audit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/audit"
)

// capture is a log that keeps its JSON records.
type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the records logged so far, decoded, and empties the
// capture.
func (c *capture) records(t *testing.T) []map[string]any {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(c.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	c.buf.Reset()
	return out
}

// clock is a clock the test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

// summary is "event key=value..." of a record, the keys given.
func summary(r map[string]any, keys ...string) string {
	s := fmt.Sprint(r["event"])
	for _, k := range keys {
		if v, ok := r[k]; ok {
			s += fmt.Sprintf(" %s=%v", k, v)
		}
	}
	return s
}

func summaries(rs []map[string]any, keys ...string) []string {
	var out []string
	for _, r := range rs {
		out = append(out, summary(r, keys...))
	}
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEventFields(t *testing.T) {
	var c capture
	l := audit.New(c.logger(), audit.Config{})
	l.Event("settings.enabled", "acme", "0123456789ab", slog.String("bucket", "bkt"))
	rs := c.records(t)
	if len(rs) != 1 {
		t.Fatalf("%d records, want 1", len(rs))
	}
	r := rs[0]
	for k, v := range map[string]any{"msg": "audit", "level": "INFO", "event": "settings.enabled", "account": "acme", "actor": "0123456789ab", "bucket": "bkt"} {
		if r[k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, r[k], v, r)
		}
	}
}

// TestJobEventsRateLimited: a client repeating requests of one job gets at
// most the budget of audit lines per minute for it, one line saying more
// were dropped, and, the next minute, one line counting them; other jobs
// keep their own budget.
func TestJobEventsRateLimited(t *testing.T) {
	var c capture
	clk := newClock()
	l := audit.New(c.logger(), audit.Config{JobEventsPerMinute: 3, Now: clk.Now})
	for range 1000 {
		l.Job("job.aborted", "acme", "0123456789ab", "job-1")
	}
	l.Job("job.created", "acme", "0123456789ab", "job-2")
	wantLines(t, "the first minute", summaries(c.records(t), "job", "kind", "limit_per_minute"), []string{
		"job.aborted job=job-1",
		"job.aborted job=job-1",
		"job.aborted job=job-1",
		"audit.rate_limited job=job-1 kind=job limit_per_minute=3",
		"job.created job=job-2",
	})
	if jobs, auth := l.Dropped(); jobs != 997 || auth != 0 {
		t.Fatalf("dropped %d job events and %d auth failures, want 997 and 0", jobs, auth)
	}
	clk.add(time.Minute)
	l.Job("job.finalized", "acme", "0123456789ab", "job-1")
	wantLines(t, "the next minute", summaries(c.records(t), "job", "kind", "dropped", "keys"), []string{
		"audit.dropped kind=job dropped=997 keys=1",
		"job.finalized job=job-1",
	})
}

// TestAuthFailuresRateLimited: failed authentications are limited per
// remote address, so one attacker cannot flood the log nor hide another
// address's failures.
func TestAuthFailuresRateLimited(t *testing.T) {
	var c capture
	clk := newClock()
	l := audit.New(c.logger(), audit.Config{AuthFailuresPerMinute: 2, Now: clk.Now})
	for range 500 {
		l.AuthFailure("192.0.2.1", "unknown_api_key", "acme", "")
	}
	l.AuthFailure("192.0.2.2", "wrong_operator_key", "", "")
	wantLines(t, "failures", summaries(c.records(t), "remote", "reason", "level"), []string{
		"auth.failed remote=192.0.2.1 reason=unknown_api_key level=WARN",
		"auth.failed remote=192.0.2.1 reason=unknown_api_key level=WARN",
		"audit.rate_limited remote=192.0.2.1 level=WARN",
		"auth.failed remote=192.0.2.2 reason=wrong_operator_key level=WARN",
	})
	if _, auth := l.Dropped(); auth != 498 {
		t.Fatalf("dropped %d auth failures, want 498", auth)
	}
}

// TestTrackedKeysBounded: past MaxTracked keys in a minute, new keys
// share one budget, so an attacker with many addresses (or jobs) grows
// neither memory nor the log without bound.
func TestTrackedKeysBounded(t *testing.T) {
	var c capture
	clk := newClock()
	l := audit.New(c.logger(), audit.Config{AuthFailuresPerMinute: 1, MaxTracked: 3, Now: clk.Now})
	for i := range 1000 {
		l.AuthFailure(fmt.Sprintf("2001:db8::%x", i), "unknown_api_key", "", "")
	}
	wantLines(t, "failures from 1000 addresses", summaries(c.records(t), "remote"), []string{
		"auth.failed remote=2001:db8::0",
		"auth.failed remote=2001:db8::1",
		"auth.failed remote=2001:db8::2",
		"auth.failed remote=2001:db8::3",
		"audit.rate_limited remote=other",
	})
	if _, auth := l.Dropped(); auth != 996 {
		t.Fatalf("dropped %d, want 996", auth)
	}
}

// TestJobHandler: the sync jobs' own lines of a job share its budget;
// warnings and lines of no job pass.
func TestJobHandler(t *testing.T) {
	var c capture
	clk := newClock()
	l := audit.New(c.logger(), audit.Config{JobEventsPerMinute: 2, Now: clk.Now})
	log := slog.New(l.JobHandler(c.logger().Handler()))
	l.Job("job.created", "acme", "0123456789ab", "job-1")
	for range 100 {
		log.Info("job event", "account", "acme", "job", "job-1", "name", "step")
	}
	log.With("job", "job-1").Info("job finished")
	log.Warn("job rejected at finalize", "job", "job-1")
	log.Info("exporter started")
	got := summaries(c.records(t), "msg", "job")
	wantLines(t, "lines", got, []string{
		"job.created msg=audit job=job-1",
		"<nil> msg=job event job=job-1",
		"audit.rate_limited msg=audit job=job-1",
		"<nil> msg=job rejected at finalize job=job-1",
		"<nil> msg=exporter started",
	})
}
