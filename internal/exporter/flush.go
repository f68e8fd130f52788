package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/settings"
)

// flushJob is what a flush needs to know of an account, copied under the
// exporter's lock.
type flushJob struct {
	account       string
	gen           uint64
	bucket, owner string
	cursor        uint64
}

type flushResult struct {
	cursor     uint64 // the new cursor (unchanged when nothing was stored)
	bytes      int64  // record bytes exported
	more       bool   // the size cap ended the batch: more is waiting
	nextCommit int64  // commit time of the first change after the batch, when known
}

// Reading the log in pages bounds the memory of a flush.
const (
	pageEntries = 512
	pageBytes   = 4 << 20
)

// flush writes the account's changes after the cursor as one object and
// then moves the cursor. The batch is rebuilt from the log, so a failed
// flush retried later writes the same key (it starts at the same commit)
// with the same records, plus any committed since.
func (e *Exporter) flush(ctx context.Context, j flushJob) (flushResult, error) {
	res := flushResult{cursor: j.cursor}
	first, err := e.read(j, &res)
	if err != nil || len(first) == 0 {
		return res, err
	}
	start := time.Now()
	key := ObjectKey(j.account, first[0].CommitTime, e.cfg.Suffix)
	obj := e.dest.Object(ctx, j.bucket, j.owner, key)
	zw, err := e.newGzipWriter(&countingWriter{w: obj, n: e.metrics.bytesOut})
	if err != nil {
		return res, err
	}
	var (
		last    uint64
		events  int
		size    int64
		entries = first
		oldest  = first[0].CommitTime
	)
	for {
		for _, en := range entries {
			for _, c := range en.Changes {
				if _, err := zw.Write(c.Record); err != nil {
					obj.Abort()
					return res, err
				}
				if _, err := zw.Write(newline); err != nil {
					obj.Abort()
					return res, err
				}
				size += int64(len(c.Record)) + 1
				events++
			}
			last = en.LSN
		}
		if size >= e.cfg.MaxBatchBytes {
			res.more = true
			break
		}
		entries, err = e.log.ReadLog(j.account, last, pageEntries, pageBytes)
		var te *graph.TruncatedError
		if errors.As(err, &te) {
			break // store what was read; the next flush records the gap
		}
		if err != nil {
			obj.Abort()
			return res, fmt.Errorf("read log of %s: %w", j.account, err)
		}
		if len(entries) == 0 {
			break
		}
	}
	if err := zw.Close(); err != nil {
		obj.Abort()
		return res, err
	}
	if err := obj.Close(); err != nil {
		return res, fmt.Errorf("store %s: %w", key, err)
	}
	if e.cfg.AfterUpload != nil {
		e.cfg.AfterUpload(j.account, key)
	}
	// The object is stored: now, and only now, the cursor moves.
	if err := e.settings.Advance(j.account, j.gen, last, events, key); err != nil {
		return res, err
	}
	res.cursor, res.bytes = last, size
	if res.more {
		if next, err := e.log.ReadLog(j.account, last, 1, 1); err == nil && len(next) > 0 {
			res.nextCommit = next[0].CommitTime
		}
	}
	e.metrics.objects.Inc()
	e.metrics.events.Add(float64(events))
	e.metrics.recordBytes.Add(float64(size))
	e.metrics.flushDuration.Observe(time.Since(start).Seconds())
	e.metrics.lag.Observe(time.Since(time.UnixMicro(oldest)).Seconds())
	e.cfg.Logger.Info("object exported", slog.String("account", j.account), slog.String("key", key),
		slog.Int("events", events), slog.Int64("record_bytes", size), slog.Uint64("cursor", last))
	return res, nil
}

var newline = []byte{'\n'}

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

// read returns the first page of the batch, recording any gap that
// retention left before it.
func (e *Exporter) read(j flushJob, res *flushResult) ([]graph.Entry, error) {
	for {
		es, err := e.log.ReadLog(j.account, res.cursor, pageEntries, pageBytes)
		var te *graph.TruncatedError
		if !errors.As(err, &te) {
			return es, err
		}
		g, isNew, err := e.settings.SkipGap(j.account, j.gen, settings.Gap{FromLSN: te.From, ToLSN: te.To, At: e.cfg.Now().UTC()})
		if err != nil {
			return nil, err
		}
		if isNew {
			e.metrics.gaps.Inc()
		}
		e.cfg.Logger.Error("changes lost to log retention: the backlog outlived the log's retention",
			slog.String("account", j.account), slog.Uint64("from_lsn", g.FromLSN), slog.Uint64("to_lsn", g.ToLSN),
			slog.Uint64("dropped_from_lsn", te.From), slog.Uint64("dropped_to_lsn", te.To))
		res.cursor = te.To
	}
}

// countingWriter counts the compressed bytes sent.
type countingWriter struct {
	w interface{ Write([]byte) (int, error) }
	n prometheus.Counter
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(float64(n))
	return n, err
}
