package auth

import (
	"slices"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// Scope is a parsed SMART on FHIR scope, e.g. "system/Observation.rs" (v2) or
// "user/Patient.read" (v1, normalised to v2 permissions).
type Scope struct {
	Context  string // "patient", "user" or "system"
	Resource string // a FHIR resource type or "*"
	Perms    string // a subset of "cruds", in that order
}

// String returns the scope in SMART v2 syntax.
func (s Scope) String() string { return s.Context + "/" + s.Resource + "." + s.Perms }

// ParseScope parses a SMART v1 or v2 resource scope. It returns false for anything else.
func ParseScope(s string) (Scope, bool) {
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok || (ctx != "patient" && ctx != "user" && ctx != "system") {
		return Scope{}, false
	}
	res, perms, ok := strings.Cut(rest, ".")
	if !ok || res == "" || len(res) > 64 {
		return Scope{}, false
	}
	if res != "*" {
		for _, c := range res {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
				return Scope{}, false
			}
		}
	}
	switch perms {
	case "read":
		perms = "rs"
	case "write":
		perms = "cud"
	case "*":
		perms = "cruds"
	default:
		// v2: a non-empty subsequence of "cruds", in order, no repeats.
		i := 0
		for _, c := range perms {
			j := strings.IndexRune("cruds"[i:], c)
			if j < 0 {
				return Scope{}, false
			}
			i += j + 1
		}
		if perms == "" {
			return Scope{}, false
		}
	}
	return Scope{Context: ctx, Resource: res, Perms: perms}, true
}

// Within reports whether s grants nothing that bound does not.
func (s Scope) Within(bound Scope) bool {
	if s.Context != bound.Context || (bound.Resource != "*" && bound.Resource != s.Resource) {
		return false
	}
	for _, c := range s.Perms {
		if !strings.ContainsRune(bound.Perms, c) {
			return false
		}
	}
	return true
}

// Allows reports whether s grants operation op ('c','r','u','d','s') on resource type res.
func (s Scope) Allows(res string, op rune) bool {
	return (s.Resource == "*" || s.Resource == res) && strings.ContainsRune(s.Perms, op)
}

// RoleScopes is the most each role may ever be granted: least privilege, deny by default.
// Devices get no token scopes: they authenticate with their certificates.
var RoleScopes = map[vitalgate.Role][]string{
	vitalgate.RoleAdmin:     {"system/Patient.cruds", "system/Device.rus"},
	vitalgate.RoleEHRSystem: {"system/Patient.crs", "system/Observation.rs", "system/Device.rs", "system/DiagnosticReport.rs", "system/Specimen.rs"},
	vitalgate.RoleClinician: {"user/Patient.rs", "user/Observation.rs", "user/Device.rs", "user/DiagnosticReport.rs", "user/Specimen.rs"},
	vitalgate.RoleAuditor:   {"system/AuditEvent.rs"},
}

// ValidRole reports whether r is a role that API clients may have.
func ValidRole(r vitalgate.Role) bool {
	_, ok := RoleScopes[r]
	return ok
}

// GrantScopes decides the scopes of a token. requested is the space-separated scope
// parameter (empty: every scope the client is registered for); registered is the client's
// registered scopes (empty: everything its role allows). Any requested scope beyond the role
// or the registration is refused with EFORBIDDEN naming it (the token endpoint answers
// invalid_scope).
func GrantScopes(role vitalgate.Role, registered []string, requested string) ([]string, error) {
	var bounds []Scope
	for _, b := range RoleScopes[role] {
		s, _ := ParseScope(b)
		bounds = append(bounds, s)
	}
	allowed := func(s Scope) bool {
		return slices.ContainsFunc(bounds, s.Within)
	}
	var reg []Scope
	for _, r := range registered {
		s, ok := ParseScope(r)
		if !ok || !allowed(s) {
			return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "registered scope %q is beyond the client's role", r)
		}
		reg = append(reg, s)
	}
	if len(reg) == 0 {
		reg = bounds
	}
	fields := strings.Fields(requested)
	if len(fields) == 0 {
		out := make([]string, len(reg))
		for i, s := range reg {
			out[i] = s.String()
		}
		return out, nil
	}
	if len(fields) > 32 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "too many scopes requested")
	}
	var out []string
	for _, f := range fields {
		s, ok := ParseScope(f)
		if !ok {
			return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "scope %q is not a SMART resource scope this server supports", trunc(f))
		}
		if !slices.ContainsFunc(reg, s.Within) {
			return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "scope %q is beyond what this client may be granted", trunc(f))
		}
		if !slices.Contains(out, s.String()) {
			out = append(out, s.String())
		}
	}
	return out, nil
}

// ScopesAllow reports whether any of the granted scopes allows op on resource type res.
func ScopesAllow(granted []string, res string, op rune) bool {
	for _, g := range granted {
		if s, ok := ParseScope(g); ok && s.Allows(res, op) {
			return true
		}
	}
	return false
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
