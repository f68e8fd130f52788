// Package serve wires j1ds serve together: its configuration (defaults,
// flags, Validate), the stores it opens in the data directory (graph and
// transaction log, sync jobs, settings, accounts), the exporter that
// streams the log into S3, the HTTP API and settings page, and their
// shutdown in order.
//
// Run starts everything and blocks until its context ends; then the HTTP
// server drains its requests, the exporter flushes what is pending
// (bounded by a timeout: the rest is exported after the next start) and
// the stores close. cmd/j1ds parses the command line and environment into
// a Config and calls Run; the end-to-end tests call Run in-process.
//
// On first start, without --operator-key, Run generates the operator key
// into DATA/operator-key (OperatorKeyFile), where `j1ds admin` reads it.
package serve
