package httpapi

import (
	"context"
	"net/http"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/posture"
)

// Posture is the vulnerability posture capability as GET /posture uses it
// (*posture.Service).
type Posture interface {
	Report(ctx context.Context, q posture.Query) (posture.Report, error)
}

// handlePosture serves GET /posture[?model=M][&device=ID]: the posture report (JSON) of
// the devices of the caller's site (every site's for a deployment-wide principal).
func (s *Server) handlePosture(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if s.posture == nil {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server does not report the vulnerability posture"))
		return
	}
	rep, err := s.posture.Report(r.Context(), posture.Query{Model: r.URL.Query().Get("model"), Device: r.URL.Query().Get("device"), Site: p.Site})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
