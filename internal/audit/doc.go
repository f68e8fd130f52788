// Package audit writes j1ds's audit log: structured slog records, each
// with the message "audit", an event name, the account and the actor, for
// every change of an account, its API keys, its entitlements and its Data
// Streaming settings, and for every failed authentication. No attribute
// ever holds an API key secret or the operator key: actors are key ids
// (12 hex characters) or "operator".
//
// Changes an operator or an administrator makes are logged one for one.
// What clients can repeat at will is rate limited, so that no client can
// flood the log:
//
//   - job events (sync jobs created, finalized, aborted, and the job's own
//     log lines through JobHandler) at most Config.JobEventsPerMinute per
//     job per minute;
//   - authentication failures at most Config.AuthFailuresPerMinute per
//     remote address per minute.
//
// Within a minute the first record over a limit is followed by one
// "audit.rate_limited" record naming the job or remote address, and the
// rest are dropped; the first record of the next minute is preceded by an
// "audit.dropped" record counting what was dropped, and
// j1ds_audit_dropped_total counts it too. At most Config.MaxTracked jobs
// or addresses are tracked per minute; beyond them, the rest share one
// budget (key "other"), so memory is bounded whatever the traffic.
package audit
