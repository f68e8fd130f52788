// Package e2e holds j1ds's end-to-end tests; it has no code outside its
// _test.go files.
//
// The tests run j1ds serve as an operator would and drive it only through
// its HTTP APIs, against a real S3 implementation (versitygw over TLS,
// internal/testbed/locals3) behind a recording, fault-injecting proxy:
//
//   - stream_test.go: the records in the bucket equal the changes made,
//     through connection tests, wrong regions, disable and re-enable, S3
//     outages and many accounts.
//   - fault_test.go: the S3 fault matrix, an outage longer than the log's
//     retention, a full disk.
//   - crash_test.go: the crash matrix: j1ds SIGKILLed at each failpoint and
//     at random moments, restarted on the same data.
//   - postgres_test.go: PostgreSQL restarted and stopped under a running
//     j1ds: readiness, 503 answers, reconnection, nothing lost.
//   - cluster_test.go: cluster mode, several j1ds serve processes on one
//     database (clusterharness_test.go): requests to any node, failover
//     after SIGKILL, handover at SIGTERM, a joining node, a finalization
//     taken over from a dead node, and a chaos run of kills, a frozen
//     node, SIGTERMs and a PostgreSQL restart, each ending with every
//     change in the bucket exactly once.
//
// The stream, crash and fault tests run on both backends (backend_test.go):
// the embedded store in a data directory, and PostgreSQL (serve --store)
// on a fresh database of a server the test binary starts (localpg), where
// the data directory must never be created. The crash matrix kills j1ds,
// not PostgreSQL. The full-disk test is the embedded store's alone.
//   - soak_test.go: many accounts under steady writes and periodic faults,
//     memory sampled from a j1ds child process.
//   - quickstart_test.go: the README's quick start: j1ds admin against
//     serve, across a restart.
//   - verify_test.go: the j1ds verify command against a streamed bucket.
//   - querying_test.go: the DuckDB queries of docs/querying.md over a
//     local copy of a streamed bucket (npm's @duckdb/node-api).
//   - demo_test.go: j1ds demo --dir stopped by a terminal's Ctrl-C (SIGINT
//     to its process group) with changes committed and none exported:
//     every committed change is in the kept bucket.
//   - page_test.go, pagebrowser_test.go: the settings page in headless
//     Chromium.
//
// streamharness_test.go and matrix_test.go hold what they share: the S3
// side, j1ds run in-process (serve.Run) or as a child process, API
// clients, and the checks of a bucket against the store's log. The child
// processes and the j1ds commands run from binaries of ./cmd/j1ds that the
// tests build (binary_test.go): the crash tests' with the failpoints build
// tag, the soak's without the race detector, as an operator runs it.
//
// J1DS_MATRIX=full (make matrix) runs the full versions of the crash, fault
// and soak matrices; without it they run short ones and say so.
package e2e
