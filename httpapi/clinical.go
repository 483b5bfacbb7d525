package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/fhir"
)

var fhirID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !fhirID.MatchString(id) {
		return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no such resource")
	}
	return id, nil
}

// writeResource answers with one FHIR resource.
func writeResource(w http.ResponseWriter, status int, body []byte, version int, updated time.Time) {
	h := w.Header()
	h.Set("Content-Type", fhirJSON)
	if version > 0 {
		h.Set("ETag", `W/"`+strconv.Itoa(version)+`"`)
		h.Set("Last-Modified", updated.UTC().Format(http.TimeFormat))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body) // #nosec G705 -- FHIR JSON resource served as application/fhir+json (nosniff), never as HTML
}

// fhirBase is the absolute FHIR base URL for links: the public URL the operator gave, or else
// the host the client reached (its TLS handshake checked it against the server
// certificate); a default public URL naming the listen address ("https://[::]:8443",
// "https://127.0.0.1:8443") is not one a client can be sure to reach.
func (s *Server) fhirBase(r *http.Request) string {
	// Without --public-url the node's default is https://LISTEN-ADDRESS, which the server
	// certificate need not name (init --host localhost, --addr 127.0.0.1:8443).
	if u, err := url.Parse(s.cfg.PublicURL); err == nil && s.cfg.PublicURL != "" && s.cfg.PublicURL != "https://"+s.cfg.Addr {
		if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsUnspecified() {
			return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/fhir"
		}
	}
	return "https://" + r.Host + "/fhir"
}

func (s *Server) handleReadObservation(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.read(w, r, p, "Observation")
}

func (s *Server) handleReadPatient(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.read(w, r, p, "Patient")
}

func (s *Server) read(w http.ResponseWriter, r *http.Request, p vitalgate.Principal, typ string) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, sr, err := s.access.Read(r.Context(), p, typ, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logAccess(r, p, "read", typ, 1)
	writeResource(w, http.StatusOK, body, sr.Version, sr.LastUpdated)
}

// logAccess records a read of patient data in the operational log (no patient data).
func (s *Server) logAccess(r *http.Request, p vitalgate.Principal, action, typ string, n int) {
	s.log.Info("patient data access", "request_id", requestID(r), "client", p.ID, "role", p.Role,
		"action", action, "type", typ, "results", n, "emergency", p.Emergency, "remote", p.RemoteIP)
}

func (s *Server) handleSearchObservations(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	s.searchClinical(w, r, p, "Observation", fhir.ParseObservationSearch)
}

func (s *Server) handleSearchPatients(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	q, err := fhir.ParsePatientSearch(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.access.Search(r.Context(), p, access.Query{Type: "Patient", Token: q.Key(),
		ByPatientToken: true, Count: q.Count, Cursor: q.Cursor})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeSearchSet(w, r, p, "Patient", page)
}

// writeSearchSet answers a search with a searchset Bundle whose next link carries the
// opaque cursor.
func (s *Server) writeSearchSet(w http.ResponseWriter, r *http.Request, p vitalgate.Principal, typ string, page access.Page) {
	base := s.fhirBase(r)
	self := base + "/" + typ + "?" + r.URL.RawQuery
	next := ""
	if page.Next != "" {
		q := r.URL.Query()
		q.Set("_cursor", page.Next)
		next = base + "/" + typ + "?" + q.Encode()
	}
	raws := make([]json.RawMessage, len(page.Resources))
	for i, b := range page.Resources {
		raws[i] = b
	}
	ss, err := fhir.NewSearchSet(base, self, next, raws)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := ss.Marshal()
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "marshal searchset"))
		return
	}
	s.logAccess(r, p, "search", typ, len(page.Resources))
	writeResource(w, http.StatusOK, out, 0, time.Time{})
}

func (s *Server) handleCreatePatient(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	if err := requireMediaType(r, "application/fhir+json", "application/json"); err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.readBody(r, w)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.ingest.CreatePatient(r.Context(), p, body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("patient created", "request_id", requestID(r), "client", p.ID, "id", c.ID)
	w.Header().Set("Location", c.Location())
	writeResource(w, http.StatusCreated, c.Body, c.Version, c.LastUpdated)
}

// deviceResource builds the FHIR Device for a registered device (after a change the caller
// has audited).
func (s *Server) deviceResource(ctx context.Context, d vitalgate.Device) ([]byte, error) {
	return s.access.DeviceResource(ctx, d)
}

// handleReadOrganization serves GET /fhir/Organization/{id}: the site the caller's client
// belongs to (access checks the site and records the read).
func (s *Server) handleReadOrganization(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.access.ReadOrganization(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, body, 0, time.Time{})
}

// handleReadDevice serves GET /fhir/Device/{id}: access checks the scope and the patient
// and records the read, allowed or refused.
func (s *Server) handleReadDevice(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	id, err := pathID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := s.access.ReadDevice(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, body, 0, time.Time{})
}

// handleAssignDevice reassigns a device to a patient: PUT /admin/devices/{id} with
// {"patient": "<Patient id>"}. The registry decides, records the history and audits; it
// takes effect for readings measured from now on.
func (s *Server) handleAssignDevice(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	var req struct {
		Patient string `json:"patient"`
	}
	if err := s.decodeJSON(w, r, &req, `the body must be {"patient": "<Patient id>"}`); err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.registry.Assign(r.Context(), p, r.PathValue("id"), req.Patient)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.deviceResource(r.Context(), d)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, out, 0, time.Time{})
}

// decodeJSON reads an application/json body into v, refusing unknown fields and trailing
// data with the message shape.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any, shape string) error {
	if err := requireMediaType(r, "application/json"); err != nil {
		return err
	}
	body, err := s.readBody(r, w)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		return vitalgate.Errorf(vitalgate.EINVALID, "%s", shape)
	}
	return nil
}

// handleSMARTConfiguration serves SMART discovery (SMART App Launch 2.x, backend services).
func (s *Server) handleSMARTConfiguration(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.issuer(r),
		"token_endpoint":                        s.tokenURL(r),
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS384", "ES384"},
		"scopes_supported": []string{"system/Patient.crs", "system/Observation.rs", "system/Device.rus",
			"system/DiagnosticReport.rs", "system/Specimen.rs",
			"user/Patient.rs", "user/Observation.rs", "user/Device.rs", "user/DiagnosticReport.rs", "user/Specimen.rs"},
		"capabilities": []string{"client-confidential-asymmetric", "client-confidential-symmetric", "permission-v2", "permission-v1"},
	})
}

func (s *Server) issuer(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/")
	}
	return "https://" + r.Host
}

// handleMetadata serves the CapabilityStatement, generated from the route table so that it
// lists exactly what is implemented.
// siteModel is the CapabilityStatement's description of sites.
const siteModel = "Vitalgate. Sites: one deployment serves several hospitals or facilities (sites); each site is " +
	"an Organization (GET Organization/<site>, readable by the clients of that site). Every stored resource " +
	"carries its site in meta.tag (system " + access.SiteSystem + ", code the Organization id). A client's " +
	"token acts within its client's site only: reads, searches and the audit log of another site are not visible, " +
	"and a device writes only for patients of its own site."

func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	type res struct {
		interactions []string
		params       []fhir.CapabilitySearchParam
	}
	byType := map[string]*res{}
	order := []string{}
	add := func(typ, interaction string, params ...fhir.CapabilitySearchParam) {
		if byType[typ] == nil {
			byType[typ] = &res{}
			order = append(order, typ)
		}
		byType[typ].interactions = append(byType[typ].interactions, interaction)
		byType[typ].params = append(byType[typ].params, params...)
	}
	for _, rt := range s.routes {
		switch {
		case rt.Method == "POST" && rt.Pattern == "/fhir/Observation":
			add("Observation", "create")
		case rt.Method == "GET" && rt.Pattern == "/fhir/Observation/{id}":
			add("Observation", "read")
		case rt.Method == "GET" && rt.Pattern == "/fhir/Observation":
			add("Observation", "search-type", fhir.CapabilitySearchParam{Name: "patient", Type: "reference"},
				fhir.CapabilitySearchParam{Name: "code", Type: "token"}, fhir.CapabilitySearchParam{Name: "date", Type: "date"},
				fhir.CapabilitySearchParam{Name: "category", Type: "token"})
		case rt.Method == "GET" && rt.Pattern == "/fhir/DiagnosticReport/{id}":
			add("DiagnosticReport", "read")
		case rt.Method == "GET" && rt.Pattern == "/fhir/DiagnosticReport":
			add("DiagnosticReport", "search-type", fhir.CapabilitySearchParam{Name: "patient", Type: "reference"},
				fhir.CapabilitySearchParam{Name: "code", Type: "token"}, fhir.CapabilitySearchParam{Name: "date", Type: "date"})
		case rt.Method == "GET" && rt.Pattern == "/fhir/Specimen/{id}":
			add("Specimen", "read")
		case rt.Method == "POST" && rt.Pattern == "/fhir/Patient":
			add("Patient", "create")
		case rt.Method == "GET" && rt.Pattern == "/fhir/Patient/{id}":
			add("Patient", "read")
		case rt.Method == "GET" && rt.Pattern == "/fhir/Patient":
			add("Patient", "search-type", fhir.CapabilitySearchParam{Name: "identifier", Type: "token"})
		case rt.Method == "GET" && rt.Pattern == "/fhir/Device/{id}":
			add("Device", "read")
		case rt.Method == "GET" && rt.Pattern == "/fhir/Organization/{id}":
			add("Organization", "read")
		case rt.Method == "GET" && rt.Pattern == "/fhir/AuditEvent":
			add("AuditEvent", "search-type", fhir.CapabilitySearchParam{Name: "patient", Type: "reference"},
				fhir.CapabilitySearchParam{Name: "agent", Type: "token"}, fhir.CapabilitySearchParam{Name: "action", Type: "token"},
				fhir.CapabilitySearchParam{Name: "date", Type: "date"})
		}
	}
	var defs []fhir.ResourceCapability
	for _, t := range order {
		defs = append(defs, fhir.ResourceCapability{Type: t, Interactions: byType[t].interactions, SearchParams: byType[t].params})
	}
	var system []string
	for _, rt := range s.routes {
		if rt.Method == "POST" && rt.Pattern == "/fhir" {
			system = append(system, "batch", "transaction")
		}
	}
	cs := fhir.NewCapabilityStatement(fhir.CapabilityOptions{
		SoftwareName: "Vitalgate", Date: s.started, BaseURL: s.fhirBase(r), TokenURL: s.tokenURL(r),
		Description: siteModel,
		Resources:   defs, SystemInteractions: system,
	})
	out, err := json.Marshal(cs)
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "marshal capability statement"))
		return
	}
	writeResource(w, http.StatusOK, out, 0, time.Time{})
}
