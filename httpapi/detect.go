package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
)

// Alerts is the detection capability as the DetectedIssue routes use it (*detect.Service):
// security alerts as FHIR DetectedIssue resources, of the sites the caller may see.
type Alerts interface {
	ReadDetectedIssue(ctx context.Context, p vitalgate.Principal, id string) ([]byte, error)
	SearchDetectedIssues(ctx context.Context, p vitalgate.Principal, f vitalgate.AlertFilter) ([][]byte, error)
}

func (s *Server) alertsOrUnavailable() (Alerts, error) {
	if s.alerts == nil {
		return nil, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this server runs no detection")
	}
	return s.alerts, nil
}

// handleReadDetectedIssue serves GET /fhir/DetectedIssue/{id}: one security alert.
func (s *Server) handleReadDetectedIssue(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	al, err := s.alertsOrUnavailable()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := al.ReadDetectedIssue(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, body, 0, time.Time{})
}

// handleSearchDetectedIssues serves GET /fhir/DetectedIssue[?status=open|acknowledged|resolved]
// [&implicated=Device/ID]: security alerts, newest first (at most _count, default 100).
func (s *Server) handleSearchDetectedIssues(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	f, err := alertFilter(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	al, err := s.alertsOrUnavailable()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	bodies, err := al.SearchDetectedIssues(r.Context(), p, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeSearchSet(w, r, p, "DetectedIssue", access.Page{Resources: bodies})
}

// alertFilter decodes the DetectedIssue search parameters.
func alertFilter(r *http.Request) (vitalgate.AlertFilter, error) {
	q := r.URL.Query()
	var f vitalgate.AlertFilter
	for k := range q {
		switch k {
		case "status", "implicated", "_count":
		default:
			return f, vitalgate.FieldErrorf(vitalgate.EINVALID, k, "unknown search parameter %q (status, implicated, _count)", k)
		}
	}
	switch st := vitalgate.AlertStatus(q.Get("status")); st {
	case "", vitalgate.AlertOpen, vitalgate.AlertAcknowledged, vitalgate.AlertResolved:
		f.Status = st
	default:
		return f, vitalgate.FieldErrorf(vitalgate.EINVALID, "status", "status must be open, acknowledged or resolved")
	}
	if imp := q.Get("implicated"); imp != "" {
		dev, ok := strings.CutPrefix(imp, "Device/")
		if !ok || !fhirID.MatchString(dev) {
			return f, vitalgate.FieldErrorf(vitalgate.EINVALID, "implicated", "implicated must be Device/ID")
		}
		f.Device = dev
	}
	if c := q.Get("_count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 || n > 1000 {
			return f, vitalgate.FieldErrorf(vitalgate.EINVALID, "_count", "_count must be between 1 and 1000")
		}
		f.Limit = n
	}
	return f, nil
}
