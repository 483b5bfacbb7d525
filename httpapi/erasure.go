package httpapi

import (
	"context"
	"net/http"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/erasure"
)

// Erasure is the patient erasure capability as the admin API uses it (*erasure.Service):
// one admin client requests, another approves; a legal hold blocks.
type Erasure interface {
	RequestFor(ctx context.Context, p vitalgate.Principal, patientID, reason string) (string, error)
	ApproveFor(ctx context.Context, p vitalgate.Principal, id string) (erasure.Result, error)
	HoldFor(ctx context.Context, p vitalgate.Principal, patientID, reason string) error
	ReleaseHoldFor(ctx context.Context, p vitalgate.Principal, patientID string) error
}

type reasonBody struct {
	Reason string `json:"reason"`
}

const reasonShape = `the body must be {"reason": "<why>"}`

// handleRequestErasure: POST /admin/patients/{id}/erasure with {"reason": "..."} requests the
// erasure of a patient of the caller's site; 201 {"id": "<request id>"}.
func (s *Server) handleRequestErasure(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	var req reasonBody
	if err := s.decodeJSON(w, r, &req, reasonShape); err != nil {
		s.writeError(w, r, err)
		return
	}
	id, err := s.erasure.RequestFor(r.Context(), p, r.PathValue("id"), req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "status": "requested"})
}

// handleApproveErasure: POST /admin/erasures/{id}/approve approves a request made by another
// admin and erases the patient; 200 with what was erased and the key replacement.
func (s *Server) handleApproveErasure(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	res, err := s.erasure.ApproveFor(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "status": "erased",
		"data_keys": res.DataKeys, "resources": res.Resources, "assignments": res.Assignments,
		"rewrapped": res.Rewrapped, "new_kek": res.NewKEK, "destroyed_keks": len(res.Destroyed)})
}

// handlePlaceHold: PUT /admin/patients/{id}/legal-hold with {"reason": "..."} places a legal
// hold on a patient of the caller's site; 201.
func (s *Server) handlePlaceHold(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	var req reasonBody
	if err := s.decodeJSON(w, r, &req, reasonShape); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.erasure.HoldFor(r.Context(), p, r.PathValue("id"), req.Reason); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"status": "held"})
}

// handleReleaseHold: DELETE /admin/patients/{id}/legal-hold releases the hold; 204.
func (s *Server) handleReleaseHold(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := s.erasure.ReleaseHoldFor(r.Context(), p, r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
