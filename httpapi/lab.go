package httpapi

import (
	"net/http"
	"net/url"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/fhir"
)

// Laboratory results (HL7 v2 ORU^R01 / OUL^R22 over MLLP, stored by ingest) are read as
// DiagnosticReports, Specimens and Observations of category laboratory
// (GET /fhir/Observation?category=laboratory): access applies the scopes, care team, site
// and audit, as for every read.

func (s *Server) handleReadDiagnosticReport(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.read(w, r, p, "DiagnosticReport")
}

func (s *Server) handleReadSpecimen(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.read(w, r, p, "Specimen")
}

// handleSearchDiagnosticReports serves GET /fhir/DiagnosticReport?patient=[&code=][&date=].
func (s *Server) handleSearchDiagnosticReports(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.searchClinical(w, r, p, "DiagnosticReport", fhir.ParseDiagnosticReportSearch)
}

// searchClinical serves a search of one patient's resources of type typ whose query parse
// reads (Observation, DiagnosticReport): access authorizes, searches and audits.
func (s *Server) searchClinical(w http.ResponseWriter, r *http.Request, p vitalgate.Principal, typ string, parse func(url.Values) (fhir.ObservationSearch, error)) {
	q, err := parse(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	aq, err := clinicalQuery(typ, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.Search(r.Context(), p, aq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeSearchSet(w, r, p, typ, page)
}

// clinicalQuery is the access query of a parsed Observation or DiagnosticReport search.
func clinicalQuery(typ string, q fhir.ObservationSearch) (access.Query, error) {
	if len(q.Codes) > 1 {
		return access.Query{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "code", "search one code at a time")
	}
	aq := access.Query{Type: typ, PatientID: q.PatientID, From: q.From, To: q.To,
		Count: q.Count, Desc: q.Desc, Cursor: q.Cursor, Category: q.Category}
	if len(q.Codes) == 1 {
		aq.Token = q.Codes[0]
	}
	return aq, nil
}
