package settings

import (
	"errors"
	"fmt"
	"time"

	"github.com/j1ds/j1ds/internal/s3dest/s3bucket"
	"github.com/j1ds/j1ds/internal/stream"
)

// ErrTestRequired is returned when enabling, or changing the bucket or AWS
// account id, without a recent passing connection test of exactly those
// values.
var ErrTestRequired = errors.New("connection test required")

// TestValidity is how long a passing connection test allows a save.
const TestValidity = time.Hour

// maxPeriods bounds the enabled periods kept per account.
const maxPeriods = 100

// Settings are what an administrator sets on the Data Streaming page.
type Settings struct {
	Enabled         bool   `json:"enabled"`
	BucketName      string `json:"bucketName"`
	AWSAccountID    string `json:"awsAccountId"`
	RegionConfirmed bool   `json:"regionConfirmed"`
	// ObjectSuffix ends the account's object keys: ".jsonl" or ".jsonl.gz"
	// (which Athena, DuckDB and pandas read as gzip by the name alone).
	// Empty: the deployment's default (serve's --object-suffix). A change
	// applies from the next object and needs no connection test.
	ObjectSuffix string `json:"objectSuffix,omitempty"`
}

// The object key suffixes an account may choose.
const (
	SuffixJSONL   = ".jsonl"
	SuffixJSONLGz = ".jsonl.gz"
)

// ValidateObjectSuffix checks an ObjectSuffix: empty (the deployment's
// default), ".jsonl" or ".jsonl.gz".
func ValidateObjectSuffix(suffix string) error {
	switch suffix {
	case "", SuffixJSONL, SuffixJSONLGz:
		return nil
	}
	if len(suffix) > 32 {
		suffix = suffix[:32] + "..."
	}
	return &FieldError{Field: "objectSuffix", Message: fmt.Sprintf("%q is not an object suffix: use %q, or %q to let Athena, DuckDB and pandas see the gzip compression from the name", suffix, SuffixJSONL, SuffixJSONLGz)}
}

// Target is where the settings send objects, as the exporter carries it.
func (n Settings) Target() string {
	return s3bucket.Target{Bucket: n.BucketName, Owner: n.AWSAccountID}.String()
}

// FieldError names an invalid settings field.
type FieldError = s3bucket.FieldError

// ConnectionTest is the result of the last Test Connection.
type ConnectionTest struct {
	OK           bool            `json:"ok"`
	At           time.Time       `json:"at"`
	BucketName   string          `json:"bucketName"`
	AWSAccountID string          `json:"awsAccountId"`
	Error        *stream.Problem `json:"error,omitempty"`
}

// Period is one continuous enabled period: changes after StartLSN up to
// EndLSN (the log's end when streaming was disabled; 0 while it runs) were
// streamed, as far as they were exported before the disable.
type Period struct {
	StartLSN uint64    `json:"startLsn"`
	StartAt  time.Time `json:"startAt"`
	EndLSN   uint64    `json:"endLsn,omitempty"`
	EndAt    time.Time `json:"endAt,omitzero"`
	// EndReason says why j1ds ended the period itself (e.g.
	// ReasonEntitlementRemoved); empty when an administrator disabled it.
	EndReason string `json:"endReason,omitempty"`
}

// Record is everything kept for one account: its settings, the last
// connection test and its enabled periods, and its stream state, which a
// backend keeps apart (the exporter's checkpoint).
type Record struct {
	Account  string
	Settings Settings
	LastTest *ConnectionTest
	// Periods are the enabled periods, oldest first (at most 100).
	Periods []Period
	Stream  stream.State
}

// Store keeps every account's Record. A backend keeps the stream state
// apart from the rest, in the place its stream.Checkpoint reads.
type Store interface {
	// Get returns the account's record; an account never configured has a
	// zero record with Account and Stream.Account set.
	Get(account string) (Record, error)
	// Update reads the account's record, lets fn change it and writes the
	// whole of it (settings and stream state) atomically and durably; an
	// error from fn writes nothing. Updates of one account, and the
	// account's checkpoint writes, are serialised.
	Update(account string, fn func(*Record) error) (Record, error)
}

// Service applies the rules of the Data Streaming settings to a Store.
type Service struct {
	store Store
	now   func() time.Time
	ent   *Entitlement // nil: the entitlement is not enforced
}

// New returns the settings of store; now is the clock (time.Now when nil).
func New(store Store, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, now: now}
}

// Get returns the account's record.
func (s *Service) Get(account string) (Record, error) { return s.store.Get(account) }

// SaveTest records a connection test's result.
func (s *Service) SaveTest(account string, t ConnectionTest) (Record, error) {
	return s.store.Update(account, func(r *Record) error {
		r.LastTest = &t
		return nil
	})
}

// Apply saves new settings. Enabling, or changing the bucket or AWS
// account id of an enabled stream, needs a passing connection test of
// exactly those values within TestValidity (ErrTestRequired otherwise), and
// starts a new generation. The object suffix needs neither: the exporter
// takes it from its next object. Enabling starts at end, the log's current end:
// no backfill. Disabling needs nothing; the stream keeps its counters.
// With RequireEntitlement, saving enabled settings needs the account's
// data-streaming entitlement (ErrNotEntitled otherwise).
func (s *Service) Apply(account string, n Settings, end func() (uint64, error)) (Record, error) {
	return s.store.Update(account, func(r *Record) error {
		old := r.Settings
		st := &r.Stream
		if err := ValidateObjectSuffix(n.ObjectSuffix); err != nil {
			return err
		}
		if n.Enabled {
			if err := n.Validate(); err != nil {
				return err
			}
			if ok, err := s.entitled(account); err != nil {
				return err
			} else if !ok {
				return notEntitledError(account)
			}
			retarget := !old.Enabled || old.BucketName != n.BucketName || old.AWSAccountID != n.AWSAccountID
			if retarget {
				if err := r.testCovers(n, s.now()); err != nil {
					return err
				}
				st.Generation++
				st.LastError = nil
			}
			if !old.Enabled {
				e, err := end()
				if err != nil {
					return err
				}
				now := s.now().UTC()
				st.EnabledAt, st.EnabledAtLSN, st.Cursor = now, e, e
				r.Periods = append(r.Periods, Period{StartLSN: e, StartAt: now})
				if len(r.Periods) > maxPeriods {
					r.Periods = r.Periods[len(r.Periods)-maxPeriods:]
				}
			}
		} else if old.Enabled {
			st.Generation++ // stops the running exporter's uploads
			e, err := end()
			if err != nil {
				return err
			}
			if n := len(r.Periods); n > 0 {
				r.Periods[n-1].EndLSN, r.Periods[n-1].EndAt = e, s.now().UTC()
			}
		}
		r.Settings = n
		st.Enabled = n.Enabled
		st.Target = n.Target()
		st.Suffix = n.ObjectSuffix
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

// Validate checks the fields needed to stream: a valid S3 bucket name, a
// 12-digit AWS account id and the region confirmation. The settings page
// applies the same rules as the user types.
func (n Settings) Validate() error {
	if err := s3bucket.ValidateBucketName(n.BucketName); err != nil {
		return err
	}
	if err := s3bucket.ValidateAWSAccountID(n.AWSAccountID); err != nil {
		return err
	}
	if !n.RegionConfirmed {
		return &FieldError{Field: "regionConfirmed", Message: "confirm that the bucket is in the required region"}
	}
	return nil
}
