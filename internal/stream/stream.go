package stream

import (
	"errors"
	"fmt"
	"time"
)

// ErrStale is returned to an exporter whose view of an account's stream
// is no longer current: it was disabled, re-enabled or retargeted.
var ErrStale = errors.New("stream settings changed")

// ErrFenced is returned by a checkpoint write of a node that no longer
// exports the account: another node claimed its group (cluster mode). It
// is an ErrStale: the exporter discards what it was doing for the account.
var ErrFenced = fmt.Errorf("%w: another node exports this account now", ErrStale)

// ErrCursorMoved is returned by a cursor move or a saved attempt that
// expected the cursor where it no longer is: another exporter of the
// account moved it (a flush that outlived a reload of the account). It is
// an ErrStale: the exporter reloads the account's state.
var ErrCursorMoved = fmt.Errorf("%w: the cursor moved under this exporter", ErrStale)

// MaxGaps bounds the gaps kept in an account's state; the oldest go first.
const MaxGaps = 50

// Problem is an error shown to users: a code and a message that says what
// to do, and who must do it.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// ActionBy is who must act: ActionCustomer (the bucket, its policy,
	// owner, region or KMS key) or ActionOperator (the service's side; the
	// customer can only wait while it retries). Empty when unknown.
	ActionBy string    `json:"actionBy,omitempty"`
	At       time.Time `json:"at"`
}

// Who must act on a Problem.
const (
	ActionCustomer = "customer"
	ActionOperator = "operator"
)

// Gap records changes that were dropped because the account's backlog
// outlived the log's retention.
type Gap struct {
	FromLSN uint64    `json:"fromLsn"`
	ToLSN   uint64    `json:"toLsn"`
	At      time.Time `json:"at"`
}

// Attempt names a batch: the changes after AfterLSN through ThroughLSN.
type Attempt struct {
	Generation uint64 `json:"generation"`
	AfterLSN   uint64 `json:"afterLsn"`
	ThroughLSN uint64 `json:"throughLsn"`
	// Suffix is the key suffix the batch's object was given, so that the
	// retry stores it under the same key; empty: the exporter's default.
	Suffix string `json:"suffix,omitempty"`
}

// State is the stream state of one account.
type State struct {
	Account string `json:"account"`
	// Enabled is whether the account streams.
	Enabled bool `json:"enabled"`
	// Target is where objects go, in the destination's own words (for S3,
	// s3bucket.Target's String: bucket and owner). The exporter passes it to
	// the destination unread.
	Target string `json:"target,omitempty"`
	// Suffix is the object key suffix the account chose (".jsonl" or
	// ".jsonl.gz"); empty follows the exporter's default (serve's
	// --object-suffix). A change applies from the next object: it starts
	// no new generation.
	Suffix string `json:"suffix,omitempty"`
	// Generation increases each time streaming is enabled, disabled or
	// retargeted; an exporter may move the cursor only for the generation
	// it read.
	Generation uint64 `json:"generation"`
	// EnabledAt and EnabledAtLSN mark the start of the current enabled
	// period: changes after EnabledAtLSN are streamed, none before.
	EnabledAt    time.Time `json:"enabledAt,omitzero"`
	EnabledAtLSN uint64    `json:"enabledAtLsn"`
	// Cursor is the LSN of the last change stored in the bucket (or
	// skipped as a gap).
	Cursor          uint64    `json:"cursor"`
	ObjectsExported int64     `json:"objectsExported"`
	EventsExported  int64     `json:"eventsExported"`
	LastExportAt    time.Time `json:"lastExportAt,omitzero"`
	LastExportKey   string    `json:"lastExportKey,omitempty"`
	LastError       *Problem  `json:"lastError,omitempty"`
	Gaps            []Gap     `json:"gaps,omitempty"`
	// Attempt is the batch of an upload started and not confirmed, saved
	// before the upload: after a crash the retry from the same cursor
	// stores exactly these changes again.
	Attempt *Attempt `json:"attempt,omitempty"`
	// History is what the exports did over the last HistoryWindow, oldest
	// bucket first (history.go); Advance and SetError add to it.
	History []HistoryBucket `json:"history,omitempty"`
}

// Checkpoint keeps every account's stream state; it is all the exporter
// knows of settings. Each method is atomic per account and durable when
// it returns.
type Checkpoint interface {
	// Enabled returns the state of every account that streams.
	Enabled() ([]State, error)
	// Load returns an account's state; the zero State (with Account set)
	// when it never streamed.
	Load(account string) (State, error)
	// SaveAttempt records, before an upload starts, the batch it holds:
	// the changes after LSN after (the cursor) through LSN through, in an
	// object whose key ends in suffix (State.SaveAttempt).
	SaveAttempt(account string, gen, after, through uint64, suffix string) error
	// Advance records an exported object, stored at time at with lag the
	// age of its oldest change: the cursor moves to lsn (State.Advance).
	Advance(account string, gen, lsn uint64, events int, key string, at time.Time, lag time.Duration) error
	// SkipGap records changes lost to retention and moves the cursor past
	// them; it returns the gap as recorded and whether it is new
	// (State.SkipGap).
	SkipGap(account string, gen uint64, g Gap) (Gap, bool, error)
	// SetError records the last export error (nil clears it), with lag
	// the age of the oldest change the failed attempt held
	// (State.SetError).
	SetError(account string, gen uint64, p *Problem, lag time.Duration) error
}

// current fails with ErrStale unless the state streams in generation gen.
func (s *State) current(gen uint64) error {
	if !s.Enabled || s.Generation != gen {
		return ErrStale
	}
	return nil
}

// Advance moves the cursor to lsn after an object was stored under key at
// time at, counting its events (in the totals and in the history, with
// lag the age of its oldest change) and clearing the saved attempt and the
// last error. The cursor only moves forward.
func (s *State) Advance(gen, lsn uint64, events int, key string, at time.Time, lag time.Duration) error {
	if err := s.current(gen); err != nil {
		return err
	}
	if lsn <= s.Cursor {
		return fmt.Errorf("advance %s: cursor %d would not move forward from %d: %w", s.Account, lsn, s.Cursor, ErrCursorMoved)
	}
	s.Cursor, s.Attempt = lsn, nil
	s.ObjectsExported++
	s.EventsExported += int64(events)
	s.LastExportAt, s.LastExportKey = at.UTC(), key
	s.LastError = nil
	s.record(at, 1, int64(events), 0, lag)
	return nil
}

// SaveAttempt records the batch of an upload about to start: the changes
// after LSN after, which must be the cursor, through LSN through, stored
// under a key ending in suffix.
func (s *State) SaveAttempt(gen, after, through uint64, suffix string) error {
	if err := s.current(gen); err != nil {
		return err
	}
	if through <= after {
		return fmt.Errorf("attempt %s: batch %d..%d is empty", s.Account, after+1, through)
	}
	if after != s.Cursor {
		return fmt.Errorf("attempt %s: batch %d..%d does not start at the cursor %d: %w", s.Account, after+1, through, s.Cursor, ErrCursorMoved)
	}
	s.Attempt = &Attempt{Generation: gen, AfterLSN: after, ThroughLSN: through, Suffix: suffix}
	return nil
}

// SkipGap records changes lost to retention and moves the cursor past
// them. A gap that continues the last one (nothing was exported between
// them, as when retention keeps truncating during one long outage)
// extends it, so one outage is one gap. It returns the gap as recorded and
// whether it is new.
func (s *State) SkipGap(gen uint64, g Gap) (Gap, bool, error) {
	if err := s.current(gen); err != nil {
		return Gap{}, false, err
	}
	recorded, isNew := g, true
	if n := len(s.Gaps); n > 0 && s.Gaps[n-1].ToLSN == s.Cursor && g.FromLSN == s.Cursor+1 {
		last := &s.Gaps[n-1]
		last.ToLSN = max(last.ToLSN, g.ToLSN)
		recorded, isNew = *last, false
	} else {
		s.Gaps = append(s.Gaps, g)
		if len(s.Gaps) > MaxGaps {
			s.Gaps = s.Gaps[len(s.Gaps)-MaxGaps:]
		}
	}
	if g.ToLSN > s.Cursor {
		s.Cursor, s.Attempt = g.ToLSN, nil
	}
	return recorded, isNew, nil
}

// SetError records the last export error (nil clears it). An error counts
// as a failure in the history at p.At, with lag the age of the oldest
// change the failed attempt held. Only the generation is checked: an
// error of the current generation is shown even while disabled.
func (s *State) SetError(gen uint64, p *Problem, lag time.Duration) error {
	if s.Generation != gen {
		return ErrStale
	}
	s.LastError = p
	if p != nil {
		s.record(p.At, 0, 0, 1, lag)
	}
	return nil
}
