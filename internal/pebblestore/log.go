package pebblestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// Entry encoding, version 2:
//
//	0x00 0x02, uvarint commitTime µs, uvarint change count, uvarint size of
//	the lines, then per change: op byte, kind byte, uvarint len + id,
//	uvarint len of its record; then the lines: each change's record and a
//	newline, in change order.
//
// The records sit together, as lines, so that a reader exporting them
// hands them on in one piece. Version 1, written before, is still read:
// uvarint commitTime µs (never 0, so its first byte is never 0x00),
// uvarint change count, then per change: op byte, kind byte, uvarint len +
// id, uvarint len + record.
const entryV2 = 0x02

func appendEntryHeader(b []byte, micros int64, changes, lines int) []byte {
	b = append(b, 0, entryV2)
	b = binary.AppendUvarint(b, uint64(micros))
	b = binary.AppendUvarint(b, uint64(changes))
	return binary.AppendUvarint(b, uint64(lines))
}

// appendChangeMeta appends what an entry keeps of one change beside its
// record line.
func appendChangeMeta(b []byte, op graph.Op, kind graph.Kind, id string, record int) []byte {
	b = append(b, byte(op), byte(kind))
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	return binary.AppendUvarint(b, uint64(record))
}

var errCorrupt = errors.New("corrupt log entry")

// entryHeader is the start of an encoded entry.
type entryHeader struct {
	v2         bool
	commitTime int64
	count      int
	lines      int    // v2: size of the lines
	rest       []byte // after the header
}

func decodeEntryHeader(b []byte) (entryHeader, error) {
	var h entryHeader
	if len(b) >= 2 && b[0] == 0 {
		if b[1] != entryV2 {
			return h, fmt.Errorf("%w: version %d", errCorrupt, b[1])
		}
		h.v2, b = true, b[2:]
	}
	ct, n := binary.Uvarint(b)
	if n <= 0 {
		return h, errCorrupt
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return h, errCorrupt
	}
	b = b[n:]
	h.commitTime, h.count = int64(ct), int(count)
	if h.v2 {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return h, errCorrupt
		}
		h.lines, b = int(l), b[n:]
	}
	h.rest = b
	return h, nil
}

// decodedEntry is an entry being decoded, with the buffer a version 1
// entry's lines are built in.
type decodedEntry struct {
	changelog.Entry
	v1lines []byte // the lines built for a version 1 entry, kept for reuse
}

func decodeEntry(lsn uint64, b []byte) (changelog.Entry, error) {
	var e decodedEntry
	err := decodeEntryInto(&e, lsn, b, true)
	return e.Entry, err
}

// decodeEntryInto decodes into e, reusing its Changes; records and lines
// alias b (for a version 1 entry the lines are built in a buffer of e's
// own, never in a slice of b a previous entry left in e.Lines). Changes
// are decoded only when withChanges; without, only the header and the
// lines.
func decodeEntryInto(e *decodedEntry, lsn uint64, b []byte, withChanges bool) error {
	h, err := decodeEntryHeader(b)
	if err != nil {
		return err
	}
	e.LSN, e.CommitTime, e.Count = lsn, h.commitTime, h.count
	e.Changes = e.Changes[:0]
	b = h.rest
	var lines []byte
	if h.v2 {
		meta := len(b) - h.lines
		if meta < 0 {
			return errCorrupt
		}
		lines, b = b[meta:len(b):len(b)], b[:meta]
		e.Lines = lines
		if !withChanges {
			return nil
		}
	} else {
		e.Lines = e.v1lines[:0]
	}
	off := 0
	for range h.count {
		if len(b) < 2 {
			return errCorrupt
		}
		c := changelog.Change{Op: graph.Op(b[0]), Kind: graph.Kind(b[1])}
		b = b[2:]
		l, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < l {
			return errCorrupt
		}
		if withChanges {
			c.ID = string(b[n : n+int(l)])
		}
		b = b[n+int(l):]
		l, n = binary.Uvarint(b)
		if n <= 0 {
			return errCorrupt
		}
		b = b[n:]
		if h.v2 {
			if l >= uint64(len(lines)-off) || lines[off+int(l)] != '\n' {
				return errCorrupt
			}
			c.Record = lines[off : off+int(l) : off+int(l)]
			off += int(l) + 1
		} else {
			if uint64(len(b)) < l {
				return errCorrupt
			}
			c.Record = b[:l:l]
			b = b[l:]
			e.Lines = append(append(e.Lines, c.Record...), '\n')
			e.v1lines = e.Lines
		}
		if withChanges {
			e.Changes = append(e.Changes, c)
		}
	}
	if h.v2 && (off != len(lines) || len(b) != 0) {
		return errCorrupt
	}
	return nil
}

type global struct {
	commit  int64
	size    int
	account string
}

func encodeGlobal(micros int64, size int, account string) []byte {
	b := binary.AppendUvarint(nil, uint64(micros))
	b = binary.AppendUvarint(b, uint64(size))
	return append(b, account...)
}

func decodeGlobal(b []byte) (global, error) {
	ct, n := binary.Uvarint(b)
	if n <= 0 {
		return global{}, errCorrupt
	}
	sz, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return global{}, errCorrupt
	}
	return global{commit: int64(ct), size: int(sz), account: string(b[n+m:])}, nil
}

// End returns the LSN of the account's last durable log entry, 0 if it has
// none. Reading after End returns nothing until a new commit.
func (s *Store) End(account string) (uint64, error) {
	st, err := s.account(account)
	if err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.mu.durable, nil
}

// ReadLog returns the account's durable entries with LSNs greater than
// after, in commit order, at most maxEntries of them and stopping once
// maxBytes of records are collected (at least one entry is returned when
// any is there). It does not block; see Wait. A reader whose position was
// removed by retention gets a *TruncatedError naming the lost range.
func (s *Store) ReadLog(account string, after uint64, maxEntries, maxBytes int) ([]changelog.Entry, error) {
	st, err := s.account(account)
	if err != nil {
		return nil, err
	}
	// Retention raises truncated before it deletes, so a check that passes
	// before the iterator is opened guarantees the iterator's snapshot
	// still holds every entry after the position.
	st.mu.Lock()
	truncated, durable := st.mu.truncated, st.mu.durable
	st.mu.Unlock()
	if truncated > after {
		return nil, &changelog.TruncatedError{Account: account, From: after + 1, To: truncated}
	}
	if durable <= after {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(account, after+1), UpperBound: logKey(account, durable+1)})
	if err != nil {
		return nil, fmt.Errorf("read log of %s: %w", account, err)
	}
	defer it.Close()
	var out []changelog.Entry
	size := 0
	for it.First(); it.Valid() && len(out) < maxEntries && (size < maxBytes || len(out) == 0); it.Next() {
		k := it.Key()
		lsn := binary.BigEndian.Uint64(k[len(k)-8:])
		v := append([]byte(nil), it.Value()...)
		e, err := decodeEntry(lsn, v)
		if err != nil {
			return nil, fmt.Errorf("read log of %s at lsn %d: %w", account, lsn, err)
		}
		size += len(v)
		out = append(out, e)
	}
	return out, it.Error()
}

// ScanLog calls fn for each of the account's durable entries after the
// given LSN, in commit order, until fn returns false or an error, without
// copying: the Entry and its Lines are valid only during the call (copy
// what must outlive it), and Changes are not decoded (Count says how
// many there are). It reads one consistent snapshot. A position removed by
// retention gives a *TruncatedError before fn is called.
func (s *Store) ScanLog(account string, after uint64, fn func(e *changelog.Entry) (bool, error)) error {
	var e decodedEntry
	return s.scanLog(account, after, func(lsn uint64, v []byte) (bool, error) {
		if err := decodeEntryInto(&e, lsn, v, false); err != nil {
			return false, err
		}
		return fn(&e.Entry)
	})
}

// scanLog calls fn with each durable entry's LSN and encoded value after
// the given LSN (see ScanLog).
func (s *Store) scanLog(account string, after uint64, fn func(lsn uint64, v []byte) (bool, error)) error {
	st, err := s.account(account)
	if err != nil {
		return err
	}
	st.mu.Lock()
	truncated, durable := st.mu.truncated, st.mu.durable
	st.mu.Unlock()
	if truncated > after {
		return &changelog.TruncatedError{Account: account, From: after + 1, To: truncated}
	}
	if durable <= after {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKey(account, after+1), UpperBound: logKey(account, durable+1)})
	if err != nil {
		return fmt.Errorf("read log of %s: %w", account, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		lsn := binary.BigEndian.Uint64(k[len(k)-8:])
		more, err := fn(lsn, it.Value())
		if errors.Is(err, errCorrupt) {
			return fmt.Errorf("read log of %s at lsn %d: %w", account, lsn, err)
		}
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// NextCommit returns the commit time (µs) of the account's first durable
// entry after the given LSN, reading only its header; ok is false when
// there is none. A position removed by retention gives a *TruncatedError.
func (s *Store) NextCommit(account string, after uint64) (micros int64, ok bool, err error) {
	var found bool
	err = s.scanLog(account, after, func(_ uint64, v []byte) (bool, error) {
		h, err := decodeEntryHeader(v)
		if err != nil {
			return false, err
		}
		micros, found = h.commitTime, true
		return false, nil
	})
	return micros, found, err
}

// Wait blocks until the account has a durable entry after the given LSN or
// ctx ends.
func (s *Store) Wait(ctx context.Context, account string, after uint64) error {
	st, err := s.account(account)
	if err != nil {
		return err
	}
	for {
		st.mu.Lock()
		durable, ch := st.mu.durable, st.mu.changed
		st.mu.Unlock()
		if durable > after {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return graph.ErrClosed
		case <-ch:
		}
	}
}

// LogBytes returns the size of the retained log.
func (s *Store) LogBytes() int64 { return s.logBytes.Load() }
