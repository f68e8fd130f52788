package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/audit"
)

type createAccountRequest struct {
	ID           string   `json:"id"`
	Entitlements []string `json:"entitlements"`
}

func (s *Server) createAccount(w http.ResponseWriter, r *http.Request) {
	var req createAccountRequest
	if !s.decodeJSON(w, r, &req, false) {
		return
	}
	if req.ID == "" {
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", `id is required: the account id, e.g. {"id":"acme","entitlements":["data-streaming"]}`)
		return
	}
	a, err := s.cfg.Accounts.CreateAccount(req.ID, req.Entitlements)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit.Event("account.created", a.ID, audit.ActorOperator, slog.Any("entitlements", a.Entitlements))
	writeJSON(w, http.StatusCreated, a)
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) {
	as, err := s.cfg.Accounts.Accounts()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if as == nil {
		as = []accounts.Account{}
	}
	writeList(w, "accounts", as)
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := s.cfg.Accounts.Account(r.PathValue("account"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) setEntitlements(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Entitlements *[]string `json:"entitlements"`
	}
	if !s.decodeJSON(w, r, &req, false) {
		return
	}
	if req.Entitlements == nil {
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", `entitlements is required, e.g. {"entitlements":["data-streaming"]} ([] removes all)`)
		return
	}
	id := r.PathValue("account")
	old, err := s.cfg.Accounts.Account(id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	a, err := s.cfg.Accounts.SetEntitlements(id, *req.Entitlements)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit.Event("entitlements.changed", a.ID, audit.ActorOperator,
		slog.Any("old_entitlements", old.Entitlements), slog.Any("entitlements", a.Entitlements))
	if !a.Entitled(accounts.EntitlementDataStreaming) && !s.stopUnentitled(w, r, a.ID) {
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// createKeyResponse shows the secret once, beside the key's public record.
type createKeyResponse struct {
	Key       string        `json:"key"`
	ID        string        `json:"id"`
	AccountID string        `json:"accountId"`
	Role      accounts.Role `json:"role"`
	CreatedAt time.Time     `json:"createdAt"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role accounts.Role `json:"role"`
	}
	if !s.decodeJSON(w, r, &req, false) {
		return
	}
	if req.Role == "" {
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", `role is required: "admin" or "member"`)
		return
	}
	secret, k, err := s.cfg.Accounts.CreateKey(r.PathValue("account"), req.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit.Event("key.created", k.Account, audit.ActorOperator, slog.String("key_id", k.ID), slog.String("role", string(k.Role)))
	writeJSON(w, http.StatusCreated, createKeyResponse{Key: secret, ID: k.ID, AccountID: k.Account, Role: k.Role, CreatedAt: k.CreatedAt})
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := s.cfg.Accounts.Keys(r.PathValue("account"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ks == nil {
		ks = []accounts.Key{}
	}
	writeList(w, "keys", ks)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Accounts.RevokeKey(r.PathValue("account"), r.PathValue("key")); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit.Event("key.revoked", r.PathValue("account"), audit.ActorOperator, slog.String("key_id", r.PathValue("key")))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Cluster == nil {
		writeError(w, http.StatusNotFound, "NOT_A_CLUSTER", "this j1ds runs on its embedded store, as one node: start every node with --store postgres://... to run a cluster")
		return
	}
	v, err := s.cfg.Cluster.View(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
