package serve

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read operator key: %w", err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	key := "j1op_" + base64.RawURLEncoding.EncodeToString(b[:])
	if err := writeFileAtomic(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write operator key: %w", err)
	}
	log.Info("operator key generated; j1ds admin reads it from the data directory", slog.String("file", path))
	return key, nil
}

// writeFileAtomic writes a file under a temporary name, syncs it and renames
// it into place, so a crash leaves the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
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
