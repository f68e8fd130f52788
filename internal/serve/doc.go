// Package serve wires j1ds serve together: its configuration (defaults,
// flags, Validate), the stores it opens (graph and transaction log, sync
// jobs, settings, accounts), the exporter that streams the log into S3,
// the HTTP API and settings page, and their shutdown in order.
//
// The stores live in one backend (backend.go): the embedded Pebble store in
// the data directory (--data, the default), or PostgreSQL (--store
// postgres://...), where nothing is kept on local disk. With PostgreSQL,
// Run waits for a database it cannot reach at start-up, backing off; once
// serving, /readyz answers 503 while the database is unreachable and API
// calls that need it 503 DATABASE_UNAVAILABLE, and the connection pool
// reconnects by itself when it is back. The connection URL's password is
// shown in no log line and no error.
//
// Run starts everything and blocks until its context ends; then the HTTP
// server drains its requests, the exporter flushes what is pending
// (bounded by a timeout: the rest is exported after the next start) and
// the stores close. cmd/j1ds parses the command line and environment into
// a Config and calls Run; the end-to-end tests call Run in-process.
//
// On first start, without --operator-key, Run generates the operator key
// into DATA/operator-key (OperatorKeyFile), where `j1ds admin` reads it.
// On PostgreSQL it generates the key once per database instead, keeps only
// its SHA-256 there (table operator_key) and logs the key that one time.
// Run refuses a data directory or key file that group or others can read
// or write (files.go), and a key in the file shorter than --operator-key's
// minimum, saying which chmod fixes it.
//
// The API's server (server.go) caps its connections (conns.go: idle
// keep-alive connections make room, overflow slots answer only health
// probes), cuts bodies slower than --min-body-rate with 408 (bodyrate.go),
// serves HTTP/1.1, over TLS with --tls-cert and --tls-key (tls.go), and
// sets X-Content-Type-Options: nosniff on every answer.
package serve
