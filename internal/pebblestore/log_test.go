package pebblestore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/changelog"
	"github.com/j1ds/j1ds/internal/graph"
)

// appendEntryV1 encodes an entry as stores written before version 2 hold
// it: uvarint commit time, uvarint count, then per change op, kind, id
// and record, each with its length.
func appendEntryV1(b []byte, micros int64, changes []changelog.Change) []byte {
	b = binary.AppendUvarint(b, uint64(micros))
	b = binary.AppendUvarint(b, uint64(len(changes)))
	for _, c := range changes {
		b = append(b, byte(c.Op), byte(c.Kind))
		b = binary.AppendUvarint(b, uint64(len(c.ID)))
		b = append(b, c.ID...)
		b = binary.AppendUvarint(b, uint64(len(c.Record)))
		b = append(b, c.Record...)
	}
	return b
}

// TestLogReadsVersion1Entries: a store written before the entries kept
// their records together as lines still reads: ReadLog, ScanLog and
// NextCommit see the old entry as they see a new one, the account's last
// commit time is recovered from it, and the next transaction follows it.
func TestLogReadsVersion1Entries(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := []changelog.Change{
		{Op: graph.OpCreate, Kind: graph.KindEntity, ID: "id-1", Record: []byte(`{"operation":"c","n":1}`)},
		{Op: graph.OpDelete, Kind: graph.KindRelationship, ID: "id-2", Record: []byte(`{"operation":"d","n":2}`)},
	}
	const micros = 1_700_000_000_000_000
	v := appendEntryV1(nil, micros, old)
	b := s.DB().NewBatch()
	_ = b.Set(logKey("acct", 1), v, nil)
	_ = b.Set(globalKey(1), encodeGlobal(micros, len(v), "acct"), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantLines := []byte("{\"operation\":\"c\",\"n\":1}\n{\"operation\":\"d\",\"n\":2}\n")

	es, err := s.ReadLog("acct", 0, 10, 1<<20)
	if err != nil || len(es) != 1 {
		t.Fatalf("ReadLog: %d entries, %v", len(es), err)
	}
	e := es[0]
	if e.LSN != 1 || e.CommitTime != micros || e.Count != 2 || !bytes.Equal(e.Lines, wantLines) {
		t.Fatalf("ReadLog: %+v", e)
	}
	if !slices.EqualFunc(e.Changes, old, func(a, b changelog.Change) bool {
		return a.Op == b.Op && a.Kind == b.Kind && a.ID == b.ID && bytes.Equal(a.Record, b.Record)
	}) {
		t.Fatalf("ReadLog changes: %+v", e.Changes)
	}
	var scanned []string
	err = s.ScanLog("acct", 0, func(e *changelog.Entry) (bool, error) {
		scanned = append(scanned, string(e.Lines))
		if e.Count != 2 || len(e.Changes) != 0 {
			t.Errorf("ScanLog: count %d, %d changes decoded", e.Count, len(e.Changes))
		}
		return true, nil
	})
	if err != nil || len(scanned) != 1 || scanned[0] != string(wantLines) {
		t.Fatalf("ScanLog: %q, %v", scanned, err)
	}
	if at, ok, err := s.NextCommit("acct", 0); at != micros || !ok || err != nil {
		t.Fatalf("NextCommit: %d %v %v", at, ok, err)
	}

	// The clock is behind the old entry: the next commit still follows it.
	s.now = func() time.Time { return time.UnixMicro(micros - 5) }
	c, err := s.Update("acct", func(tx graph.Txn) error {
		in, err := graph.ParseObject(graph.KindEntity, []byte(`{"_key":"new-entity-1","_type":"t_user","_class":"User"}`))
		if err != nil {
			return err
		}
		in.Scope, in.Source = "s", "api"
		_, _, err = tx.Upsert(&in)
		return err
	})
	if err != nil || c.LSN != 2 || c.CommitTime != micros+1 {
		t.Fatalf("commit after the old entry: %+v, %v", c, err)
	}
	es, err = s.ReadLog("acct", 0, 10, 1<<20)
	if err != nil || len(es) != 2 || es[1].Count != 1 || len(es[1].Changes) != 1 ||
		!bytes.Equal(es[1].Lines, append(slices.Clone(es[1].Changes[0].Record), '\n')) {
		t.Fatalf("after a new commit: %+v, %v", es, err)
	}
}

// TestLogRefusesUnknownVersions: an entry of a version this build does
// not know is reported corrupt, naming the version, not misread.
func TestLogRefusesUnknownVersions(t *testing.T) {
	v := appendEntryHeader(nil, 5, 0, 0)
	v[1] = 9
	err := decodeEntryInto(&decodedEntry{}, 1, v, true)
	if !errors.Is(err, errCorrupt) || !bytes.Contains([]byte(err.Error()), []byte("version 9")) {
		t.Fatalf("version 9: %v", err)
	}
}

// TestDecodeEntryChecksLines: an entry whose lines do not match its
// changes' record lengths is corrupt, whichever way it is read.
func TestDecodeEntryChecksLines(t *testing.T) {
	body := appendChangeMeta(nil, graph.OpCreate, graph.KindEntity, "id", 3)
	for name, lines := range map[string]string{
		"short":         "ab\n",
		"no newline":    "abcd",
		"extra lines":   "abc\nx\n",
		"newline moved": "ab\nc",
	} {
		v := appendEntryHeader(nil, 5, 1, len(lines))
		v = append(append(v, body...), lines...)
		if err := decodeEntryInto(&decodedEntry{}, 1, v, true); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want corrupt", name, err)
		}
	}
	v := appendEntryHeader(nil, 5, 1, 4)
	v = append(append(v, body...), "abc\n"...)
	var e decodedEntry
	if err := decodeEntryInto(&e, 1, v, true); err != nil || string(e.Changes[0].Record) != "abc" || string(e.Lines) != "abc\n" {
		t.Fatalf("a sound entry: %+v, %v", e, err)
	}
}

// FuzzDecodeEntry: no input makes decoding panic, and what decodes with
// its changes decodes to the same header and lines without them.
func FuzzDecodeEntry(f *testing.F) {
	meta := appendChangeMeta(nil, graph.OpCreate, graph.KindEntity, "id-1", 3)
	v2 := append(append(appendEntryHeader(nil, 7, 1, 4), meta...), "abc\n"...)
	f.Add(v2)
	f.Add(appendEntryV1(nil, 7, []changelog.Change{{Op: graph.OpUpdate, Kind: graph.KindEntity, ID: "id-2", Record: []byte("xyz")}}))
	f.Add([]byte{0, 2, 7, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	// A record length of 2⁶⁴-1 (it once overflowed the bounds check).
	f.Add([]byte{0, 2, 7, 1, 1, 'c', 'e', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, '\n'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var full, lines decodedEntry
		if err := decodeEntryInto(&full, 1, b, true); err != nil {
			return
		}
		if err := decodeEntryInto(&lines, 1, b, false); err != nil {
			t.Fatalf("decodes with its changes but not without: %v", err)
		}
		if full.CommitTime != lines.CommitTime || full.Count != lines.Count || !bytes.Equal(full.Lines, lines.Lines) || len(full.Changes) != full.Count {
			t.Fatalf("with changes %+v, without %+v", full, lines)
		}
	})
}

// TestDecodeEntryNeverWritesIntoTheLastEntry: ScanLog decodes every entry
// into one Entry; the lines of a version 1 entry are built in a buffer of
// its own, never over the value a version 2 entry before it aliased.
func TestDecodeEntryNeverWritesIntoTheLastEntry(t *testing.T) {
	meta := appendChangeMeta(nil, graph.OpCreate, graph.KindEntity, "id-1", 3)
	v2 := append(append(appendEntryHeader(nil, 7, 1, 4), meta...), "abc\n"...)
	v1 := appendEntryV1(nil, 8, []changelog.Change{{Op: graph.OpUpdate, Kind: graph.KindEntity, ID: "id-2", Record: []byte("xyz")}})
	before := slices.Clone(v2)
	var e decodedEntry
	if err := decodeEntryInto(&e, 1, v2, false); err != nil || string(e.Lines) != "abc\n" {
		t.Fatalf("v2: %q, %v", e.Lines, err)
	}
	if err := decodeEntryInto(&e, 2, v1, false); err != nil || string(e.Lines) != "xyz\n" {
		t.Fatalf("v1 after v2: %q, %v", e.Lines, err)
	}
	if !bytes.Equal(v2, before) {
		t.Fatalf("decoding the version 1 entry wrote into the version 2 entry's value: %q", v2)
	}
}
