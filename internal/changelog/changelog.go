package changelog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/j1ds/j1ds/internal/graph"
)

// Change is one object's change in a log entry.
type Change struct {
	Op   graph.Op
	Kind graph.Kind
	ID   string
	// Record is the complete change record, without its newline.
	Record []byte
}

// Entry is one committed transaction of one account, as the log holds it.
type Entry struct {
	LSN        uint64
	CommitTime int64 // µs since the epoch; strictly increasing per account
	// Count is the number of changes.
	Count int
	// Changes are the changes in order (Reader.ReadLog; Source.ScanLog
	// leaves them out).
	Changes []Change
	// Lines are the changes' records as an object holds them: each
	// followed by a newline, in change order.
	Lines []byte
}

// Time returns the commit time.
func (e *Entry) Time() time.Time { return time.UnixMicro(e.CommitTime).UTC() }

// ErrLogTruncated is wrapped by every *TruncatedError.
var ErrLogTruncated = errors.New("log truncated")

// TruncatedError is returned to a reader whose position was removed by
// retention: the account's entries with LSNs From..To (inclusive) are gone.
type TruncatedError struct {
	Account  string
	From, To uint64
}

func (e *TruncatedError) Error() string {
	return fmt.Sprintf("log of account %s truncated: LSNs %d to %d are past retention; resume after LSN %d", e.Account, e.From, e.To, e.To)
}

func (e *TruncatedError) Unwrap() error { return ErrLogTruncated }

// CommitEvent tells a subscriber that an account's log grew.
type CommitEvent struct {
	Account    string
	LSN        uint64
	CommitTime int64 // µs
	Changes    int
	Bytes      int // size of the log entry, as ReadLog's byte limit and LogBytes count it
}

// Source is the log as the exporter reads it: ordered entries of one
// account after a position, and word of each new durable commit.
type Source interface {
	// End returns the LSN of the account's last durable entry, 0 if it has
	// never had one; retention removing the entry does not move End back.
	End(account string) (uint64, error)
	// NextCommit returns the commit time (µs) of the account's first
	// durable entry after an LSN; ok is false when there is none. A
	// position removed by retention gives a *TruncatedError.
	NextCommit(account string, after uint64) (micros int64, ok bool, err error)
	// ScanLog calls fn for each of the account's durable entries after an
	// LSN, in commit order, from one consistent snapshot, until fn returns
	// false or an error. The Entry and its Lines are valid only during the
	// call, and Changes are left out (Count says how many there are). A
	// position removed by retention gives a *TruncatedError before fn is
	// called.
	ScanLog(account string, after uint64, fn func(*Entry) (bool, error)) error
	// Subscribe calls fn after every durable commit that logged changes,
	// from the moment Subscribe returns until cancel is called. Any number
	// of subscribers may be registered. fn runs on the committing
	// goroutine, for commits of one account possibly out of LSN order when
	// they finish concurrently, and must not block: record and return.
	Subscribe(fn func(CommitEvent)) (cancel func())
}

// Reader adds what other readers of the log use: whole entries with their
// changes, waiting for new ones, and the log's size.
type Reader interface {
	Source
	// ReadLog returns the account's durable entries after an LSN, in
	// commit order, at most maxEntries of them and stopping once maxBytes
	// of entries (sized as CommitEvent.Bytes) are collected, the entry
	// that reaches the limit included (at least one entry is returned
	// when any is there), with their Changes. The entries are the
	// caller's. It does not block.
	ReadLog(account string, after uint64, maxEntries, maxBytes int) ([]Entry, error)
	// Wait blocks until the account has a durable entry after the LSN or
	// ctx ends.
	Wait(ctx context.Context, account string, after uint64) error
	// Truncate runs one retention pass now and returns how many entries it
	// removed.
	Truncate() (int, error)
	// LogBytes returns the size of the retained log: the sum of its
	// entries' sizes (CommitEvent.Bytes), which Retention.MaxBytes bounds.
	LogBytes() int64
}
