package pebblestore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/accounts"
)

// Accounts keeps accounts and their API keys in the store's database,
// in the families 'A' and 'K' (keys.go) and no other key. Account ids never
// contain '/' (accounts.ValidateID), so an account's index entries are
// exactly the keys under 'K' 'i' + accountID + '/'; the hash records ('h')
// and the index ('i') use distinct sub-prefixes and cannot collide. A
// secret is never stored, only its hash, so Authenticate is one point
// lookup.
//
// Every write is one batch committed with pebble.Sync, so a key record and
// its index entry appear and disappear together. Check-then-write
// sequences of one account hold that account's lock; reads take none.
type Accounts struct {
	db    *pebble.DB
	now   func() time.Time
	locks *accountLocks
}

var _ accounts.Store = (*Accounts)(nil)

// Accounts returns the accounts and API keys kept in the store. Creation
// times come from the store's clock (Options.Now).
func (s *Store) Accounts() *Accounts { return s.accounts }

// accountRecord and keyRecord are the stored JSON of an account and a key,
// apart from the accounts types so the layout stays fixed whatever those
// marshal to elsewhere.
type accountRecord struct {
	ID           string    `json:"id"`
	Entitlements []string  `json:"entitlements"`
	CreatedAt    time.Time `json:"createdAt"`
}

type keyRecord struct {
	ID        string        `json:"id"`
	Account   string        `json:"accountId"`
	Role      accounts.Role `json:"role"`
	CreatedAt time.Time     `json:"createdAt"`
}

// CreateAccount implements accounts.Store.
func (s *Accounts) CreateAccount(id string, entitlements []string) (accounts.Account, error) {
	if err := accounts.ValidateID(id); err != nil {
		return accounts.Account{}, err
	}
	es, err := accounts.NormalizeEntitlements(entitlements)
	if err != nil {
		return accounts.Account{}, err
	}
	defer s.locks.lock(id)()
	switch _, err := s.Account(id); {
	case err == nil:
		return accounts.Account{}, accounts.AccountExistsError(id)
	case !errors.Is(err, accounts.ErrAccountNotFound):
		return accounts.Account{}, err
	}
	a := accounts.Account{ID: id, Entitlements: es, CreatedAt: s.now().UTC()}
	if err := s.putAccountLocked(a); err != nil {
		return accounts.Account{}, fmt.Errorf("create account %q: %w", id, err)
	}
	return a, nil
}

// Account implements accounts.Store.
func (s *Accounts) Account(id string) (accounts.Account, error) {
	if err := accounts.ValidateID(id); err != nil {
		return accounts.Account{}, err
	}
	var r accountRecord
	if err := s.get(accountKey(id), func(v []byte) error { return json.Unmarshal(v, &r) }); err != nil {
		if errors.Is(err, pebble.ErrNotFound) {
			return accounts.Account{}, accounts.AccountNotFoundError(id)
		}
		return accounts.Account{}, fmt.Errorf("read account %q: %w", id, err)
	}
	return accounts.Account(r), nil
}

// Accounts implements accounts.Store.
func (s *Accounts) Accounts() ([]accounts.Account, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{famAccount},
		UpperBound: []byte{famAccount + 1},
	})
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer it.Close()
	var out []accounts.Account
	for it.First(); it.Valid(); it.Next() {
		var r accountRecord
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, fmt.Errorf("list accounts: decode %q: %w", it.Key()[1:], err)
		}
		out = append(out, accounts.Account(r))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// SetEntitlements implements accounts.Store.
func (s *Accounts) SetEntitlements(id string, entitlements []string) (accounts.Account, error) {
	es, err := accounts.NormalizeEntitlements(entitlements)
	if err != nil {
		return accounts.Account{}, err
	}
	defer s.locks.lock(id)()
	a, err := s.Account(id)
	if err != nil {
		return accounts.Account{}, err
	}
	a.Entitlements = es
	if err := s.putAccountLocked(a); err != nil {
		return accounts.Account{}, fmt.Errorf("set entitlements of account %q: %w", id, err)
	}
	return a, nil
}

func (s *Accounts) putAccountLocked(a accounts.Account) error {
	v, err := json.Marshal(accountRecord(a))
	if err != nil {
		return err
	}
	return s.commit(func(b *pebble.Batch) error { return b.Set(accountKey(a.ID), v, nil) })
}

// CreateKey implements accounts.Store.
func (s *Accounts) CreateKey(account string, role accounts.Role) (secret string, k accounts.Key, err error) {
	if err := accounts.ValidateRole(role); err != nil {
		return "", accounts.Key{}, err
	}
	defer s.locks.lock(account)()
	if _, err := s.Account(account); err != nil {
		return "", accounts.Key{}, err
	}
	secret = accounts.NewSecret()
	sum := accounts.HashSecret(secret)

	k = accounts.Key{Account: account, Role: role, CreatedAt: s.now().UTC()}
	for k.ID == "" {
		k.ID = accounts.NewKeyID()
		switch err := s.get(keyIndexKey(account, k.ID), func([]byte) error { return nil }); {
		case err == nil:
			k.ID = "" // taken: draw again
		case !errors.Is(err, pebble.ErrNotFound):
			return "", accounts.Key{}, fmt.Errorf("create key for account %q: %w", account, err)
		}
	}
	v, err := json.Marshal(keyRecord(k))
	if err != nil {
		return "", accounts.Key{}, fmt.Errorf("create key for account %q: %w", account, err)
	}
	err = s.commit(func(b *pebble.Batch) error {
		if err := b.Set(keyHashKey(sum[:]), v, nil); err != nil {
			return err
		}
		return b.Set(keyIndexKey(account, k.ID), sum[:], nil)
	})
	if err != nil {
		return "", accounts.Key{}, fmt.Errorf("create key for account %q: %w", account, err)
	}
	return secret, k, nil
}

// Authenticate implements accounts.Store.
func (s *Accounts) Authenticate(secret string) (accounts.Key, error) {
	if !accounts.PlausibleSecret(secret) {
		return accounts.Key{}, accounts.UnknownKeyError()
	}
	sum := accounts.HashSecret(secret)
	var r keyRecord
	err := s.get(keyHashKey(sum[:]), func(v []byte) error { return json.Unmarshal(v, &r) })
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return accounts.Key{}, accounts.UnknownKeyError()
	case err != nil:
		return accounts.Key{}, fmt.Errorf("authenticate API key: %w", err)
	}
	return accounts.Key(r), nil
}

// Keys implements accounts.Store. It reads the index and the key records
// from one snapshot, so a key revoked meanwhile is either listed whole or
// not at all.
func (s *Accounts) Keys(account string) ([]accounts.Key, error) {
	if _, err := s.Account(account); err != nil {
		return nil, err
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	lo := keyIndexPrefix(account)
	hi := append(bytes.Clone(lo[:len(lo)-1]), '/'+1)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("list keys of account %q: %w", account, err)
	}
	defer it.Close()
	var out []accounts.Key
	for it.First(); it.Valid(); it.Next() {
		v, closer, err := snap.Get(keyHashKey(it.Value()))
		if err != nil {
			return nil, fmt.Errorf("list keys of account %q: read key %s: %w", account, it.Key()[len(lo):], err)
		}
		var r keyRecord
		err = json.Unmarshal(v, &r)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("list keys of account %q: decode key %s: %w", account, it.Key()[len(lo):], err)
		}
		out = append(out, accounts.Key(r))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("list keys of account %q: %w", account, err)
	}
	accounts.SortKeys(out)
	return out, nil
}

// RevokeKey implements accounts.Store.
func (s *Accounts) RevokeKey(account, keyID string) error {
	if err := accounts.ValidateID(account); err != nil {
		return err
	}
	if !accounts.ValidKeyID(keyID) {
		return accounts.KeyNotFoundError(account, keyID)
	}
	defer s.locks.lock(account)()
	var sum []byte
	switch err := s.get(keyIndexKey(account, keyID), func(v []byte) error { sum = bytes.Clone(v); return nil }); {
	case errors.Is(err, pebble.ErrNotFound):
		return accounts.KeyNotFoundError(account, keyID)
	case err != nil:
		return fmt.Errorf("revoke key %s of account %q: %w", keyID, account, err)
	}
	err := s.commit(func(b *pebble.Batch) error {
		if err := b.Delete(keyHashKey(sum), nil); err != nil {
			return err
		}
		return b.Delete(keyIndexKey(account, keyID), nil)
	})
	if err != nil {
		return fmt.Errorf("revoke key %s of account %q: %w", keyID, account, err)
	}
	return nil
}

// get calls decode with the value stored at key, or returns pebble.ErrNotFound.
func (s *Accounts) get(key []byte, decode func([]byte) error) error {
	v, closer, err := s.db.Get(key)
	if err != nil {
		return err
	}
	defer closer.Close()
	return decode(v)
}

// commit applies the writes made by fill as one synced batch.
func (s *Accounts) commit(fill func(*pebble.Batch) error) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}
