package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/j1ds/j1ds/internal/accounts"
)

// Accounts keeps accounts and their API keys in the tables accounts,
// api_keys and api_key_hashes (schema/002_tenants.sql). A secret is never
// stored, only its hash, so Authenticate is one lookup by the hash. A key
// and its hash are written and deleted in one transaction.
type Accounts struct{ s *Store }

var _ accounts.Store = (*Accounts)(nil)

// Accounts returns the accounts and API keys kept in the store. Creation
// times come from the store's clock (Options.Now).
func (s *Store) Accounts() *Accounts { return &Accounts{s: s} }

// accountRecord and keyRecord are the stored JSON of an account and a key,
// apart from the accounts types so the layout stays fixed whatever those
// marshal to elsewhere. They are the Pebble backend's records.
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

func decodeAccount(v []byte) (accounts.Account, error) {
	var r accountRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return accounts.Account{}, err
	}
	return accounts.Account(r), nil
}

func decodeKey(v []byte) (accounts.Key, error) {
	var r keyRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return accounts.Key{}, err
	}
	return accounts.Key(r), nil
}

// CreateAccount implements accounts.Store. Of concurrent creates of one id,
// the primary key lets one insert through.
func (as *Accounts) CreateAccount(id string, entitlements []string) (accounts.Account, error) {
	if err := accounts.ValidateID(id); err != nil {
		return accounts.Account{}, err
	}
	es, err := accounts.NormalizeEntitlements(entitlements)
	if err != nil {
		return accounts.Account{}, err
	}
	a := accounts.Account{ID: id, Entitlements: es, CreatedAt: as.s.now().UTC()}
	v, err := json.Marshal(accountRecord(a))
	if err != nil {
		return accounts.Account{}, fmt.Errorf("create account %q: %w", id, err)
	}
	ctx, cancel := as.s.opCtx()
	defer cancel()
	tag, err := as.s.pool.Exec(ctx, `INSERT INTO accounts (account, record) VALUES ($1, $2)
		ON CONFLICT (account) DO NOTHING`, id, v)
	if err != nil {
		return accounts.Account{}, as.s.wrap(fmt.Sprintf("create account %q", id), err)
	}
	if tag.RowsAffected() == 0 {
		return accounts.Account{}, accounts.AccountExistsError(id)
	}
	return a, nil
}

// Account implements accounts.Store.
func (as *Accounts) Account(id string) (accounts.Account, error) {
	if err := accounts.ValidateID(id); err != nil {
		return accounts.Account{}, err
	}
	ctx, cancel := as.s.opCtx()
	defer cancel()
	return as.readAccount(ctx, as.s.pool, id, "")
}

// readAccount reads account id, with lock appended to the query (" FOR
// UPDATE" in a transaction that writes it).
func (as *Accounts) readAccount(ctx context.Context, q rowQuerier, id, lock string) (accounts.Account, error) {
	var v []byte
	err := q.QueryRow(ctx, "SELECT record FROM accounts WHERE account = $1"+lock, id).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return accounts.Account{}, accounts.AccountNotFoundError(id)
	}
	if err != nil {
		return accounts.Account{}, as.s.wrap(fmt.Sprintf("read account %q", id), err)
	}
	a, err := decodeAccount(v)
	if err != nil {
		return accounts.Account{}, fmt.Errorf("read account %q: %w", id, err)
	}
	return a, nil
}

// rowQuerier is what a pool and a transaction have in common.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Accounts implements accounts.Store. It lists every account: a statement
// that names no account, in the account ids' byte order.
func (as *Accounts) Accounts() ([]accounts.Account, error) {
	ctx, cancel := as.s.opCtx()
	defer cancel()
	rows, err := as.s.pool.Query(ctx, "SELECT account, record FROM accounts ORDER BY account")
	if err != nil {
		return nil, as.s.wrap("list accounts", err)
	}
	defer rows.Close()
	out := []accounts.Account{}
	for rows.Next() {
		var id string
		var v []byte
		if err := rows.Scan(&id, &v); err != nil {
			return nil, as.s.wrap("list accounts", err)
		}
		a, err := decodeAccount(v)
		if err != nil {
			return nil, fmt.Errorf("list accounts: decode %q: %w", id, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, as.s.wrap("list accounts", err)
	}
	return out, nil
}

// SetEntitlements implements accounts.Store. The account's row is locked
// from the read to the write.
func (as *Accounts) SetEntitlements(id string, entitlements []string) (accounts.Account, error) {
	es, err := accounts.NormalizeEntitlements(entitlements)
	if err != nil {
		return accounts.Account{}, err
	}
	if err := accounts.ValidateID(id); err != nil {
		return accounts.Account{}, err
	}
	ctx, cancel := as.s.opCtx()
	defer cancel()
	var a accounts.Account
	var found error // an error about the account, returned as it is
	err = pgx.BeginFunc(ctx, as.s.pool, func(tx pgx.Tx) error {
		if a, found = as.readAccount(ctx, tx, id, " FOR UPDATE"); found != nil {
			return found
		}
		a.Entitlements = es
		v, err := json.Marshal(accountRecord(a))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE accounts SET record = $2 WHERE account = $1", id, v)
		return err
	})
	if found != nil {
		return accounts.Account{}, found
	}
	if err != nil {
		return accounts.Account{}, as.s.wrap(fmt.Sprintf("set entitlements of account %q", id), err)
	}
	return a, nil
}

// CreateKey implements accounts.Store. The key's id is drawn again while
// the account has a key of that id.
func (as *Accounts) CreateKey(account string, role accounts.Role) (secret string, k accounts.Key, err error) {
	if err := accounts.ValidateRole(role); err != nil {
		return "", accounts.Key{}, err
	}
	if err := accounts.ValidateID(account); err != nil {
		return "", accounts.Key{}, err
	}
	secret = accounts.NewSecret()
	sum := accounts.HashSecret(secret)
	k = accounts.Key{Account: account, Role: role, CreatedAt: as.s.now().UTC()}
	ctx, cancel := as.s.opCtx()
	defer cancel()
	var found error // an error about the account, returned as it is
	err = pgx.BeginFunc(ctx, as.s.pool, func(tx pgx.Tx) error {
		// The account's row, held (FOR KEY SHARE, as the foreign key of
		// api_keys would) until the commit.
		if _, found = as.readAccount(ctx, tx, account, " FOR KEY SHARE"); found != nil {
			return found
		}
		for k.ID = ""; k.ID == ""; {
			k.ID = accounts.NewKeyID()
			v, err := json.Marshal(keyRecord(k))
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO api_keys (account, key_id, hash, record) VALUES ($1, $2, $3, $4)
				ON CONFLICT (account, key_id) DO NOTHING`, account, k.ID, sum[:], v)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				k.ID = "" // taken: draw again
			}
		}
		_, err := tx.Exec(ctx, "INSERT INTO api_key_hashes (hash, account, key_id) VALUES ($1, $2, $3)", sum[:], account, k.ID)
		return err
	})
	if found != nil {
		return "", accounts.Key{}, found
	}
	if err != nil {
		return "", accounts.Key{}, as.s.wrap(fmt.Sprintf("create key for account %q", account), err)
	}
	return secret, k, nil
}

// Authenticate implements accounts.Store. It looks the key up by the hash
// of the secret (api_key_hashes), the one lookup of these tables that
// starts from no account.
func (as *Accounts) Authenticate(secret string) (accounts.Key, error) {
	if !accounts.PlausibleSecret(secret) {
		return accounts.Key{}, accounts.UnknownKeyError()
	}
	sum := accounts.HashSecret(secret)
	ctx, cancel := as.s.opCtx()
	defer cancel()
	var v []byte
	err := as.s.pool.QueryRow(ctx, `SELECT k.record FROM api_key_hashes h
		JOIN api_keys k ON k.account = h.account AND k.key_id = h.key_id
		WHERE h.hash = $1`, sum[:]).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return accounts.Key{}, accounts.UnknownKeyError()
	case err != nil:
		return accounts.Key{}, as.s.wrap("authenticate API key", err)
	}
	k, err := decodeKey(v)
	if err != nil {
		return accounts.Key{}, fmt.Errorf("authenticate API key: %w", err)
	}
	return k, nil
}

// Keys implements accounts.Store. The account and its keys are read by one
// statement, so from one snapshot.
func (as *Accounts) Keys(account string) ([]accounts.Key, error) {
	if err := accounts.ValidateID(account); err != nil {
		return nil, err
	}
	ctx, cancel := as.s.opCtx()
	defer cancel()
	// One row per key, or one row with no key for an account without
	// keys; no row when there is no account.
	rows, err := as.s.pool.Query(ctx, `SELECT k.key_id, k.record FROM accounts a
		LEFT JOIN api_keys k ON k.account = a.account
		WHERE a.account = $1`, account)
	if err != nil {
		return nil, as.s.wrap(fmt.Sprintf("list keys of account %q", account), err)
	}
	defer rows.Close()
	exists := false
	out := []accounts.Key{}
	for rows.Next() {
		exists = true
		var id *string
		var v []byte
		if err := rows.Scan(&id, &v); err != nil {
			return nil, as.s.wrap(fmt.Sprintf("list keys of account %q", account), err)
		}
		if id == nil {
			continue
		}
		k, err := decodeKey(v)
		if err != nil {
			return nil, fmt.Errorf("list keys of account %q: decode key %s: %w", account, *id, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, as.s.wrap(fmt.Sprintf("list keys of account %q", account), err)
	}
	if !exists {
		return nil, accounts.AccountNotFoundError(account)
	}
	accounts.SortKeys(out)
	return out, nil
}

// RevokeKey implements accounts.Store. The key and its hash are deleted in
// one transaction.
func (as *Accounts) RevokeKey(account, keyID string) error {
	if err := accounts.ValidateID(account); err != nil {
		return err
	}
	if !accounts.ValidKeyID(keyID) {
		return accounts.KeyNotFoundError(account, keyID)
	}
	ctx, cancel := as.s.opCtx()
	defer cancel()
	found := true
	err := pgx.BeginFunc(ctx, as.s.pool, func(tx pgx.Tx) error {
		var sum []byte
		err := tx.QueryRow(ctx, "DELETE FROM api_keys WHERE account = $1 AND key_id = $2 RETURNING hash", account, keyID).Scan(&sum)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM api_key_hashes WHERE account = $1 AND hash = $2", account, sum)
		return err
	})
	if err != nil {
		return as.s.wrap(fmt.Sprintf("revoke key %s of account %q", keyID, account), err)
	}
	if !found {
		return accounts.KeyNotFoundError(account, keyID)
	}
	return nil
}
