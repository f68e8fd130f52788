package api

import (
	"log/slog"
	"net/http"

	"github.com/j1ds/j1ds/internal/settings"
)

// requireEntitlement makes the settings enforce the data-streaming
// entitlement of the API's accounts, unless their owner (serve) already
// did: the settings API relies on it to refuse an enable that races with
// the entitlement's removal.
func (s *Server) requireEntitlement() {
	st := s.cfg.Streaming.Settings
	if st == nil || st.EnforcesEntitlement() {
		return
	}
	st.RequireEntitlement(settings.Entitlement{Accounts: s.cfg.Accounts, Stopped: AuditStopped(s.audit)})
}

// AuditStopped returns the settings.Entitlement.Stopped of the audit log:
// a settings.disabled event whose actor is who noticed.
func AuditStopped(l interface {
	Event(event, account, actor string, attrs ...slog.Attr)
}) func(rec settings.Record, by string) {
	return func(rec settings.Record, by string) {
		l.Event("settings.disabled", rec.Account, by, slog.String("reason", settings.ReasonEntitlementRemoved),
			slog.String("bucket", rec.Settings.BucketName), slog.Uint64("end_lsn", lastEnd(rec.Periods)))
	}
}

func lastEnd(ps []settings.Period) uint64 {
	if len(ps) == 0 {
		return 0
	}
	return ps[len(ps)-1].EndLSN
}

// stopUnentitled stops the stream of an account whose data-streaming
// entitlement was removed, as a disable does, and applies it to the
// exporter (the other nodes of a cluster hear of the save). It answers
// the request and returns false when the stop could not be saved: the
// entitlement stays removed, and sending the same entitlements again
// stops the stream (until then the exporter's gate refuses it).
func (s *Server) stopUnentitled(w http.ResponseWriter, r *http.Request, account string) bool {
	st := s.cfg.Streaming
	if st == nil {
		return true
	}
	stopped, err := st.Settings.StopUnentitled(account, "operator", func() (uint64, error) { return s.cfg.Log.End(account) })
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	if stopped {
		if err := st.Exporter.Reload(account); err != nil {
			s.log.Warn("could not stop the export of an account whose entitlement was removed; its next batch is refused",
				slog.String("account", account), slog.Any("err", err))
		}
	}
	return true
}
