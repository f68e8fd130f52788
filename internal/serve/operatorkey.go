package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/j1ds/j1ds/internal/pgstore"
)

// OperatorKeyFile is the file in the data directory that holds the
// operator key Run generates when none is configured.
const OperatorKeyFile = "operator-key"

// operatorKey returns the configured operator key, or the one kept in the
// data directory, generating it on first start.
func operatorKey(cfg Config, log *slog.Logger) (string, error) {
	if cfg.OperatorKey != "" {
		return cfg.OperatorKey, nil
	}
	path := filepath.Join(cfg.Data, OperatorKeyFile)
	if key, err := readOperatorKeyFile(path); err == nil {
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	key, err := newOperatorKey()
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write operator key: %w", err)
	}
	log.Info("operator key generated; j1ds admin reads it from the data directory", slog.String("file", path))
	return key, nil
}

// newOperatorKey returns a new random operator key.
func newOperatorKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "j1op_" + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// postgresOperatorKey returns the operator key when the stores are in
// PostgreSQL: the configured one, or else the SHA-256 of the one whose
// hash the database keeps. On the first start on a database, of all the
// processes starting at once, exactly one generates the key, stores its
// hash and logs the key: the only time it is shown.
func postgresOperatorKey(cfg Config, store *pgstore.Store, log *slog.Logger) (key string, hash []byte, err error) {
	if cfg.OperatorKey != "" {
		return cfg.OperatorKey, nil, nil
	}
	key, err = newOperatorKey()
	if err != nil {
		return "", nil, err
	}
	h := sha256.Sum256([]byte(key))
	hash, created, err := store.OperatorKeyHash(h[:])
	if err != nil {
		return "", nil, fmt.Errorf("operator key: %w", err)
	}
	if created {
		// Written whatever --log-level: it is the only time the key shows.
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "operator key generated: it is shown this once and j1ds keeps only its hash in the database; keep it for `j1ds admin --operator-key` (or J1DS_OPERATOR_KEY)", 0)
		r.AddAttrs(slog.String("operator_key", key))
		if err := log.Handler().Handle(context.Background(), r); err != nil {
			return "", nil, fmt.Errorf("operator key: show the generated key: %w", err)
		}
		return "", hash, nil
	}
	log.Info("operator key: the database holds the hash of the one generated at its first start, shown then only; to use another, start j1ds with --operator-key (or J1DS_OPERATOR_KEY), or delete the row of table operator_key and restart j1ds to generate and show a new one")
	return "", hash, nil
}

// writeFileAtomic writes a file under a temporary name, syncs it and renames
// it into place, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	// A new file, so that it has perm whatever a crash left behind.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
