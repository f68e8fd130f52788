package api

import (
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/settings"
)

// remoteHost is the client's address without its port, the key of the
// audit log's budget of failed authentications.
func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// auditAccount is an account id as the audit log may show it: a valid id,
// or "" (a malformed one, or a secret sent where the id goes).
func auditAccount(id string) string {
	if accounts.ValidateID(id) != nil || strings.HasPrefix(id, accounts.SecretPrefix) {
		return ""
	}
	return id
}

// authFailed logs a failed authentication of an account API: account is
// the account asked for, keyID the key's id when the key is known.
func (s *Server) authFailed(r *http.Request, reason, account, keyID string) {
	s.audit.AuthFailure(remoteHost(r), reason, auditAccount(account), keyID,
		slog.String("method", r.Method), slog.String("path_pattern", r.Pattern))
}

// auditSettings logs a save of the Data Streaming settings by key keyID:
// settings.enabled, settings.disabled, settings.bucket_changed or
// settings.saved, with the old and new bucket.
func (s *Server) auditSettings(account, keyID string, old, n settings.Settings) {
	event := "settings.saved"
	switch {
	case n.Enabled && !old.Enabled:
		event = "settings.enabled"
	case !n.Enabled && old.Enabled:
		event = "settings.disabled"
	case old.BucketName != n.BucketName || old.AWSAccountID != n.AWSAccountID:
		event = "settings.bucket_changed"
	}
	s.audit.Event(event, account, keyID,
		slog.Bool("enabled", n.Enabled), slog.String("bucket", n.BucketName), slog.String("aws_account_id", n.AWSAccountID),
		slog.String("old_bucket", old.BucketName), slog.String("old_aws_account_id", old.AWSAccountID), slog.Bool("was_enabled", old.Enabled),
		slog.String("object_suffix", n.ObjectSuffix))
}
