package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/stream"
)

// flushJob is what a flush needs to know of an account, copied under the
// exporter's lock.
type flushJob struct {
	account string
	gen     uint64
	target  string
	cursor  uint64
	// pendingSince is the commit time (µs) of the account's oldest change
	// not yet exported when the attempt started: a failure's lag in the
	// history.
	pendingSince int64
	// suffix ends the object's key: the account's choice, or for a
	// retried batch the suffix it was attempted with.
	suffix string
	// through, when set, is the last LSN of the batch: the batch a failed
	// attempt tried to store, retried exactly.
	through uint64
	// progress, when set, receives the clock's time (µs) whenever the
	// destination accepts bytes of the object: the attempt's watcher
	// tells a stalled upload from a long one by it.
	progress *atomic.Int64
}

// batchPin is the batch of an upload attempted and not confirmed: the
// changes after LSN after, through LSN through, in an object whose key
// ends in suffix. Zero when there is none.
type batchPin struct {
	after, through uint64
	suffix         string
}

type flushResult struct {
	cursor     uint64 // the new cursor (unchanged when nothing was stored)
	bytes      int64  // record bytes exported
	more       bool   // the size cap ended the batch: more is waiting
	nextCommit int64  // commit time of the first change after the batch, when known
	// attempted is the batch of an upload that failed (zero otherwise):
	// the next flush from the same cursor writes exactly it again.
	attempted batchPin
}

// flush writes the account's changes after the cursor as one object and
// then moves the cursor. The batch is rebuilt from the log, so a failed
// flush retried later writes the same key (it starts at the same commit),
// and with the same records exactly (j.through): an attempt that failed
// here but still reaches the bucket late (it timed out at j1ds after S3
// had it) stores the same object as the retry, never an older, shorter one
// over it. Record lines go from the log's snapshot to gzip: a large
// transaction's lines in place, smaller ones gathered into one chunk
// (LineChunk) first.
func (e *Exporter) flush(ctx context.Context, j flushJob) (flushResult, error) {
	res := flushResult{cursor: j.cursor}
	var (
		obj    Object
		zw     io.WriteCloser
		key    string
		start  time.Time
		last   uint64
		events int
		size   int64
		oldest int64
	)
	// Record lines reach the compressor a chunk or a large transaction at
	// a time: each write costs the compressor a round of its own.
	lines := getLines()
	defer putLines(lines)
	write := func(en *changelog.Entry) (bool, error) {
		if j.through != 0 && en.LSN > j.through {
			return false, nil // the retried batch ends where it ended before
		}
		if obj == nil {
			start, oldest = e.cfg.Clock.Now(), en.CommitTime
			key = ObjectKey(j.account, en.CommitTime, j.suffix)
			obj = e.dest.Object(ctx, j.target, key)
			var err error
			if zw, err = e.newGzipWriter(&countingWriter{w: obj, n: e.metrics.bytesOut, clock: e.cfg.Clock, progress: j.progress}); err != nil {
				return false, err
			}
		}
		// A transaction's lines go on in one piece when they fill a chunk
		// on their own; smaller ones are gathered first.
		if len(en.Lines) >= LineChunk {
			if len(lines.b) > 0 {
				if _, err := zw.Write(lines.b); err != nil {
					return false, err
				}
				lines.b = lines.b[:0]
			}
			if _, err := zw.Write(en.Lines); err != nil {
				return false, err
			}
		} else if lines.b = append(lines.b, en.Lines...); len(lines.b) >= LineChunk {
			if _, err := zw.Write(lines.b); err != nil {
				return false, err
			}
			lines.b = lines.b[:0]
		}
		size += int64(len(en.Lines))
		events += en.Count
		last = en.LSN
		return size < e.cfg.MaxBatchBytes && last != j.through, nil
	}
	for {
		err := e.src.ScanLog(j.account, res.cursor, write)
		var te *changelog.TruncatedError
		if errors.As(err, &te) && obj == nil {
			if err := e.skipGap(j, te, &res); err != nil {
				return res, err
			}
			continue
		}
		if err != nil {
			if obj != nil {
				obj.Abort()
			}
			return res, fmt.Errorf("export %s: %w", j.account, err)
		}
		break
	}
	if obj == nil {
		return res, nil // nothing to export
	}
	res.more = size >= e.cfg.MaxBatchBytes
	if len(lines.b) > 0 {
		if _, err := zw.Write(lines.b); err != nil {
			obj.Abort()
			return res, err
		}
	}
	if err := zw.Close(); err != nil {
		obj.Abort()
		return res, err
	}
	// Saved before any byte of the batch can be stored (a multipart
	// upload's parts make no object before it completes): after a crash
	// the retry stores these changes and no more, whatever was committed
	// since, so a late request of this attempt can only write the same
	// object again.
	if j.through != last {
		if err := e.checkpoint.SaveAttempt(j.account, j.gen, res.cursor, last, j.suffix); err != nil {
			obj.Abort()
			return res, err
		}
	}
	res.attempted = batchPin{after: res.cursor, through: last, suffix: j.suffix}
	if err := obj.Close(); err != nil {
		return res, fmt.Errorf("store %s: %w", key, err)
	}
	res.attempted = batchPin{}
	if e.cfg.AfterUpload != nil {
		e.cfg.AfterUpload(j.account, key)
	}
	// The object is stored: now, and only now, the cursor moves.
	stored := e.cfg.Clock.Now()
	if err := e.checkpoint.Advance(j.account, j.gen, last, events, key, stored, stored.Sub(time.UnixMicro(oldest))); err != nil {
		return res, err
	}
	res.cursor, res.bytes = last, size
	if res.more {
		if next, ok, err := e.src.NextCommit(j.account, last); err == nil && ok {
			res.nextCommit = next
		}
	}
	e.metrics.objects.Inc()
	e.metrics.events.Add(float64(events))
	e.metrics.recordBytes.Add(float64(size))
	done := e.cfg.Clock.Now()
	e.metrics.flushDuration.Observe(done.Sub(start).Seconds())
	e.metrics.lag.Observe(done.Sub(time.UnixMicro(oldest)).Seconds())
	e.cfg.Logger.Info("object exported", slog.String("account", j.account), slog.String("key", key),
		slog.Int("events", events), slog.Int64("record_bytes", size), slog.Uint64("cursor", last))
	return res, nil
}

// LineChunk is how many bytes of record lines a flush gathers before it
// hands them to the compressor; a transaction's lines at least this long
// go on in one piece.
const LineChunk = 64 << 10

// lineBuf is a flush's chunk of record lines; a pool keeps one per flush
// running at once. It never grows: only transactions shorter than
// LineChunk are gathered, onto less than LineChunk.
type lineBuf struct{ b []byte }

var lineBufs = sync.Pool{New: func() any { return &lineBuf{b: make([]byte, 0, 2*LineChunk)} }}

func getLines() *lineBuf { return lineBufs.Get().(*lineBuf) }

func putLines(l *lineBuf) {
	l.b = l.b[:0]
	lineBufs.Put(l)
}

// newGzipWriter returns the compressor of one object: Config.NewGzipWriter
// when set, else a pooled klauspost gzip writer (its state is large; a
// pool keeps it to the flushes running at once).
func (e *Exporter) newGzipWriter(w io.Writer) (io.WriteCloser, error) {
	if e.cfg.NewGzipWriter != nil {
		return e.cfg.NewGzipWriter(w, e.cfg.GzipLevel)
	}
	if zw, ok := e.gzipPool.Get().(*gzip.Writer); ok {
		zw.Reset(w)
		return &pooledGzip{zw, &e.gzipPool}, nil
	}
	zw, err := gzip.NewWriterLevel(w, e.cfg.GzipLevel)
	if err != nil {
		return nil, err
	}
	return &pooledGzip{zw, &e.gzipPool}, nil
}

// pooledGzip returns its writer to the pool once closed.
type pooledGzip struct {
	*gzip.Writer
	pool *sync.Pool
}

func (p *pooledGzip) Close() error {
	err := p.Writer.Close()
	p.pool.Put(p.Writer)
	return err
}

// skipGap records that retention removed the changes before the cursor
// could reach them, and moves the cursor past them.
func (e *Exporter) skipGap(j flushJob, te *changelog.TruncatedError, res *flushResult) error {
	g, isNew, err := e.checkpoint.SkipGap(j.account, j.gen, stream.Gap{FromLSN: te.From, ToLSN: te.To, At: e.cfg.Clock.Now().UTC()})
	if err != nil {
		return err
	}
	if isNew {
		e.metrics.gaps.Inc()
	}
	e.cfg.Logger.Error("changes lost to log retention: the backlog outlived the log's retention",
		slog.String("account", j.account), slog.Uint64("from_lsn", g.FromLSN), slog.Uint64("to_lsn", g.ToLSN),
		slog.Uint64("dropped_from_lsn", te.From), slog.Uint64("dropped_to_lsn", te.To))
	res.cursor = te.To
	return nil
}

// countingWriter counts the compressed bytes sent and, with progress
// set, notes when the destination last accepted some.
type countingWriter struct {
	w        interface{ Write([]byte) (int, error) }
	n        prometheus.Counter
	clock    Clock
	progress *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(float64(n))
	if n > 0 && c.progress != nil {
		c.progress.Store(c.clock.Now().UnixMicro())
	}
	return n, err
}
