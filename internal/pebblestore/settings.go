package pebblestore

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
)

// Settings keeps every account's Data Streaming settings ('D' + account)
// and, apart from them, its stream state ('C' + account), the exporter's
// checkpoint: moving a cursor rewrites only the small stream record.
// Writes are synced. Read-modify-writes of one account are serialised by
// its lock (accountLocks).
type Settings struct {
	db    *pebble.DB
	locks *accountLocks
}

var (
	_ settings.Store    = (*Settings)(nil)
	_ stream.Checkpoint = (*Settings)(nil)
)

// settingsValue is the 'D' record. Stores written before the stream state
// had a key of its own keep it, with the periods, under "stream": the
// upgrade at Open moves it out.
type settingsValue struct {
	Account  string                   `json:"account"`
	Settings settings.Settings        `json:"settings"`
	LastTest *settings.ConnectionTest `json:"lastConnectionTest,omitempty"`
	Periods  []settings.Period        `json:"periods,omitempty"`
	Legacy   *legacyStream            `json:"stream,omitempty"`
}

// legacyStream is the stream state as the 'D' record held it before it had
// a key of its own.
type legacyStream struct {
	stream.State
	Periods []settings.Period `json:"periods,omitempty"`
}

func newSettings(db *pebble.DB) *Settings {
	return &Settings{db: db, locks: newAccountLocks()}
}

// Get returns the account's record; an account never configured has a
// zero record.
func (s *Settings) Get(account string) (settings.Record, error) {
	r := settings.Record{Account: account}
	var v settingsValue
	ok, err := getJSON(s.db, settingsKey(account), &v)
	if err != nil {
		return r, fmt.Errorf("read settings of %s: %w", account, err)
	}
	if ok {
		r.Settings, r.LastTest, r.Periods = v.Settings, v.LastTest, v.Periods
	}
	if r.Stream, err = s.Load(account); err != nil {
		return r, err
	}
	return r, nil
}

// Update runs fn on the account's record and saves it, settings and stream
// state in one synced batch, unless fn fails.
func (s *Settings) Update(account string, fn func(*settings.Record) error) (settings.Record, error) {
	defer s.locks.lock(account)()
	r, err := s.Get(account)
	if err != nil {
		return settings.Record{}, err
	}
	if err := fn(&r); err != nil {
		return settings.Record{}, err
	}
	r.Account, r.Stream.Account = account, account
	b := s.db.NewBatch()
	defer b.Close()
	if err := setJSON(b, settingsKey(account), settingsValue{Account: account, Settings: r.Settings, LastTest: r.LastTest, Periods: r.Periods}); err != nil {
		return settings.Record{}, err
	}
	if err := setJSON(b, streamKey(account), r.Stream); err != nil {
		return settings.Record{}, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return settings.Record{}, fmt.Errorf("save settings of %s: %w", account, err)
	}
	return r, nil
}

// Load returns the account's stream state.
func (s *Settings) Load(account string) (stream.State, error) {
	st := stream.State{Account: account}
	if _, err := getJSON(s.db, streamKey(account), &st); err != nil {
		return st, fmt.Errorf("read stream state of %s: %w", account, err)
	}
	return st, nil
}

// Enabled returns the state of every account that streams.
func (s *Settings) Enabled() ([]stream.State, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famStream}, UpperBound: []byte{famStream + 1}})
	if err != nil {
		return nil, fmt.Errorf("list stream states: %w", err)
	}
	defer it.Close()
	var out []stream.State
	for it.First(); it.Valid(); it.Next() {
		var st stream.State
		if err := json.Unmarshal(it.Value(), &st); err != nil {
			return nil, fmt.Errorf("decode stream state %q: %w", it.Key(), err)
		}
		if st.Enabled {
			out = append(out, st)
		}
	}
	return out, it.Error()
}

// change applies fn to the account's stream state and saves it.
func (s *Settings) change(account string, fn func(*stream.State) error) error {
	defer s.locks.lock(account)()
	st, err := s.Load(account)
	if err != nil {
		return err
	}
	if err := fn(&st); err != nil {
		return err
	}
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.db.Set(streamKey(account), v, pebble.Sync); err != nil {
		return fmt.Errorf("save stream state of %s: %w", account, err)
	}
	return nil
}

// SaveAttempt implements stream.Checkpoint.
func (s *Settings) SaveAttempt(account string, gen, after, through uint64, suffix string) error {
	return s.change(account, func(st *stream.State) error { return st.SaveAttempt(gen, after, through, suffix) })
}

// Advance implements stream.Checkpoint.
func (s *Settings) Advance(account string, gen, lsn uint64, events int, key string, at time.Time, lag time.Duration) error {
	return s.change(account, func(st *stream.State) error { return st.Advance(gen, lsn, events, key, at, lag) })
}

// SkipGap implements stream.Checkpoint.
func (s *Settings) SkipGap(account string, gen uint64, g stream.Gap) (stream.Gap, bool, error) {
	var recorded stream.Gap
	var isNew bool
	err := s.change(account, func(st *stream.State) error {
		var err error
		recorded, isNew, err = st.SkipGap(gen, g)
		return err
	})
	return recorded, isNew, err
}

// SetError implements stream.Checkpoint.
func (s *Settings) SetError(account string, gen uint64, p *stream.Problem, lag time.Duration) error {
	return s.change(account, func(st *stream.State) error { return st.SetError(gen, p, lag) })
}

// upgrade moves the stream state of records written before it had a key
// of its own out of the 'D' record, in one synced batch. The state's
// Enabled and Target come from the settings, which held them.
func (s *Settings) upgrade() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famSettings}, UpperBound: []byte{famSettings + 1}})
	if err != nil {
		return fmt.Errorf("upgrade settings: %w", err)
	}
	defer it.Close()
	b := s.db.NewBatch()
	defer b.Close()
	for it.First(); it.Valid(); it.Next() {
		var v settingsValue
		if err := json.Unmarshal(it.Value(), &v); err != nil {
			return fmt.Errorf("decode settings %q: %w", it.Key(), err)
		}
		if v.Legacy == nil {
			continue
		}
		st := v.Legacy.State
		st.Account, st.Enabled, st.Target = v.Account, v.Settings.Enabled, v.Settings.Target()
		v.Periods, v.Legacy = v.Legacy.Periods, nil
		if err := setJSON(b, settingsKey(v.Account), v); err != nil {
			return err
		}
		if err := setJSON(b, streamKey(v.Account), st); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("upgrade settings: %w", err)
	}
	if b.Empty() {
		return nil
	}
	return b.Commit(pebble.Sync)
}

// getJSON decodes the value of key into v; ok is false when there is none.
func getJSON(db *pebble.DB, key []byte, v any) (ok bool, err error) {
	raw, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

func setJSON(b *pebble.Batch, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Set(key, raw, nil)
}
