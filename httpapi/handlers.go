package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/ingest"
)

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request, _ vitalgate.Principal) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.writeError(w, r, vitalgate.Unavailable(err, "the store is not reachable"))
		return
	}
	if s.overloaded() {
		s.writeError(w, r, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "the server is shedding load"))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	body := "ready\n"
	if s.cfg.CryptoMode != "" {
		body += "crypto: " + s.cfg.CryptoMode + "\n"
	}
	_, _ = w.Write([]byte(body))
}

// handleCreateObservation stores one Observation from a device (FHIR create).
func (s *Server) handleCreateObservation(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := requireMediaType(r, "application/fhir+json", "application/json"); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r, w)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.ingest.CreateObservation(r.Context(), p.ID, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Location", c.Location())
	h.Set("ETag", `W/"`+strconv.Itoa(c.Version)+`"`)
	h.Set("Last-Modified", c.LastUpdated.Format(http.TimeFormat))
	h.Set("Content-Type", fhirJSON)
	if c.Existing {
		w.WriteHeader(http.StatusOK) // sent before: this is the stored observation, nothing new
	} else {
		w.WriteHeader(http.StatusCreated)
	}
	_, _ = w.Write(c.Body)
}

// handleBundle processes a batch or transaction Bundle of Observations from a device.
func (s *Server) handleBundle(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := requireMediaType(r, "application/fhir+json", "application/json"); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r, w)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.ingest.CreateBundle(r.Context(), p.ID, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.bundleResponse(r, res).Marshal()
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "marshal bundle response"))
		return
	}
	w.Header().Set("Content-Type", fhirJSON)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// bundleResponse builds the batch-response or transaction-response for an ingested Bundle.
func (s *Server) bundleResponse(r *http.Request, res ingest.BundleResult) *fhir.Bundle {
	out := make([]fhir.BundleResponse, len(res.Entries))
	for i, e := range res.Entries {
		if e.Err != nil {
			status, oo := s.outcome(r, e.Err)
			out[i] = fhir.BundleResponse{Status: strconv.Itoa(status) + " " + http.StatusText(status), Outcome: oo}
			continue
		}
		status := "201 Created"
		if e.Created.Existing {
			status = "200 OK"
		}
		out[i] = fhir.BundleResponse{
			Status: status, Location: e.Created.Location(), Etag: `W/"` + strconv.Itoa(e.Created.Version) + `"`,
			LastModified: e.Created.LastUpdated.Format(time.RFC3339Nano),
		}
	}
	if res.Type == "transaction" {
		return fhir.NewTransactionResponse(out)
	}
	return fhir.NewBatchResponse(out)
}
