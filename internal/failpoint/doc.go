// Package failpoint lets crash tests kill j1ds at exact points of its work,
// where a signal sent from outside could not land reliably.
//
// Failpoints exist only in a build made for crash tests: go build -tags
// failpoints. In any other build, j1ds's, Hit does nothing and Enabled
// reports false, and the binary holds no trace of them.
//
// In a failpoints build a failpoint is armed by the environment variable
// J1DS_FAILPOINT=name or name:N (fire at the N-th hit, default the
// first). When the armed point is reached the process kills itself with
// SIGKILL: no deferred function, no flush, no graceful shutdown runs,
// exactly as in a crash. When the variable is unset, Hit is a single
// atomic load.
//
// The points j1ds has:
//
//	sync-after-chunk        a sync job finalize chunk committed, before the next
//	export-after-upload     an object stored, before its cursor is saved
//	export-after-part       a multipart part uploaded, before the next part
//	settings-after-save     Data Streaming settings saved, before the exporter applies them
package failpoint
