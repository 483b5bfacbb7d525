package httpapi

import (
	"context"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/pki"
)

// AuthKind is how a route authenticates its caller.
type AuthKind string

// Authentication kinds.
const (
	// AuthPublic routes need no credentials. Only discovery and health routes are public, and
	// each is listed explicitly with PermPublic.
	AuthPublic AuthKind = "public"
	// AuthEnrollSecret routes take HTTP Basic deviceID:one-time-secret, or the device's
	// manufacturer certificate (IDevID) in the handshake (EST simpleenroll).
	AuthEnrollSecret AuthKind = "enroll-secret"
	// AuthDevice routes need a device client certificate from the built-in CA (mutual TLS).
	AuthDevice AuthKind = "device"
	// AuthClientCredentials is the token endpoint: the handler authenticates the client
	// (client_secret_basic or private_key_jwt).
	AuthClientCredentials AuthKind = "client-credentials"
	// AuthToken routes need an OAuth2 bearer access token issued by this server.
	AuthToken AuthKind = "token"
)

// Route is one endpoint: method, path pattern (net/http ServeMux syntax), how the caller
// authenticates and which permission it must hold.
type Route struct {
	Method     string
	Pattern    string
	Auth       AuthKind
	Permission access.Permission
	handler    func(w http.ResponseWriter, r *http.Request, p vitalgate.Principal)
}

func (s *Server) routeTable() []Route {
	return []Route{
		{"GET", "/healthz", AuthPublic, access.PermPublic, s.handleHealth},
		{"GET", "/fhir/metadata", AuthPublic, access.PermPublic, s.handleMetadata},
		{"GET", "/.well-known/smart-configuration", AuthPublic, access.PermPublic, s.handleSMARTConfiguration},
		{"POST", "/oauth2/token", AuthClientCredentials, access.PermToken, s.handleToken},
		{"GET", "/fhir/Observation/{id}", AuthToken, access.PermObservationRead, s.handleReadObservation},
		{"GET", "/fhir/Observation", AuthToken, access.PermObservationSearch, s.handleSearchObservations},
		{"POST", "/fhir/Patient", AuthToken, access.PermPatientCreate, s.handleCreatePatient},
		{"GET", "/fhir/Patient/{id}", AuthToken, access.PermPatientRead, s.handleReadPatient},
		{"GET", "/fhir/Patient", AuthToken, access.PermPatientSearch, s.handleSearchPatients},
		{"GET", "/fhir/Device/{id}", AuthToken, access.PermDeviceRead, s.handleReadDevice},
		{"GET", "/fhir/DiagnosticReport/{id}", AuthToken, access.PermDiagnosticReportRead, s.handleReadDiagnosticReport},
		{"GET", "/fhir/DiagnosticReport", AuthToken, access.PermDiagnosticReportSearch, s.handleSearchDiagnosticReports},
		{"GET", "/fhir/Specimen/{id}", AuthToken, access.PermSpecimenRead, s.handleReadSpecimen},
		{"GET", "/fhir/Organization/{id}", AuthToken, access.PermOrganizationRead, s.handleReadOrganization},
		{"PUT", "/admin/devices/{id}", AuthToken, access.PermDeviceAssign, s.handleAssignDevice},
		{"POST", "/admin/patients/{id}/erasure", AuthToken, access.PermPatientErase, s.handleRequestErasure},
		{"POST", "/admin/erasures/{id}/approve", AuthToken, access.PermPatientErase, s.handleApproveErasure},
		{"PUT", "/admin/patients/{id}/legal-hold", AuthToken, access.PermPatientErase, s.handlePlaceHold},
		{"DELETE", "/admin/patients/{id}/legal-hold", AuthToken, access.PermPatientErase, s.handleReleaseHold},
		{"GET", "/fhir/AuditEvent", AuthToken, access.PermAuditRead, s.handleAuditEvents},
		{"GET", "/fhir/DetectedIssue/{id}", AuthToken, access.PermDetectedIssueRead, s.handleReadDetectedIssue},
		{"GET", "/fhir/DetectedIssue", AuthToken, access.PermDetectedIssueRead, s.handleSearchDetectedIssues},
		{"GET", "/audit/checkpoint", AuthToken, access.PermAuditRead, s.handleAuditCheckpoint},
		{"GET", "/audit/proof/inclusion", AuthToken, access.PermAuditRead, s.handleInclusionProof},
		{"GET", "/audit/proof/consistency", AuthToken, access.PermAuditRead, s.handleConsistencyProof},
		{"GET", "/readyz", AuthPublic, access.PermPublic, s.handleReady},
		{"GET", "/.well-known/est/cacerts", AuthPublic, access.PermPublic, s.handleCACerts},
		{"POST", "/.well-known/est/simpleenroll", AuthEnrollSecret, access.PermEnroll, s.handleSimpleEnroll},
		{"POST", "/.well-known/est/simplereenroll", AuthDevice, access.PermReenroll, s.handleSimpleReenroll},
		{"POST", "/fhir/Observation", AuthDevice, access.PermObservationCreate, s.handleCreateObservation},
		{"POST", "/fhir", AuthDevice, access.PermObservationCreate, s.handleBundle},
		{"GET", "/updates/metadata/{name}", AuthDevice, access.PermUpdateRead, s.handleUpdateMetadata},
		{"GET", "/updates/targets/{path...}", AuthDevice, access.PermUpdateRead, s.handleUpdateTarget},
		{"GET", "/updates/offer", AuthDevice, access.PermUpdateOffer, s.handleUpdateOffer},
		{"POST", "/updates/report", AuthDevice, access.PermUpdateReport, s.handleUpdateReport},
		{"GET", "/posture", AuthToken, access.PermPostureRead, s.handlePosture},
		{"GET", "/fhir/Patient/$export", AuthToken, access.PermBulkExport, s.handlePatientExport},
		{"POST", "/fhir/Patient/$export", AuthToken, access.PermBulkExport, s.handlePatientExport},
		{"GET", "/fhir/Group/{id}/$export", AuthToken, access.PermBulkExport, s.handleGroupExport},
		{"POST", "/fhir/Group/{id}/$export", AuthToken, access.PermBulkExport, s.handleGroupExport},
		{"GET", "/fhir/Group", AuthToken, access.PermBulkExport, s.handleGroups},
		{"GET", "/fhir/bulk/{id}", AuthToken, access.PermBulkExport, s.handleExportStatus},
		{"DELETE", "/fhir/bulk/{id}", AuthToken, access.PermBulkExport, s.handleExportCancel},
		{"GET", "/fhir/bulk/{id}/file/{n}", AuthToken, access.PermBulkExport, s.handleExportFile},
		{"GET", "/fhir/SubscriptionTopic", AuthToken, access.PermSubscribe, s.handleSubscriptionTopics},
		{"POST", "/fhir/Subscription", AuthToken, access.PermSubscribe, s.handleCreateSubscription},
		{"GET", "/fhir/Subscription/{id}", AuthToken, access.PermSubscribe, s.handleReadSubscription},
		{"DELETE", "/fhir/Subscription/{id}", AuthToken, access.PermSubscribe, s.handleDeleteSubscription},
		{"GET", "/fhir/Subscription/{id}/$status", AuthToken, access.PermSubscribe, s.handleSubscriptionStatus},
		{"GET", "/fhir/Subscription/{id}/$events", AuthToken, access.PermSubscribe, s.handleSubscriptionEvents},
	}
}

type principalKey struct{}

// guard authenticates the caller the way the route demands and checks the route's
// permission; nothing reaches a handler otherwise.
func (s *Server) guard(rt Route) http.Handler {
	name := rt.Method + " " + rt.Pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		w = rec
		if s.protect.metrics != nil {
			s.protect.metrics.InFlight.Inc()
			defer s.protect.metrics.InFlight.Dec()
		}
		defer func() { s.observe(name, rec.status, start) }()
		if err := s.beforeAuth(w, r, rt); err != nil {
			s.writeError(w, r, err)
			return
		}
		p, err := s.authenticate(r, rt.Auth, rt.Permission)
		if err != nil {
			s.writeError(w, r, s.access.AuthenticationFailed(r.Context(), string(rt.Auth), name, err))
			return
		}
		if err := s.access.Authorize(r.Context(), p, rt.Permission, name); err != nil {
			s.writeError(w, r, err)
			return
		}
		release, err := s.afterAuth(w, p, rt)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		defer release()
		rt.handler(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), p)
	})
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate establishes who is calling.
func (s *Server) authenticate(r *http.Request, kind AuthKind, perm access.Permission) (vitalgate.Principal, error) {
	p := vitalgate.Principal{RemoteIP: remoteIP(r)}
	switch kind {
	case AuthPublic:
		p.Kind = access.KindAnonymous
		return p, nil
	case AuthEnrollSecret:
		id, _, ok := r.BasicAuth()
		if !ok && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 && !s.registry.IssuedHere(r.TLS.PeerCertificates[0]) {
			// Zero-touch: the manufacturer identity the handshake verified; the registry
			// checks it again against the device's model.
			p.Kind, p.ID = access.KindEnrollee, pki.IDevIDDeviceID(r.TLS.PeerCertificates[0])
			return p, nil
		}
		if !ok || id == "" {
			return p, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "enrollment needs HTTP Basic authentication with the device id and its enrollment secret, or the device's manufacturer certificate (IDevID) in the TLS handshake")
		}
		// The secret itself is checked by the handler, atomically with its single use.
		p.Kind, p.ID = access.KindEnrollee, id
		return p, nil
	case AuthDevice:
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return p, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "this endpoint needs a device client certificate (mutual TLS)")
		}
		// Every request, also on a long-lived connection: revocation, expiry and the device's
		// state are the registry's decision, within its staleness bound.
		authorize := s.registry.Authorize
		if access.Remediation(perm) {
			authorize = s.registry.AuthorizeUpdates // a quarantined device may still fetch updates
		}
		id, err := authorize(r.Context(), r.TLS.PeerCertificates[0])
		if err != nil {
			return p, err
		}
		p.Kind, p.ID, p.Role = "device", id, vitalgate.RoleDevice
		return p, nil
	case AuthClientCredentials:
		p.Kind = access.KindClientCandidate
		return p, nil
	case AuthToken:
		h := r.Header.Get("Authorization")
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return p, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "this endpoint needs an OAuth2 bearer access token")
		}
		c, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(tok))
		if err != nil {
			return p, err
		}
		p.Kind, p.ID, p.Role, p.Scopes, p.Site = "client", c.ClientID, c.Role, c.Scopes, c.Site
		p.Emergency, p.EmergencyReason = c.Emergency, c.EmergencyReason
		return p, nil
	}
	return p, vitalgate.Errorf(vitalgate.EFORBIDDEN, "not permitted")
}
