package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/settings"
	"github.com/j1ds/j1ds/internal/stream"
)

// Settings keeps every account's Data Streaming settings (streaming_settings)
// and, in a row of its own, its stream state (stream_states), the
// exporter's checkpoint: moving a cursor rewrites only the small state row
// (schema/002_tenants.sql).
//
// The state row is the account's lock. Every read-modify-write of an
// account, a settings update or a checkpoint write, is one transaction
// that first locks the row (creating it when the account has none) with
// SELECT ... FOR UPDATE, so the writes of one account are serialised across
// connections and processes, and writes of different accounts never wait
// on each other. Reads take no lock: a read is one statement, so one
// snapshot.
type Settings struct {
	s *Store
	// fence, when set, makes every checkpoint write conditional on the
	// export lease of the account's group (Fenced).
	fence    func(account string) (group int, token int64, ok bool)
	onFenced func()
}

// Fenced returns the settings with checkpoint writes fenced: each write
// first checks, in its transaction, that the account's group is still
// held with the token fence gives (cluster.Manager.Fence), and fails with
// stream.ErrFenced, calling onFenced, when it is not. Settings updates are
// not fenced: any node saves them.
func (ss *Settings) Fenced(fence func(account string) (group int, token int64, ok bool), onFenced func()) *Settings {
	return &Settings{s: ss.s, fence: fence, onFenced: onFenced}
}

var (
	_ settings.Store    = (*Settings)(nil)
	_ stream.Checkpoint = (*Settings)(nil)
)

// Settings returns the settings and stream states kept in s's database.
func (s *Store) Settings() *Settings { return &Settings{s: s} }

// settingsValue is the JSON of a streaming_settings row, the Pebble
// backend's settings record.
type settingsValue struct {
	Account  string                   `json:"account"`
	Settings settings.Settings        `json:"settings"`
	LastTest *settings.ConnectionTest `json:"lastConnectionTest,omitempty"`
	Periods  []settings.Period        `json:"periods,omitempty"`
}

// decodeState decodes a stream_states row's state over the zero state of
// account; a nil v (no row) leaves it zero.
func decodeState(account string, v []byte) (stream.State, error) {
	st := stream.State{Account: account}
	if v == nil {
		return st, nil
	}
	if err := json.Unmarshal(v, &st); err != nil {
		return st, fmt.Errorf("decode stream state of %s: %w", account, err)
	}
	return st, nil
}

// Get returns the account's record, its settings and its stream state read
// by one statement; an account never configured has a zero record.
func (ss *Settings) Get(account string) (settings.Record, error) {
	ctx, cancel := ss.s.opCtx()
	defer cancel()
	var sv, stv []byte
	err := ss.s.pool.QueryRow(ctx, `SELECT
		(SELECT record FROM streaming_settings WHERE account = $1),
		(SELECT state FROM stream_states WHERE account = $1)`, account).Scan(&sv, &stv)
	if err != nil {
		return settings.Record{}, ss.s.wrap("read settings of "+account, err)
	}
	return decodeRecord(account, sv, stv)
}

func decodeRecord(account string, sv, stv []byte) (settings.Record, error) {
	r := settings.Record{Account: account}
	if sv != nil {
		var v settingsValue
		if err := json.Unmarshal(sv, &v); err != nil {
			return settings.Record{}, fmt.Errorf("decode settings of %s: %w", account, err)
		}
		r.Settings, r.LastTest, r.Periods = v.Settings, v.LastTest, v.Periods
	}
	var err error
	if r.Stream, err = decodeState(account, stv); err != nil {
		return settings.Record{}, err
	}
	return r, nil
}

// Update runs fn on the account's record, read under the account's lock,
// and saves it, settings and stream state, in the same transaction, unless
// fn fails.
func (ss *Settings) Update(account string, fn func(*settings.Record) error) (settings.Record, error) {
	ctx, cancel := ss.s.opCtx()
	defer cancel()
	select {
	case ss.s.updateSlots <- struct{}{}:
		defer func() { <-ss.s.updateSlots }()
	case <-ctx.Done():
		return settings.Record{}, ss.s.wrap("save settings of "+account, ctx.Err())
	}
	var r settings.Record
	var fnErr error // an error of fn, returned as it is
	err := pgx.BeginFunc(ctx, ss.s.pool, func(tx pgx.Tx) error {
		stv, err := lockState(ctx, tx, account)
		if err != nil {
			return err
		}
		var sv []byte
		err = tx.QueryRow(ctx, "SELECT record FROM streaming_settings WHERE account = $1", account).Scan(&sv)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read settings: %w", err)
		}
		if r, err = decodeRecord(account, sv, stv); err != nil {
			return err
		}
		if fnErr = fn(&r); fnErr != nil {
			return fnErr
		}
		r.Account, r.Stream.Account = account, account
		v, err := json.Marshal(settingsValue{Account: account, Settings: r.Settings, LastTest: r.LastTest, Periods: r.Periods})
		if err != nil {
			return fmt.Errorf("encode settings: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO streaming_settings (account, record) VALUES ($1, $2)
			ON CONFLICT (account) DO UPDATE SET record = excluded.record`, account, v)
		if err != nil {
			return fmt.Errorf("write settings: %w", err)
		}
		// Delivered at commit, to every node (Listen): the one that
		// exports the account applies the settings.
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", channelSettings, account); err != nil {
			return fmt.Errorf("notify the other nodes: %w", err)
		}
		return writeState(ctx, tx, &r.Stream)
	})
	if fnErr != nil {
		return settings.Record{}, fnErr
	}
	if err != nil {
		return settings.Record{}, ss.s.wrap("save settings of "+account, err)
	}
	return r, nil
}

// lockState locks the account's stream_states row and returns its state.
// An account without one gets the zero state's row first, inserted in the
// transaction (so gone again if it rolls back); of concurrent inserts one
// goes through and the others wait for it, then lock its row.
func lockState(ctx context.Context, tx pgx.Tx, account string) ([]byte, error) {
	for inserted := false; ; inserted = true {
		var v []byte
		err := tx.QueryRow(ctx, "SELECT state FROM stream_states WHERE account = $1 FOR UPDATE", account).Scan(&v)
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) || inserted {
			return nil, fmt.Errorf("lock stream state: %w", err)
		}
		zero, err := json.Marshal(stream.State{Account: account})
		if err != nil {
			return nil, fmt.Errorf("encode stream state: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO stream_states (account, enabled, state) VALUES ($1, false, $2)
			ON CONFLICT (account) DO NOTHING`, account, zero)
		if err != nil {
			return nil, fmt.Errorf("lock stream state: %w", err)
		}
	}
}

// writeState writes the stream state of a row lockState locked.
func writeState(ctx context.Context, tx pgx.Tx, st *stream.State) error {
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode stream state: %w", err)
	}
	_, err = tx.Exec(ctx, "UPDATE stream_states SET enabled = $2, state = $3 WHERE account = $1", st.Account, st.Enabled, v)
	if err != nil {
		return fmt.Errorf("write stream state: %w", err)
	}
	return nil
}

// Load returns the account's stream state.
func (ss *Settings) Load(account string) (stream.State, error) {
	ctx, cancel := ss.s.opCtx()
	defer cancel()
	var v []byte
	err := ss.s.pool.QueryRow(ctx, "SELECT state FROM stream_states WHERE account = $1", account).Scan(&v)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return stream.State{Account: account}, ss.s.wrap("read stream state of "+account, err)
	}
	return decodeState(account, v)
}

// Enabled returns the state of every account that streams (the partial
// index stream_states_enabled): a statement that names no account, as the
// exporter serves every account.
func (ss *Settings) Enabled() ([]stream.State, error) {
	ctx, cancel := ss.s.opCtx()
	defer cancel()
	rows, err := ss.s.pool.Query(ctx, "SELECT account, state FROM stream_states WHERE enabled ORDER BY account")
	if err != nil {
		return nil, ss.s.wrap("list stream states", err)
	}
	defer rows.Close()
	var out []stream.State
	for rows.Next() {
		var account string
		var v []byte
		if err := rows.Scan(&account, &v); err != nil {
			return nil, ss.s.wrap("list stream states", err)
		}
		st, err := decodeState(account, v)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, ss.s.wrap("list stream states", err)
	}
	return out, nil
}

// change applies fn, one of the rules of stream.State, to the account's
// stream state under the account's lock and saves it, unless fn fails.
func (ss *Settings) change(account string, fn func(*stream.State) error) error {
	var group int
	var token int64
	if ss.fence != nil {
		var ok bool
		if group, token, ok = ss.fence(account); !ok {
			ss.fenced()
			return stream.ErrFenced
		}
	}
	ctx, cancel := ss.s.opCtx()
	defer cancel()
	var fnErr error // an error of fn, returned as it is
	err := pgx.BeginFunc(ctx, ss.s.pool, func(tx pgx.Tx) error {
		// The lease first: it also bounds the transaction's idle time
		// before the account's row is locked.
		if ss.fence != nil {
			if err := fence(ctx, tx, group, token); err != nil {
				if errors.Is(err, stream.ErrFenced) {
					ss.fenced()
					fnErr = err
				}
				return err
			}
		}
		v, err := lockState(ctx, tx, account)
		if err != nil {
			return err
		}
		st, err := decodeState(account, v)
		if err != nil {
			return err
		}
		if fnErr = fn(&st); fnErr != nil {
			return fnErr
		}
		st.Account = account
		return writeState(ctx, tx, &st)
	})
	if fnErr != nil {
		return fnErr
	}
	return ss.s.wrap("save stream state of "+account, err)
}

func (ss *Settings) fenced() {
	if ss.onFenced != nil {
		ss.onFenced()
	}
}

// SaveAttempt implements stream.Checkpoint.
func (ss *Settings) SaveAttempt(account string, gen, after, through uint64, suffix string) error {
	return ss.change(account, func(st *stream.State) error { return st.SaveAttempt(gen, after, through, suffix) })
}

// Advance implements stream.Checkpoint.
func (ss *Settings) Advance(account string, gen, lsn uint64, events int, key string, at time.Time, lag time.Duration) error {
	return ss.change(account, func(st *stream.State) error { return st.Advance(gen, lsn, events, key, at, lag) })
}

// SkipGap implements stream.Checkpoint.
func (ss *Settings) SkipGap(account string, gen uint64, g stream.Gap) (stream.Gap, bool, error) {
	var recorded stream.Gap
	var isNew bool
	err := ss.change(account, func(st *stream.State) error {
		var err error
		recorded, isNew, err = st.SkipGap(gen, g)
		return err
	})
	return recorded, isNew, err
}

// SetError implements stream.Checkpoint.
func (ss *Settings) SetError(account string, gen uint64, p *stream.Problem, lag time.Duration) error {
	return ss.change(account, func(st *stream.State) error { return st.SetError(gen, p, lag) })
}
