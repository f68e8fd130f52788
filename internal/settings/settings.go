package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Named errors callers branch on.
var (
	// ErrStale is returned to an exporter whose view of an account's stream
	// is no longer current: it was disabled, re-enabled or retargeted.
	ErrStale = errors.New("stream settings changed")
	// ErrTestRequired is returned when enabling, or changing the bucket or
	// AWS account id, without a recent passing connection test of exactly
	// those values.
	ErrTestRequired = errors.New("connection test required")
)

// TestValidity is how long a passing connection test allows a save.
const TestValidity = time.Hour

// maxGaps bounds the gaps kept in an account's status.
const maxGaps = 50

// Settings are what an administrator sets on the Data Streaming page.
type Settings struct {
	Enabled         bool   `json:"enabled"`
	BucketName      string `json:"bucketName"`
	AWSAccountID    string `json:"awsAccountId"`
	RegionConfirmed bool   `json:"regionConfirmed"`
}

// Problem is an error shown to users: a code and a message that says what
// to do.
type Problem struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// ConnectionTest is the result of the last Test Connection.
type ConnectionTest struct {
	OK           bool      `json:"ok"`
	At           time.Time `json:"at"`
	BucketName   string    `json:"bucketName"`
	AWSAccountID string    `json:"awsAccountId"`
	Error        *Problem  `json:"error,omitempty"`
}

// Gap records changes that were dropped because the account's backlog
// outlived the log's retention.
type Gap struct {
	FromLSN uint64    `json:"fromLsn"`
	ToLSN   uint64    `json:"toLsn"`
	At      time.Time `json:"at"`
}

// Period is one continuous enabled period: changes after StartLSN up to
// EndLSN (the log's end when streaming was disabled; 0 while it runs) were
// streamed, as far as they were exported before the disable.
type Period struct {
	StartLSN uint64    `json:"startLsn"`
	StartAt  time.Time `json:"startAt"`
	EndLSN   uint64    `json:"endLsn,omitempty"`
	EndAt    time.Time `json:"endAt,omitzero"`
}

// maxPeriods bounds the enabled periods kept per account.
const maxPeriods = 100

// Stream is the exporter's state for an account.
type Stream struct {
	// Generation increases each time streaming is enabled or retargeted;
	// an exporter may move the cursor only for the generation it read.
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
	// Periods are the enabled periods, oldest first (at most 100).
	Periods []Period `json:"periods,omitempty"`
	// Attempt is the batch of an upload started and not confirmed, saved
	// before the upload: after a crash the retry from the same cursor
	// stores exactly these changes again (see exporter).
	Attempt *Attempt `json:"attempt,omitempty"`
}

// Attempt names a batch: the changes after AfterLSN through ThroughLSN.
type Attempt struct {
	Generation uint64 `json:"generation"`
	AfterLSN   uint64 `json:"afterLsn"`
	ThroughLSN uint64 `json:"throughLsn"`
}

// Record is everything kept for one account.
type Record struct {
	Account  string          `json:"account"`
	Settings Settings        `json:"settings"`
	LastTest *ConnectionTest `json:"lastConnectionTest,omitempty"`
	Stream   Stream          `json:"stream"`
}

// Store keeps the Data Streaming settings and stream state of every
// account in the shared Pebble database, family 'D'. Writes are synced.
type Store struct {
	db  *pebble.DB
	now func() time.Time
	mu  sync.Mutex // serialises read-modify-write of records
}

// New returns a store over db; now is the clock (time.Now when nil).
func New(db *pebble.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

const famSettings = 'D'

func recordKey(account string) []byte { return append([]byte{famSettings}, account...) }

// Get returns the account's record; an account never configured has a
// zero record.
func (s *Store) Get(account string) (Record, error) {
	v, closer, err := s.db.Get(recordKey(account))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{Account: account}, nil
	}
	if err != nil {
		return Record{}, fmt.Errorf("read settings of %s: %w", account, err)
	}
	defer closer.Close()
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, fmt.Errorf("decode settings of %s: %w", account, err)
	}
	return r, nil
}

func (s *Store) put(r *Record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := s.db.Set(recordKey(r.Account), v, pebble.Sync); err != nil {
		return fmt.Errorf("save settings of %s: %w", r.Account, err)
	}
	return nil
}

// update runs fn on the account's record and saves it unless fn fails.
func (s *Store) update(account string, fn func(*Record) error) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.Get(account)
	if err != nil {
		return Record{}, err
	}
	if err := fn(&r); err != nil {
		return Record{}, err
	}
	return r, s.put(&r)
}

// Enabled returns the records of every account with streaming enabled.
func (s *Store) Enabled() ([]Record, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{famSettings}, UpperBound: []byte{famSettings + 1}})
	if err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	defer it.Close()
	var out []Record
	for it.First(); it.Valid(); it.Next() {
		var r Record
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, fmt.Errorf("decode settings %q: %w", it.Key(), err)
		}
		if r.Settings.Enabled {
			out = append(out, r)
		}
	}
	return out, it.Error()
}

// SaveTest records a connection test's result.
func (s *Store) SaveTest(account string, t ConnectionTest) (Record, error) {
	return s.update(account, func(r *Record) error {
		r.LastTest = &t
		return nil
	})
}

// Apply saves new settings. Enabling, or changing the bucket or AWS
// account id of an enabled stream, needs a passing connection test of
// exactly those values within TestValidity (ErrTestRequired otherwise), and
// starts a new generation. Enabling starts at end, the log's current end:
// no backfill. Disabling needs nothing; the stream keeps its counters.
func (s *Store) Apply(account string, n Settings, end func() (uint64, error)) (Record, error) {
	return s.update(account, func(r *Record) error {
		old := r.Settings
		if n.Enabled {
			if err := n.Validate(); err != nil {
				return err
			}
			retarget := !old.Enabled || old.BucketName != n.BucketName || old.AWSAccountID != n.AWSAccountID
			if retarget {
				if err := r.testCovers(n, s.now()); err != nil {
					return err
				}
				r.Stream.Generation++
				r.Stream.LastError = nil
			}
			if !old.Enabled {
				e, err := end()
				if err != nil {
					return err
				}
				now := s.now().UTC()
				r.Stream.EnabledAt, r.Stream.EnabledAtLSN, r.Stream.Cursor = now, e, e
				r.Stream.Periods = append(r.Stream.Periods, Period{StartLSN: e, StartAt: now})
				if len(r.Stream.Periods) > maxPeriods {
					r.Stream.Periods = r.Stream.Periods[len(r.Stream.Periods)-maxPeriods:]
				}
			}
		} else if old.Enabled {
			r.Stream.Generation++ // stops the running exporter's uploads
			e, err := end()
			if err != nil {
				return err
			}
			if n := len(r.Stream.Periods); n > 0 {
				r.Stream.Periods[n-1].EndLSN, r.Stream.Periods[n-1].EndAt = e, s.now().UTC()
			}
		}
		r.Settings = n
		return nil
	})
}

func (r *Record) testCovers(n Settings, now time.Time) error {
	t := r.LastTest
	switch {
	case t == nil:
		return fmt.Errorf("%w: run Test Connection with bucket %q and AWS account %s, then save", ErrTestRequired, n.BucketName, n.AWSAccountID)
	case t.BucketName != n.BucketName || t.AWSAccountID != n.AWSAccountID:
		return fmt.Errorf("%w: the last connection test was for bucket %q and AWS account %s; test bucket %q and AWS account %s, then save",
			ErrTestRequired, t.BucketName, t.AWSAccountID, n.BucketName, n.AWSAccountID)
	case !t.OK:
		return fmt.Errorf("%w: the last connection test of bucket %q failed; fix the cause it named and test again", ErrTestRequired, n.BucketName)
	case now.Sub(t.At) > TestValidity:
		return fmt.Errorf("%w: the last passing connection test is older than an hour; test again, then save", ErrTestRequired)
	}
	return nil
}

// Advance records an exported object: the cursor moves to lsn. It fails
// with ErrStale if the generation is no longer current, so an exporter
// that lost the account never moves its cursor.
func (s *Store) Advance(account string, gen, lsn uint64, events int, key string) error {
	_, err := s.update(account, func(r *Record) error {
		if !r.Settings.Enabled || r.Stream.Generation != gen {
			return ErrStale
		}
		if lsn <= r.Stream.Cursor {
			return fmt.Errorf("advance %s: cursor %d would not move forward from %d", account, lsn, r.Stream.Cursor)
		}
		r.Stream.Cursor, r.Stream.Attempt = lsn, nil
		r.Stream.ObjectsExported++
		r.Stream.EventsExported += int64(events)
		r.Stream.LastExportAt, r.Stream.LastExportKey = s.now().UTC(), key
		r.Stream.LastError = nil
		return nil
	})
	return err
}

// SaveAttempt records, before an upload starts, the batch it holds: the
// changes after the cursor (after) through LSN through.
func (s *Store) SaveAttempt(account string, gen, after, through uint64) error {
	_, err := s.update(account, func(r *Record) error {
		if !r.Settings.Enabled || r.Stream.Generation != gen {
			return ErrStale
		}
		if after != r.Stream.Cursor || through <= after {
			return fmt.Errorf("attempt %s: batch %d..%d does not start at the cursor %d", account, after+1, through, r.Stream.Cursor)
		}
		r.Stream.Attempt = &Attempt{Generation: gen, AfterLSN: after, ThroughLSN: through}
		return nil
	})
	return err
}

// SkipGap records changes lost to retention and moves the cursor past
// them. A gap that continues the last one (nothing was exported between
// them, as when retention keeps truncating during one long outage)
// extends it, so one outage is one gap. It returns the gap as recorded and
// whether it is new.
func (s *Store) SkipGap(account string, gen uint64, g Gap) (Gap, bool, error) {
	recorded, isNew := g, true
	_, err := s.update(account, func(r *Record) error {
		if !r.Settings.Enabled || r.Stream.Generation != gen {
			return ErrStale
		}
		recorded, isNew = g, true
		if n := len(r.Stream.Gaps); n > 0 && r.Stream.Gaps[n-1].ToLSN == r.Stream.Cursor && g.FromLSN == r.Stream.Cursor+1 {
			last := &r.Stream.Gaps[n-1]
			last.ToLSN = max(last.ToLSN, g.ToLSN)
			recorded, isNew = *last, false
		} else {
			r.Stream.Gaps = append(r.Stream.Gaps, g)
			if len(r.Stream.Gaps) > maxGaps {
				r.Stream.Gaps = r.Stream.Gaps[len(r.Stream.Gaps)-maxGaps:]
			}
		}
		if g.ToLSN > r.Stream.Cursor {
			r.Stream.Cursor, r.Stream.Attempt = g.ToLSN, nil
		}
		return nil
	})
	return recorded, isNew, err
}

// SetError records the last export error shown in the status (nil
// clears it).
func (s *Store) SetError(account string, gen uint64, p *Problem) error {
	_, err := s.update(account, func(r *Record) error {
		if r.Stream.Generation != gen {
			return ErrStale
		}
		r.Stream.LastError = p
		return nil
	})
	return err
}

// FieldError names an invalid settings field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate checks the fields needed to stream: a valid S3 bucket name, a
// 12-digit AWS account id and the region confirmation. The settings page
// applies the same rules as the user types.
func (n Settings) Validate() error {
	if err := ValidateBucketName(n.BucketName); err != nil {
		return err
	}
	if err := ValidateAWSAccountID(n.AWSAccountID); err != nil {
		return err
	}
	if !n.RegionConfirmed {
		return &FieldError{"regionConfirmed", "confirm that the bucket is in the required region"}
	}
	return nil
}

// ValidateAWSAccountID checks for exactly 12 digits.
func ValidateAWSAccountID(id string) error {
	if len(id) != 12 || strings.Trim(id, "0123456789") != "" {
		return &FieldError{"awsAccountId", fmt.Sprintf("%s is not an AWS account id: enter the 12 digits of the account that owns the bucket", quote(id))}
	}
	return nil
}

// ValidateBucketName checks S3's naming rules for general purpose buckets.
func ValidateBucketName(b string) error {
	bad := func(why string) error {
		return &FieldError{"bucketName", fmt.Sprintf("%s is not a valid S3 bucket name: %s", quote(b), why)}
	}
	switch {
	case len(b) < 3 || len(b) > 63:
		return bad("it must be 3 to 63 characters long")
	case strings.Trim(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "":
		return bad("use only lowercase letters, digits, dots and hyphens")
	case !isAlnum(b[0]) || !isAlnum(b[len(b)-1]):
		return bad("it must begin and end with a letter or digit")
	case strings.Contains(b, ".."):
		return bad("it must not contain two dots in a row")
	case looksLikeIPv4(b):
		return bad("it must not look like an IP address")
	case strings.HasPrefix(b, "xn--") || strings.HasPrefix(b, "sthree-") || strings.HasPrefix(b, "amzn-s3-demo-"):
		return bad("it must not start with xn--, sthree- or amzn-s3-demo-")
	case strings.HasSuffix(b, "-s3alias") || strings.HasSuffix(b, "--ol-s3") || strings.HasSuffix(b, ".mrap") || strings.HasSuffix(b, "--x-s3"):
		return bad("it must not end with -s3alias, --ol-s3, .mrap or --x-s3")
	}
	return nil
}

// looksLikeIPv4 reports whether b is four dot-separated runs of digits:
// S3 refuses such names as formatted like an IP address even when a part
// is not a valid octet ("192.168.05.4", "999.1.1.1"), which net.ParseIP
// does not parse.
func looksLikeIPv4(b string) bool {
	parts := strings.Split(b, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func quote(s string) string {
	if len(s) > 70 {
		s = s[:70] + "..."
	}
	return fmt.Sprintf("%q", s)
}
