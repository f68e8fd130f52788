package api

import (
	"encoding/json"
	"net/http"

	"github.com/j1ds/j1ds/internal/syncjobs"
)

// jobResponse is the envelope of job answers: {"job": {...}}.
type jobResponse struct {
	Job syncjobs.Job `json:"job"`
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request, p principal) {
	var req syncjobs.CreateRequest
	if !s.decodeJSON(w, r, &req, false) {
		return
	}
	j, err := s.cfg.Jobs.Create(p.account.ID, req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit.Job("job.created", p.account.ID, p.key.ID, j.ID)
	writeJSON(w, http.StatusOK, jobResponse{j})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, p principal) {
	j, err := s.cfg.Jobs.Get(p.account.ID, r.PathValue("job"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, jobResponse{j})
}

type uploadBody struct {
	Entities      []json.RawMessage `json:"entities"`
	Relationships []json.RawMessage `json:"relationships"`
}

func (s *Server) uploadEntities(w http.ResponseWriter, r *http.Request, p principal) {
	s.doUpload(w, r, p, true, false)
}

func (s *Server) uploadRelationships(w http.ResponseWriter, r *http.Request, p principal) {
	s.doUpload(w, r, p, false, true)
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, p principal) {
	s.doUpload(w, r, p, true, true)
}

func (s *Server) doUpload(w http.ResponseWriter, r *http.Request, p principal, entities, relationships bool) {
	var body uploadBody
	if !s.decodeJSON(w, r, &body, false) {
		return
	}
	switch {
	case !entities && body.Entities != nil:
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", "this endpoint takes {\"relationships\": [...]}; upload entities to .../entities or .../upload")
		return
	case !relationships && body.Relationships != nil:
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", "this endpoint takes {\"entities\": [...]}; upload relationships to .../relationships or .../upload")
		return
	case entities && !relationships && body.Entities == nil:
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", "entities is required: {\"entities\": [...]}")
		return
	case relationships && !entities && body.Relationships == nil:
		writeError(w, http.StatusBadRequest, "INVALID_INPUT", "relationships is required: {\"relationships\": [...]}")
		return
	}
	j, err := s.cfg.Jobs.Upload(p.account.ID, r.PathValue("job"), body.Entities, body.Relationships)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, jobResponse{j})
}

func (s *Server) finalizeJob(w http.ResponseWriter, r *http.Request, p principal) {
	var body struct {
		PartialDatasets *syncjobs.PartialDatasets `json:"partialDatasets"`
	}
	if !s.decodeJSON(w, r, &body, true) {
		return
	}
	j, err := s.cfg.Jobs.Finalize(r.Context(), p.account.ID, r.PathValue("job"), body.PartialDatasets)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit.Job("job.finalized", p.account.ID, p.key.ID, j.ID)
	writeJSON(w, http.StatusOK, jobResponse{j})
}

func (s *Server) abortJob(w http.ResponseWriter, r *http.Request, p principal) {
	var body struct {
		Reason string `json:"reason"`
	}
	if !s.decodeJSON(w, r, &body, true) {
		return
	}
	j, err := s.cfg.Jobs.Abort(p.account.ID, r.PathValue("job"), body.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit.Job("job.aborted", p.account.ID, p.key.ID, j.ID)
	writeJSON(w, http.StatusOK, jobResponse{j})
}

func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request, p principal) {
	var body struct {
		Events []syncjobs.Event `json:"events"`
	}
	if !s.decodeJSON(w, r, &body, false) {
		return
	}
	j, err := s.cfg.Jobs.AddEvents(p.account.ID, r.PathValue("job"), body.Events)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, jobResponse{j})
}
