package accounts

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Key is an API key's public record. ID is a short public identifier used to
// list and revoke the key; it is never the secret.
type Key struct {
	ID        string    `json:"id"`
	Account   string    `json:"accountId"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"createdAt"`
}

const (
	secretPrefix = "j1ds_"
	// maxSecretLen bounds the work Authenticate does for hostile input.
	maxSecretLen = 256
	keyIDLen     = 12 // hex characters

	subHash  = 'h' // 'K' 'h' + sha256(secret) -> JSON Key
	subIndex = 'i' // 'K' 'i' + account + '/' + keyID -> sha256(secret)
)

func hashKey(sum [sha256.Size]byte) []byte {
	return append([]byte{prefixKey, subHash}, sum[:]...)
}

// indexPrefix is the start of account's index entries; account ids never
// contain '/', so it matches no other account's entries.
func indexPrefix(account string) []byte {
	return append([]byte{prefixKey, subIndex}, account+"/"...)
}

func indexKey(account, keyID string) []byte {
	return append(indexPrefix(account), keyID...)
}

// CreateKey creates an API key with role for an existing account and returns
// its secret, which is shown only here and never stored. It returns a
// *ValidationError for a bad account id or role and an error matching
// ErrAccountNotFound if the account does not exist.
func (s *Store) CreateKey(account string, role Role) (secret string, k Key, err error) {
	if err := validateRole(role); err != nil {
		return "", Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Account(account); err != nil {
		return "", Key{}, err
	}
	var raw [32]byte
	rand.Read(raw[:]) // never fails: crypto/rand crashes the program instead
	secret = secretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))

	k = Key{Account: account, Role: role, CreatedAt: time.Now().UTC()}
	for k.ID == "" {
		var id [keyIDLen / 2]byte
		rand.Read(id[:])
		k.ID = hex.EncodeToString(id[:])
		switch err := s.get(indexKey(account, k.ID), func([]byte) error { return nil }); {
		case err == nil:
			k.ID = "" // taken: draw again
		case !errors.Is(err, pebble.ErrNotFound):
			return "", Key{}, fmt.Errorf("create key for account %q: %w", account, err)
		}
	}
	v, err := json.Marshal(k)
	if err != nil {
		return "", Key{}, fmt.Errorf("create key for account %q: %w", account, err)
	}
	err = s.commit(func(b *pebble.Batch) error {
		if err := b.Set(hashKey(sum), v, nil); err != nil {
			return err
		}
		return b.Set(indexKey(account, k.ID), sum[:], nil)
	})
	if err != nil {
		return "", Key{}, fmt.Errorf("create key for account %q: %w", account, err)
	}
	return secret, k, nil
}

// Authenticate returns the live key whose secret this is. Any secret that is
// not a live key's (empty, malformed, longer than 256 bytes, unknown or
// revoked) yields an error matching ErrUnknownKey that does not contain the
// secret. Only the secret's SHA-256 is looked up, so timing reveals nothing
// about stored secrets.
func (s *Store) Authenticate(secret string) (Key, error) {
	unknown := detailf(ErrUnknownKey, "unknown API key: check it was copied in full, or create a new key")
	if len(secret) > maxSecretLen || !strings.HasPrefix(secret, secretPrefix) {
		return Key{}, unknown
	}
	var k Key
	err := s.get(hashKey(sha256.Sum256([]byte(secret))), func(v []byte) error { return json.Unmarshal(v, &k) })
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return Key{}, unknown
	case err != nil:
		return Key{}, fmt.Errorf("authenticate API key: %w", err)
	}
	return k, nil
}

// Keys returns account's live keys, oldest first. It returns a
// *ValidationError for a malformed id and an error matching
// ErrAccountNotFound if the account does not exist.
func (s *Store) Keys(account string) ([]Key, error) {
	if _, err := s.Account(account); err != nil {
		return nil, err
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	lo := indexPrefix(account)
	hi := append(bytes.Clone(lo[:len(lo)-1]), '/'+1)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("list keys of account %q: %w", account, err)
	}
	defer it.Close()
	var out []Key
	for it.First(); it.Valid(); it.Next() {
		v, closer, err := snap.Get(append([]byte{prefixKey, subHash}, it.Value()...))
		if err != nil {
			return nil, fmt.Errorf("list keys of account %q: read key %s: %w", account, it.Key()[len(lo):], err)
		}
		var k Key
		err = json.Unmarshal(v, &k)
		closer.Close()
		if err != nil {
			return nil, fmt.Errorf("list keys of account %q: decode key %s: %w", account, it.Key()[len(lo):], err)
		}
		out = append(out, k)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("list keys of account %q: %w", account, err)
	}
	slices.SortFunc(out, func(a, b Key) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeKey deletes key keyID of account, after which its secret no longer
// authenticates. It returns a *ValidationError for a malformed account id and
// an error matching ErrKeyNotFound if the account has no such key.
func (s *Store) RevokeKey(account, keyID string) error {
	if err := ValidateID(account); err != nil {
		return err
	}
	notFound := detailf(ErrKeyNotFound,
		"API key %s not found for account %q: list the account's keys to find its id", quoteTrunc(keyID), account)
	if len(keyID) != keyIDLen {
		return notFound
	}
	if _, err := hex.DecodeString(keyID); err != nil {
		return notFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum []byte
	switch err := s.get(indexKey(account, keyID), func(v []byte) error { sum = bytes.Clone(v); return nil }); {
	case errors.Is(err, pebble.ErrNotFound):
		return notFound
	case err != nil:
		return fmt.Errorf("revoke key %s of account %q: %w", keyID, account, err)
	}
	err := s.commit(func(b *pebble.Batch) error {
		if err := b.Delete(append([]byte{prefixKey, subHash}, sum...), nil); err != nil {
			return err
		}
		return b.Delete(indexKey(account, keyID), nil)
	})
	if err != nil {
		return fmt.Errorf("revoke key %s of account %q: %w", keyID, account, err)
	}
	return nil
}
