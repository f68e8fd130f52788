package pebblestore

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

const truncateBatch = 10000

func (s *Store) retentionLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.ret.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if _, err := s.Truncate(); err != nil {
				s.log.Error("log retention failed", slog.Any("err", err))
			}
		}
	}
}

// Truncate runs one retention pass now and returns how many entries it
// removed. Readers positioned before a removed entry of their account get a
// *TruncatedError from then on.
func (s *Store) Truncate() (int, error) {
	total := 0
	for {
		n, err := s.truncateOnce()
		total += n
		if err != nil || n < truncateBatch {
			return total, err
		}
	}
}

func (s *Store) truncateOnce() (int, error) {
	cutoff := int64(-1)
	if s.ret.MaxAge > 0 {
		cutoff = s.now().Add(-s.ret.MaxAge).UnixMicro()
	}
	excess := int64(0)
	if s.ret.MaxBytes > 0 {
		excess = s.logBytes.Load() - s.ret.MaxBytes
	}
	type mark struct {
		lsn    uint64
		commit int64
	}
	marks := make(map[string]mark)
	type doomed struct {
		lsn     uint64
		account string
	}
	var lsns []doomed
	var removed int64
	var maxLSN uint64
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famGlobal}, UpperBound: []byte{famGlobal + 1}})
	if err != nil {
		return 0, fmt.Errorf("log retention: %w", err)
	}
	for it.First(); it.Valid() && len(lsns) < truncateBatch; it.Next() {
		g, err := decodeGlobal(it.Value())
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("log retention: %w", err)
		}
		if g.commit >= cutoff && excess-removed <= 0 {
			break
		}
		lsn := binary.BigEndian.Uint64(it.Key()[1:])
		lsns = append(lsns, doomed{lsn, g.account})
		removed += int64(g.size)
		maxLSN = max(maxLSN, lsn)
		m := marks[g.account]
		marks[g.account] = mark{max(m.lsn, lsn), max(m.commit, g.commit)}
	}
	err = it.Close()
	if err != nil || len(lsns) == 0 {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for account, m := range marks {
		st, err := s.account(account)
		if err != nil {
			return 0, err
		}
		// Raise the mark before deleting: see ReadLog.
		st.mu.Lock()
		if m.lsn > st.mu.truncated {
			st.mu.truncated = m.lsn
		}
		st.mu.Unlock()
		v := binary.BigEndian.AppendUint64(nil, m.lsn)
		v = binary.BigEndian.AppendUint64(v, uint64(m.commit))
		if err := b.Set(truncKey(account), v, nil); err != nil {
			return 0, err
		}
	}
	// Delete exactly the entries examined: an entry of another account with
	// a lower LSN may have been committed since, and it was not marked.
	for _, d := range lsns {
		if err := b.Delete(logKey(d.account, d.lsn), nil); err != nil {
			return 0, err
		}
		if err := b.Delete(globalKey(d.lsn), nil); err != nil {
			return 0, err
		}
	}
	if maxLSN > s.truncMax.Load() {
		s.truncMax.Store(maxLSN)
	}
	if err := b.Set(globalTruncKey, binary.BigEndian.AppendUint64(nil, s.truncMax.Load()), nil); err != nil {
		return 0, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("log retention: %w", err)
	}
	s.logBytes.Add(-removed)
	s.metrics.Truncated(len(lsns))
	s.log.Info("log truncated by retention",
		slog.Int("entries", len(lsns)), slog.Int64("bytes", removed),
		slog.Uint64("through_lsn", maxLSN), slog.Int("accounts", len(marks)))
	return len(lsns), nil
}
