package accounts

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Role is the permission level of an API key.
type Role string

// Roles an API key can have.
const (
	// RoleAdmin may manage the account's settings and keys.
	RoleAdmin Role = "admin"
	// RoleMember may use the account's data but not administer it.
	RoleMember Role = "member"
)

// EntitlementDataStreaming allows an account to stream its data to a destination.
const EntitlementDataStreaming = "data-streaming"

// KnownEntitlements lists every entitlement an account may be granted.
var KnownEntitlements = []string{EntitlementDataStreaming}

// maxIDLen is the longest account id accepted by ValidateID.
const maxIDLen = 64

// maxQuoted is how many characters of a bad value an error message quotes.
const maxQuoted = 64

// ValidationError reports an input that was rejected, naming the field, the
// bad value and what is allowed instead.
type ValidationError struct {
	Field  string // e.g. "account id", "entitlements", "role"
	Value  string // the rejected value, in full
	Reason string // what is allowed
}

// Error returns a message such as
// `invalid account id "a/b": use 1-64 letters, digits, '-' or '_', starting with a letter or digit`.
// Values longer than 64 characters are truncated.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s %s: %s", e.Field, quoteTrunc(e.Value), e.Reason)
}

// quoteTrunc quotes at most maxQuoted characters of s, marking a cut with "...".
func quoteTrunc(s string) string {
	if utf8.RuneCountInString(s) <= maxQuoted {
		return fmt.Sprintf("%q", s)
	}
	n := 0
	for i := range s {
		if n == maxQuoted {
			return fmt.Sprintf("%q...", s[:i])
		}
		n++
	}
	return fmt.Sprintf("%q", s) // unreachable
}

// ValidateID is the product-wide check for account ids. An id is 1-64 ASCII
// letters, digits, '-' or '_', starting with a letter or digit, so it is safe
// in S3 object keys ("accountId=<id>"), file paths and database keys: it never
// contains '/', '.', ':', '=', whitespace, control or non-ASCII characters.
// It returns a *ValidationError with Field "account id" otherwise.
func ValidateID(id string) error {
	ok := len(id) >= 1 && len(id) <= maxIDLen && isAlnum(id[0])
	for i := 1; ok && i < len(id); i++ {
		ok = isAlnum(id[i]) || id[i] == '-' || id[i] == '_'
	}
	if !ok {
		return &ValidationError{
			Field:  "account id",
			Value:  id,
			Reason: "use 1-64 letters, digits, '-' or '_', starting with a letter or digit",
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// NormalizeEntitlements checks every entry against KnownEntitlements and
// returns them sorted and deduplicated, never nil. It returns a
// *ValidationError with Field "entitlements" for an unknown one.
func NormalizeEntitlements(es []string) ([]string, error) {
	out := make([]string, 0, len(es))
	for _, e := range es {
		if !slices.Contains(KnownEntitlements, e) {
			return nil, &ValidationError{
				Field:  "entitlements",
				Value:  e,
				Reason: "unknown entitlement; use one of: " + strings.Join(KnownEntitlements, ", "),
			}
		}
		out = append(out, e)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ValidateRole returns a *ValidationError with Field "role" unless r is
// RoleAdmin or RoleMember.
func ValidateRole(r Role) error {
	if r != RoleAdmin && r != RoleMember {
		return &ValidationError{Field: "role", Value: string(r), Reason: `must be "admin" or "member"`}
	}
	return nil
}
