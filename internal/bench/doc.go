// Package bench is j1ds bench: it measures the stream the way an operator
// chooses one: what a change costs to encode, ship and store, against the
// encode limit of this machine and a naive baseline, and how far behind
// and how large the service gets under a burst.
//
// Run executes the phases in one process, against a versitygw over TLS in
// its own process (s3.go): the idle cost and the burst's memory
// (memory.go), the corpus (corpus.go) with the encode limit of each gzip
// setting (encode.go), the baseline and the export (export.go), latency
// and cost under a steady load (export.go), and ingest against raw Pebble
// (ingest.go). With --store (a postgres:// URL, or "local" for a server
// the bench starts), the export and ingest phases also measure the
// PostgreSQL backend (postgres.go): the export reading the same corpus
// from PostgreSQL against the export reading it from Pebble, and the
// graph store and the sync API on PostgreSQL against raw PostgreSQL
// writing the store's own rows again. With --store the cluster phase
// also runs, last (cluster.go; its nodes in clusternodes.go): j1ds serve
// processes started from the j1ds binary as the nodes of a cluster on one
// database, measured for their idle cost per node at a few and at many
// enabled accounts, the time from one node's SIGKILL to the first object
// of each of its accounts, and the export of one backlog by one node and
// by all. report.go prints the figures and judges the goals.
//
// The bench is a tool, not part of the service: j1ds serve never imports
// it.
package bench
