package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Errors callers branch on with errors.Is. The returned errors carry a
// message naming the account or key and saying what to do next.
var (
	ErrAccountExists   = errors.New("account already exists")
	ErrAccountNotFound = errors.New("account not found")
	ErrUnknownKey      = errors.New("unknown API key")
	ErrKeyNotFound     = errors.New("API key not found")
)

// detailError gives a named error value a specific, actionable message.
type detailError struct {
	msg string
	err error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.err }

func detailf(err error, format string, args ...any) error {
	return &detailError{msg: fmt.Sprintf(format, args...), err: err}
}

// Account is a tenant of the service.
type Account struct {
	ID           string    `json:"id"`
	Entitlements []string  `json:"entitlements"` // sorted, deduplicated, never nil
	CreatedAt    time.Time `json:"createdAt"`
}

// Entitled reports whether the account has been granted entitlement e.
func (a Account) Entitled(e string) bool {
	return slices.Contains(a.Entitlements, e)
}

// Store persists accounts and API keys in a Pebble database it shares with
// other packages. It is safe for concurrent use.
type Store struct {
	db *pebble.DB
	mu struct {
		// Held for every write, so check-then-write sequences are atomic.
		sync.Mutex
	}
}

// New returns a Store backed by db, which must already be open and stays
// owned by the caller. The Store uses only keys starting with 'A' or 'K'.
func New(db *pebble.DB) *Store {
	return &Store{db: db}
}

const (
	prefixAccount = 'A'
	prefixKey     = 'K'
)

func accountKey(id string) []byte {
	return append([]byte{prefixAccount}, id...)
}

// CreateAccount creates account id with the given entitlements (sorted and
// deduplicated). It returns a *ValidationError for a bad id or an unknown
// entitlement, and an error matching ErrAccountExists if id is taken.
// Concurrent calls with the same id: exactly one succeeds.
func (s *Store) CreateAccount(id string, entitlements []string) (Account, error) {
	if err := ValidateID(id); err != nil {
		return Account{}, err
	}
	es, err := normalizeEntitlements(entitlements)
	if err != nil {
		return Account{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch _, err := s.Account(id); {
	case err == nil:
		return Account{}, detailf(ErrAccountExists,
			"account %q already exists: choose another id or change its entitlements instead", id)
	case !errors.Is(err, ErrAccountNotFound):
		return Account{}, err
	}
	a := Account{ID: id, Entitlements: es, CreatedAt: time.Now().UTC()}
	if err := s.putAccountLocked(a); err != nil {
		return Account{}, fmt.Errorf("create account %q: %w", id, err)
	}
	return a, nil
}

// Account returns account id. It returns a *ValidationError for a malformed
// id and an error matching ErrAccountNotFound if there is no such account.
func (s *Store) Account(id string) (Account, error) {
	if err := ValidateID(id); err != nil {
		return Account{}, err
	}
	var a Account
	if err := s.get(accountKey(id), func(v []byte) error { return json.Unmarshal(v, &a) }); err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return Account{}, detailf(ErrAccountNotFound,
				"account %q not found: create it with the operator API first", id)
		}
		return Account{}, fmt.Errorf("read account %q: %w", id, err)
	}
	return a, nil
}

// Accounts returns every account, sorted by id.
func (s *Store) Accounts() ([]Account, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixAccount},
		UpperBound: []byte{prefixAccount + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer it.Close()
	var out []Account
	for it.First(); it.Valid(); it.Next() {
		var a Account
		if err := json.Unmarshal(it.Value(), &a); err != nil {
			return nil, fmt.Errorf("list accounts: decode %q: %w", it.Key()[1:], err)
		}
		out = append(out, a)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// SetEntitlements replaces the entitlements of account id (sorted and
// deduplicated) and returns the updated account. It returns a
// *ValidationError for a bad id or unknown entitlement and an error matching
// ErrAccountNotFound if there is no such account.
func (s *Store) SetEntitlements(id string, entitlements []string) (Account, error) {
	es, err := normalizeEntitlements(entitlements)
	if err != nil {
		return Account{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.Account(id)
	if err != nil {
		return Account{}, err
	}
	a.Entitlements = es
	if err := s.putAccountLocked(a); err != nil {
		return Account{}, fmt.Errorf("set entitlements of account %q: %w", id, err)
	}
	return a, nil
}

func (s *Store) putAccountLocked(a Account) error {
	v, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.commit(func(b *pebble.Batch) error { return b.Set(accountKey(a.ID), v, nil) })
}

// get calls decode with the value stored at key, or returns pebble.ErrNotFound.
func (s *Store) get(key []byte, decode func([]byte) error) error {
	v, closer, err := s.db.Get(key)
	if err != nil {
		return err
	}
	defer closer.Close()
	return decode(v)
}

// commit applies the writes made by fill as one synced batch.
func (s *Store) commit(fill func(*pebble.Batch) error) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}
