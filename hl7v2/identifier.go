package hl7v2

import (
	"net/url"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vitalgate/vitalgate"
)

// HD is an HL7 hierarchic designator (MSH-3, MSH-4, the assigning authority CX.4).
type HD struct {
	Namespace       string // HD.1 namespace id, a local name such as "Imaginary Hospital"
	UniversalID     string // HD.2 universal id, e.g. an OID
	UniversalIDType string // HD.3 universal id type: ISO, UUID, URI, EUI-64 ...
}

// AuthorityTable maps the assigning authorities an operator knows by name (an HD namespace
// id, or a universal id given without a type) to the FHIR identifier systems they stand for,
// e.g. "Imaginary Hospital" → "urn:oid:1.3.4.565" or "MRN" → "https://hospital.example/mrn".
type AuthorityTable map[string]string

// LegacyAuthorityPrefix is the identifier system prefix of an assigning authority that
// neither a universal id type nor the operator's table maps: the authority is appended
// path-escaped (AuthoritySystemFallback).
const LegacyAuthorityPrefix = "urn:vitalgate:hl7-authority:"

// AuthoritySystemFallback returns LegacyAuthorityPrefix + the path-escaped authority: the
// system under which a Patient identifier of an otherwise unmapped authority is registered.
func AuthoritySystemFallback(authority string) string {
	return LegacyAuthorityPrefix + url.PathEscape(authority)
}

// oidPattern and uuidPattern are the forms FHIR's oid and uuid types allow.
var (
	oidPattern  = regexp.MustCompile(`^[0-2](\.(0|[1-9][0-9]*))+$`)
	uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// IdentifierSystem returns the FHIR Identifier.system of an identifier whose assigning
// authority is hd (CX.4 of a CX: PID-3, and the same for lab and imaging identifiers),
// following the HL7 v2-to-FHIR mapping:
//   - a universal id of type ISO that is an OID → "urn:oid:<id>"; UUID that is a UUID →
//     "urn:uuid:<id>" (lower case);
//     URI or URL (valid UTF-8, no space) → the id itself;
//   - otherwise the namespace id, else the bare universal id, through table;
//   - otherwise AuthoritySystemFallback of that authority.
//
// It returns "" when hd names no authority at all. It is pure: the same input gives the same
// system.
func IdentifierSystem(hd HD, table AuthorityTable) string {
	ns, uid := strings.TrimSpace(hd.Namespace), strings.TrimSpace(hd.UniversalID)
	if uid != "" {
		switch strings.ToUpper(strings.TrimSpace(hd.UniversalIDType)) {
		case "ISO":
			if oid := strings.TrimPrefix(uid, "urn:oid:"); oidPattern.MatchString(oid) {
				return "urn:oid:" + oid
			}
		case "UUID":
			if u := strings.ToLower(strings.TrimPrefix(uid, "urn:uuid:")); uuidPattern.MatchString(u) {
				return "urn:uuid:" + u
			}
		case "URI", "URL":
			if utf8.ValidString(uid) && !strings.ContainsFunc(uid, unicode.IsSpace) && !strings.ContainsFunc(uid, unicode.IsControl) {
				return uid
			}
		}
		// A universal id that is not what its type says is an authority by name: through
		// the table, else path-escaped (never an invalid urn:oid or a system that is not
		// valid UTF-8).
	}
	for _, name := range []string{ns, uid} {
		if name == "" {
			continue
		}
		if sys, ok := table[name]; ok && sys != "" {
			return sys
		}
	}
	if ns != "" {
		return AuthoritySystemFallback(ns)
	}
	if uid != "" {
		return AuthoritySystemFallback(uid)
	}
	return ""
}

// String returns the table as NAMESPACE=SYSTEM pairs (flag.Value).
func (t AuthorityTable) String() string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + t[k])
	}
	return b.String()
}

// Set adds one NAMESPACE=SYSTEM pair (flag.Value, for a repeatable --hl7-authority): the
// system must be an absolute URI (urn:, http: or https:). It returns an EINVALID error
// otherwise, or when the namespace is given twice.
func (t AuthorityTable) Set(pair string) error {
	ns, sys, ok := strings.Cut(pair, "=")
	ns, sys = strings.TrimSpace(ns), strings.TrimSpace(sys)
	u, err := url.Parse(sys)
	switch {
	case !ok || ns == "":
		return vitalgate.Errorf(vitalgate.EINVALID, "an HL7 authority mapping is NAMESPACE=SYSTEM")
	case err != nil || !(u.Scheme == "urn" || u.Scheme == "http" || u.Scheme == "https") || u.Opaque == "" && u.Host == "":
		return vitalgate.Errorf(vitalgate.EINVALID, "the system of HL7 authority %q must be an absolute URI such as urn:oid:1.2.3.4", ns)
	}
	if _, dup := t[ns]; dup {
		return vitalgate.Errorf(vitalgate.EINVALID, "HL7 authority %q is mapped twice", ns)
	}
	t[ns] = sys
	return nil
}
