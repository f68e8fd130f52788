package changelog

import "time"

// Retention bounds the transaction log of a backend. Entries older than
// MaxAge, and the oldest entries while the log is larger than MaxBytes
// (Reader.LogBytes), are removed; a zero limit does not apply. A reader
// positioned before a removed entry of its account gets a *TruncatedError.
type Retention struct {
	MaxAge   time.Duration
	MaxBytes int64
	// Interval between retention passes; DefaultRetentionInterval when
	// zero.
	Interval time.Duration
}

// DefaultRetentionInterval is the time between retention passes when
// Retention.Interval is zero.
const DefaultRetentionInterval = time.Minute

// WithDefaults returns r with its zero fields that have a default set to
// it.
func (r Retention) WithDefaults() Retention {
	if r.Interval <= 0 {
		r.Interval = DefaultRetentionInterval
	}
	return r
}
