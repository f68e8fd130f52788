package accounts

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Errors callers branch on with errors.Is. A Store returns them through
// the constructors below, whose messages name the account or key and say
// what to do next.
var (
	ErrAccountExists   = errors.New("account already exists")
	ErrAccountNotFound = errors.New("account not found")
	ErrUnknownKey      = errors.New("unknown API key")
	ErrKeyNotFound     = errors.New("API key not found")
)

// AccountExistsError returns an error matching ErrAccountExists for id.
func AccountExistsError(id string) error {
	return detailf(ErrAccountExists,
		"account %q already exists: choose another id or change its entitlements instead", id)
}

// AccountNotFoundError returns an error matching ErrAccountNotFound for id.
func AccountNotFoundError(id string) error {
	return detailf(ErrAccountNotFound,
		"account %q not found: create it with the operator API first", id)
}

// UnknownKeyError returns an error matching ErrUnknownKey. Its message never
// holds the secret that failed.
func UnknownKeyError() error {
	return detailf(ErrUnknownKey, "unknown API key: check it was copied in full, or create a new key")
}

// KeyNotFoundError returns an error matching ErrKeyNotFound for key keyID
// of account; a long keyID is quoted truncated, and one that looks like a
// secret (it starts with SecretPrefix) is not quoted at all.
func KeyNotFoundError(account, keyID string) error {
	if strings.HasPrefix(keyID, SecretPrefix) {
		return detailf(ErrKeyNotFound,
			"API key not found for account %q: the key id given looks like an API key secret; give the key's 12-character id, never its secret", account)
	}
	return detailf(ErrKeyNotFound,
		"API key %s not found for account %q: list the account's keys to find its id", quoteTrunc(keyID), account)
}

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

// Key is an API key's public record. ID is a short public identifier used to
// list and revoke the key; it is never the secret.
type Key struct {
	ID        string    `json:"id"`
	Account   string    `json:"accountId"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
}

// SortKeys sorts keys oldest first, keys created at the same time by ID:
// the order Store.Keys returns.
func SortKeys(keys []Key) {
	slices.SortFunc(keys, func(a, b Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
}

// Store keeps accounts and their API keys. It is safe for concurrent use,
// and every write is durable when the call returns. Package accountstest
// checks that an implementation keeps this contract.
type Store interface {
	// CreateAccount creates account id with the given entitlements (see
	// NormalizeEntitlements), created now, and returns it. It returns a
	// *ValidationError for a bad id or an unknown entitlement and an error
	// matching ErrAccountExists if id is taken, creating nothing in either
	// case. Of concurrent calls with the same id exactly one succeeds.
	CreateAccount(id string, entitlements []string) (Account, error)

	// Account returns account id. It returns a *ValidationError for a
	// malformed id and an error matching ErrAccountNotFound if there is no
	// such account.
	Account(id string) (Account, error)

	// Accounts returns every account, sorted by id; none is an empty list.
	Accounts() ([]Account, error)

	// SetEntitlements replaces the entitlements of account id (see
	// NormalizeEntitlements) and returns the updated account. It returns a
	// *ValidationError for a bad id or unknown entitlement and an error
	// matching ErrAccountNotFound if there is no such account.
	SetEntitlements(id string, entitlements []string) (Account, error)

	// CreateKey creates an API key with role for an existing account and
	// returns its secret (see NewSecret), which is shown only here and
	// never stored in plain text, and its record, whose ID (see NewKeyID)
	// is unique within the account. It returns a *ValidationError for a bad
	// account id or role and an error matching ErrAccountNotFound if the
	// account does not exist.
	CreateKey(account string, role Role) (secret string, k Key, err error)

	// Authenticate returns the live key whose secret this is. Any secret
	// that is not a live key's (empty, malformed, longer than
	// MaxSecretLen, unknown or revoked) yields an error matching
	// ErrUnknownKey that does not contain the secret. Only the secret's
	// hash (see HashSecret) is looked up, so timing reveals nothing about
	// stored secrets.
	Authenticate(secret string) (Key, error)

	// Keys returns account's live keys in the order of SortKeys. It
	// returns a *ValidationError for a malformed id and an error matching
	// ErrAccountNotFound if the account does not exist.
	Keys(account string) ([]Key, error)

	// RevokeKey deletes key keyID of account, after which its secret no
	// longer authenticates. It returns a *ValidationError for a malformed
	// account id and an error matching ErrKeyNotFound if the account has
	// no such key (another account's key included).
	RevokeKey(account, keyID string) error
}
