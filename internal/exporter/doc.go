// Package exporter streams each enabled account's transaction log into its
// S3 bucket: every few minutes, one gzip-compressed JSONL object of the
// account's new changes, nothing when nothing changed.
//
// # Scheduling
//
// The exporter keeps a few words of state per enabled account and no
// goroutine per account. Open subscribes Notify to the Source's commits
// before it reads the accounts' positions; a commit marks its account
// pending and records the commit time of its oldest unexported change; a
// single scheduler keeps pending accounts in a heap ordered by the time
// their batch is due (oldest change + flush interval, or at once past the
// size cap) and starts due accounts' flushes in two lanes of bounded
// size. An enabled account with no changes costs nothing. The scheduler,
// the retry backoff, the attempts' time limits and flush timestamps read
// and wait on Config.Clock, which tests replace with a clock they advance.
//
// # Slow or failing buckets
//
// A slow or failing bucket never holds the workers of the others. The
// main lane (Config.Workers attempts at once) serves the accounts whose
// last attempt succeeded without stalling; the slow lane
// (Config.SlowWorkers) those whose last attempt failed or stalled: the
// destination accepted no byte of it for Config.SlowAfter (a bucket slow
// to answer; a large batch uploading steadily does not stall). Each lane
// has its own due heap, so a full slow lane leaves the main one going. An
// attempt of the main lane that stalls (a bucket that has just turned
// slow) moves to the slow lane, which takes moved attempts beyond its own
// workers up to Workers more, or past that is cancelled and retried
// there: a slow bucket holds a main-lane worker for SlowAfter at most. Every attempt is cancelled
// after Config.AttemptTimeout. A cancelled attempt is an ordinary failed
// one: its batch is pinned, and the retry writes the same key with the
// same records. An account's lane is decided again after each attempt.
// An account whose oldest unexported change waited more than LagFactor
// flush intervals is lagging (Live.Lagging, j1ds_export_lagging_accounts).
//
// # Batches and memory
//
// A batch is rebuilt from the log when it is flushed: the attempt reads the
// entries after the account's cursor in one snapshot and hands their record
// lines (the log keeps them as lines) to gzip a chunk (LineChunk) or a
// whole large transaction at a time, into the destination; the S3
// destination uploads it as one PutObject or, past the part size, as a
// multipart upload part by part. Memory is bounded by
// (Workers + SlowWorkers) × (part size + compressor state + a chunk of
// lines; the log is read in place from the store's block cache), whatever
// the number of accounts, the size of their backlog or how slowly their
// buckets answer: an attempt moved out of the main lane takes a slot of
// the slow one, or is cancelled. Batches end at transaction boundaries.
//
// # Delivery
//
// The exporter depends on three interfaces: changelog.Source (the log),
// stream.Checkpoint (each account's generation, target, cursor and saved
// batch) and Destination (where objects go; the account's target is
// opaque to the exporter). The cursor moves (Checkpoint.Advance, checked
// against the stream's generation) only after the object is stored. Before
// an upload starts, its batch (the LSNs after the cursor through its last)
// is saved (Checkpoint.SaveAttempt), with the key suffix it is written
// under: an account's suffix (stream.State.Suffix, else Config.Suffix) can
// change between attempts, and applies from the next batch, never to a
// pinned one. A failed flush leaves the cursor; the
// retry starts at the same commit and so writes the same key, with exactly
// the same records: a failed attempt that still reaches the bucket late
// (it timed out at j1ds after S3 had it) then stores the same object, not
// an older, shorter one over the retry's. After a crash between upload and
// cursor save, the saved batch is retried as it was, to the same key with
// the same records; newer commits go in the next object. No change is lost
// or doubled in the bucket. Transient failures are retried with exponential
// backoff and jitter; permanent ones (access denied, no such bucket) are shown in the
// status and retried on a slow schedule. If a backlog outlives the log's
// retention, the lost LSN range is recorded as a gap (status, metric, log)
// and the export goes on after it.
//
// Disabling stops the account at once: a running upload is cancelled and
// aborted, and its changes are not exported. Re-enabling starts at the
// log's end.
package exporter
