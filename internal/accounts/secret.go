package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

const (
	// SecretPrefix starts every API key secret.
	SecretPrefix = "j1ds_"
	// MaxSecretLen is the longest input Authenticate looks up; it bounds
	// the work done for hostile input.
	MaxSecretLen = 256

	secretBytes = 32
	keyIDLen    = 12 // hex characters
)

// NewSecret returns a new API key secret: SecretPrefix followed by 43
// base64url characters encoding 32 random bytes.
func NewSecret() string {
	var raw [secretBytes]byte
	rand.Read(raw[:]) // never fails: crypto/rand crashes the program instead
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
}

// HashSecret returns the SHA-256 of secret, the only form of it a Store
// keeps and the value Authenticate looks up.
func HashSecret(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(secret))
}

// PlausibleSecret reports whether secret is worth looking up: at most
// MaxSecretLen bytes and starting with SecretPrefix. Any other input is an
// unknown key without a lookup.
func PlausibleSecret(secret string) bool {
	return len(secret) <= MaxSecretLen && strings.HasPrefix(secret, SecretPrefix)
}

// NewKeyID returns a random key ID of 12 lowercase hex characters. A Store
// draws again when the account already has a key with that ID.
func NewKeyID() string {
	var id [keyIDLen / 2]byte
	rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// ValidKeyID reports whether id has the form of a key ID (12 hex
// characters); any other id names no key.
func ValidKeyID(id string) bool {
	if len(id) != keyIDLen {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}
