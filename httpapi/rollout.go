package httpapi

import (
	"context"
	"net/http"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rollout"
)

// Rollouts is the rollout capability as the device update endpoints use it
// (*rollout.Service): which approved release a device is offered, and its reports.
type Rollouts interface {
	Offer(ctx context.Context, deviceID string) (rollout.Offer, bool, error)
	Report(ctx context.Context, deviceID string, r rollout.Report) error
}

func (s *Server) updatesOrUnavailable() (Rollouts, error) {
	if s.rollouts == nil {
		return nil, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server does not serve software updates")
	}
	return s.rollouts, nil
}

// handleUpdateOffer serves GET /updates/offer: 200 with the release the device's rollout
// offers it, 204 when nothing new is offered.
func (s *Server) handleUpdateOffer(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	u, err := s.updatesOrUnavailable()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	offer, ok, err := u.Offer(r.Context(), p.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, offer)
}

// handleUpdateReport serves POST /updates/report: a device's report of its update
// (downloading, installed, healthy, failed, rolled-back), 204 once recorded.
func (s *Server) handleUpdateReport(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	var rep rollout.Report
	if err := s.decodeJSON(w, r, &rep, `the body must be {"version": "V", "state": "downloading|installed|healthy|failed|rolled-back", "reason": "...", "device": "<your id, optional>"}`); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.updatesOrUnavailable()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := u.Report(r.Context(), p.ID, rep); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
