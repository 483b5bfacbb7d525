package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

// StatusOf maps an error code to its HTTP status: the only place where Vitalgate's errors
// become HTTP statuses (fhir.OperationOutcomeFromError gives the matching FHIR issue type);
// the console's pages use it too.
func StatusOf(code string) int {
	switch code {
	case vitalgate.EINVALID:
		return http.StatusBadRequest
	case vitalgate.EUNPROCESSABLE:
		return http.StatusUnprocessableEntity
	case vitalgate.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case vitalgate.EFORBIDDEN:
		return http.StatusForbidden
	case vitalgate.ENOTFOUND:
		return http.StatusNotFound
	case vitalgate.ECONFLICT:
		return http.StatusConflict
	case vitalgate.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case vitalgate.EUNSUPPORTED:
		return http.StatusUnsupportedMediaType
	case vitalgate.ETHROTTLED:
		return http.StatusTooManyRequests
	case vitalgate.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// outcome turns an error into an OperationOutcome and its HTTP status. Internal errors get an
// error id that is logged with the cause; the caller sees only the id.
func (s *Server) outcome(r *http.Request, err error) (int, *fhir.OperationOutcome) {
	code := vitalgate.ErrorCode(err)
	var id string
	if code == vitalgate.EINTERNAL || code == vitalgate.EUNAVAILABLE {
		id = errorID()
		s.log.LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("request_id", requestID(r)), slog.String("error_id", id),
			slog.String("code", code), slog.String("error", err.Error()))
	}
	return StatusOf(code), fhir.OperationOutcomeFromError(err, id)
}

// writeError answers a request with an OperationOutcome for err.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, oo := s.outcome(r, err)
	switch vitalgate.ErrorCode(err) {
	case vitalgate.EUNAUTHORIZED:
		if w.Header().Get("WWW-Authenticate") == "" {
			if strings.HasPrefix(r.URL.Path, "/fhir/") || strings.HasPrefix(r.URL.Path, "/admin/") {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vitalgate", error="invalid_token"`)
			} else {
				w.Header().Set("WWW-Authenticate", `Basic realm="vitalgate"`)
			}
		}
	case vitalgate.ETHROTTLED, vitalgate.EUNAVAILABLE:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", "1")
		}
	}
	body, merr := oo.Marshal()
	if merr != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(status)
	_, _ = w.Write(body) // #nosec G705 -- JSON-encoded OperationOutcome served as application/fhir+json (nosniff), never as HTML
}

func errorID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
