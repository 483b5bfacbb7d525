package httpapi

import (
	"context"
	"net"
	"net/http"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
)

// AuthKind is how a route authenticates its caller.
type AuthKind string

// Authentication kinds.
const (
	// AuthPublic routes need no credentials. Only discovery and health routes are public, and
	// each is listed explicitly with PermPublic.
	AuthPublic AuthKind = "public"
	// AuthEnrollSecret routes take HTTP Basic deviceID:one-time-secret (EST simpleenroll).
	AuthEnrollSecret AuthKind = "enroll-secret"
	// AuthDevice routes need a device client certificate from the built-in CA (mutual TLS).
	AuthDevice AuthKind = "device"
)

// Permission is what a route checks after authentication.
type Permission string

// Permissions.
const (
	PermPublic            Permission = "public"
	PermEnroll            Permission = "device:enroll"
	PermReenroll          Permission = "device:reenroll"
	PermObservationCreate Permission = "observation:create"
)

// rolePermissions is the whole grant table: a role may do exactly what is listed here.
var rolePermissions = map[vitalgate.Role][]Permission{
	vitalgate.RoleDevice: {PermReenroll, PermObservationCreate},
}

// enrolleePermissions are granted to a device authenticated by its one-time secret.
var enrolleePermissions = []Permission{PermEnroll}

// Route is one endpoint: method, path pattern (net/http ServeMux syntax), how the caller
// authenticates and which permission it must hold.
type Route struct {
	Method     string
	Pattern    string
	Auth       AuthKind
	Permission Permission
	handler    func(w http.ResponseWriter, r *http.Request, p vitalgate.Principal)
}

func (s *Server) routeTable() []Route {
	return []Route{
		{"GET", "/healthz", AuthPublic, PermPublic, s.handleHealth},
		{"GET", "/readyz", AuthPublic, PermPublic, s.handleReady},
		{"GET", "/.well-known/est/cacerts", AuthPublic, PermPublic, s.handleCACerts},
		{"POST", "/.well-known/est/simpleenroll", AuthEnrollSecret, PermEnroll, s.handleSimpleEnroll},
		{"POST", "/.well-known/est/simplereenroll", AuthDevice, PermReenroll, s.handleSimpleReenroll},
		{"POST", "/fhir/Observation", AuthDevice, PermObservationCreate, s.handleCreateObservation},
		{"POST", "/fhir", AuthDevice, PermObservationCreate, s.handleBundle},
	}
}

type principalKey struct{}

// guard authenticates the caller the way the route demands and checks the route's
// permission; nothing reaches a handler otherwise.
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, rt.Auth)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if !allowed(p, rt) {
			s.writeError(w, r, vitalgate.Errorf(vitalgate.EFORBIDDEN, "not permitted"))
			return
		}
		rt.handler(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), p)
	})
}

// allowed reports whether principal p holds the route's permission.
func allowed(p vitalgate.Principal, rt Route) bool {
	if rt.Permission == PermPublic {
		return rt.Auth == AuthPublic
	}
	grants := rolePermissions[p.Role]
	if p.Kind == "enrollee" {
		grants = enrolleePermissions
	}
	for _, g := range grants {
		if g == rt.Permission {
			return true
		}
	}
	return false
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate establishes who is calling.
func (s *Server) authenticate(r *http.Request, kind AuthKind) (vitalgate.Principal, error) {
	p := vitalgate.Principal{RemoteIP: remoteIP(r)}
	switch kind {
	case AuthPublic:
		p.Kind = "anonymous"
		return p, nil
	case AuthEnrollSecret:
		id, _, ok := r.BasicAuth()
		if !ok || id == "" {
			return p, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "enrollment needs HTTP Basic authentication with the device id and its enrollment secret")
		}
		// The secret itself is checked by the handler, atomically with its single use.
		p.Kind, p.ID = "enrollee", id
		return p, nil
	case AuthDevice:
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return p, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "this endpoint needs a device client certificate (mutual TLS)")
		}
		cert := r.TLS.PeerCertificates[0]
		id, ok := pki.DeviceIDFromCert(cert)
		if !ok {
			return p, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the client certificate is not a device certificate")
		}
		if err := s.checkRevocation(r.Context(), cert, false); err != nil {
			return p, err
		}
		p.Kind, p.ID, p.Role = "device", id, vitalgate.RoleDevice
		return p, nil
	}
	return p, vitalgate.Errorf(vitalgate.EFORBIDDEN, "not permitted")
}
