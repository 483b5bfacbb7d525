package fhir

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
)

// HumanName is a person's name.
type HumanName struct {
	Use    string   `json:"use,omitempty"` // usual | official | temp | nickname | anonymous | old | maiden
	Text   string   `json:"text,omitempty"`
	Family string   `json:"family,omitempty"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Suffix []string `json:"suffix,omitempty"`
	Period *Period  `json:"period,omitempty"`
}

// ContactPoint is a phone number, e-mail address or other way to reach someone.
type ContactPoint struct {
	System string  `json:"system,omitempty"` // phone | fax | email | pager | url | sms | other
	Value  string  `json:"value,omitempty"`
	Use    string  `json:"use,omitempty"`  // home | work | temp | old | mobile
	Rank   *int32  `json:"rank,omitempty"` // preference order, 1 = highest
	Period *Period `json:"period,omitempty"`
}

// Patient is a FHIR R4 Patient, limited to the elements Vitalgate supports (no address,
// contact, deceased[x], links or extensions).
type Patient struct {
	ID         string         `json:"id,omitempty"`
	Meta       *Meta          `json:"meta,omitempty"`
	Language   string         `json:"language,omitempty"`
	Text       *Narrative     `json:"text,omitempty"`
	Identifier []Identifier   `json:"identifier,omitempty"`
	Active     *bool          `json:"active,omitempty"`
	Name       []HumanName    `json:"name,omitempty"`
	Telecom    []ContactPoint `json:"telecom,omitempty"`
	Gender     string         `json:"gender,omitempty"`    // male | female | other | unknown
	BirthDate  string         `json:"birthDate,omitempty"` // YYYY, YYYY-MM or YYYY-MM-DD
}

// DecodePatient strictly decodes a Patient in FHIR R4 JSON with the default limits, with
// the same rules and errors as DecodeObservation (fields named e.g. "Patient.name[0].given").
// It does not validate content: call ValidatePatient.
func DecodePatient(data []byte) (*Patient, error) {
	if err := checkStrict(data, "Patient", DefaultLimits()); err != nil {
		return nil, err
	}
	var p Patient
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, vitalgate.Internal(err, "fhir: decode patient after strict pass")
	}
	return &p, nil
}

var (
	administrativeGender = set("male", "female", "other", "unknown")
	identifierUse        = set("usual", "official", "temp", "secondary", "old")
	nameUse              = set("usual", "official", "temp", "nickname", "anonymous", "old", "maiden")
	contactPointSystem   = set("phone", "fax", "email", "pager", "url", "sms", "other")
	contactPointUse      = set("home", "work", "temp", "old", "mobile")
	// An identifier system: an absolute URI (http(s) URL, urn:oid:, urn:uuid:...) without
	// whitespace or '|', so that "system|value" is unambiguous.
	identifierSystem = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*:[^\s|]+$`)
)

// ValidatePatient checks the rules that the structure alone does not and returns the first
// problem as a *vitalgate.Error naming the element: EUNPROCESSABLE for broken rules, EINVALID
// for malformed formats. A Patient needs at least one identifier with both system (an
// absolute URI without '|') and value, so that it can be found by a blind index; gender, if
// given, must be male, female, other or unknown; birthDate, if given, must be a date (YYYY,
// YYYY-MM or YYYY-MM-DD) not after now (allowing MaxClockSkew and time zones); identifier,
// name and telecom uses and systems must be in their R4 value sets; a telecom with a value
// needs a system (cpt-2) and rank must be at least 1; the narrative must pass
// CheckNarrative. References may not be urn:uuid.
func ValidatePatient(pt *Patient, now time.Time) error {
	v := validator{now: now}
	const p = "Patient"
	if pt == nil {
		return unproc(p, "a resource is required")
	}
	if err := v.resource(pt.ID, pt.Meta, pt.Text, p); err != nil {
		return err
	}
	indexable := false
	for i := range pt.Identifier {
		id := &pt.Identifier[i]
		f := p + ".identifier[" + strconv.Itoa(i) + "]"
		if id.Use != "" && !identifierUse[id.Use] {
			return unproc(f+".use", "identifier use must be usual, official, temp, secondary or old")
		}
		if id.System != "" && !identifierSystem.MatchString(id.System) {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, f+".system", "identifier system must be an absolute URI without spaces or '|'")
		}
		if err := v.identifier(id, f); err != nil {
			return err
		}
		if id.System != "" && id.Value != "" {
			indexable = true
		}
	}
	if !indexable {
		return unproc(p+".identifier", "at least one identifier with a system and a value is required")
	}
	for i := range pt.Name {
		n := &pt.Name[i]
		f := p + ".name[" + strconv.Itoa(i) + "]"
		if n.Use != "" && !nameUse[n.Use] {
			return unproc(f+".use", "name use must be usual, official, temp, nickname, anonymous, old or maiden")
		}
		if n.Period != nil {
			if err := v.period(n.Period, f+".period", false); err != nil {
				return err
			}
		}
	}
	for i := range pt.Telecom {
		c := &pt.Telecom[i]
		f := p + ".telecom[" + strconv.Itoa(i) + "]"
		if c.System != "" && !contactPointSystem[c.System] {
			return unproc(f+".system", "telecom system must be phone, fax, email, pager, url, sms or other")
		}
		if c.Value != "" && c.System == "" {
			return unproc(f+".system", "a telecom with a value needs a system")
		}
		if c.Use != "" && !contactPointUse[c.Use] {
			return unproc(f+".use", "telecom use must be home, work, temp, old or mobile")
		}
		if c.Rank != nil && *c.Rank < 1 {
			return unproc(f+".rank", "rank must be 1 or more")
		}
		if c.Period != nil {
			if err := v.period(c.Period, f+".period", false); err != nil {
				return err
			}
		}
	}
	if pt.Gender != "" && !administrativeGender[pt.Gender] {
		return unproc(p+".gender", "gender must be male, female, other or unknown")
	}
	if pt.BirthDate != "" {
		t, prec, ok := parseDateTime(pt.BirthDate)
		if !ok || prec == precTime {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".birthDate", "birthDate must be a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD")
		}
		if earliest(t, prec).After(v.now.Add(MaxClockSkew)) {
			return unproc(p+".birthDate", "birthDate is in the future")
		}
	}
	return nil
}

// MarshalJSON encodes pt with resourceType first, then the elements in FHIR order.
func (pt Patient) MarshalJSON() ([]byte, error) {
	type plain Patient
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"Patient", plain(pt)})
}

// Marshal returns pt as compact FHIR JSON, resourceType first.
func (pt *Patient) Marshal() ([]byte, error) { return json.Marshal(pt) }

// SetMeta sets the server-assigned id, meta.versionId and meta.lastUpdated (as a FHIR
// instant in UTC), keeping the rest of meta.
func (pt *Patient) SetMeta(id, versionID string, lastUpdated time.Time) {
	pt.ID = id
	if pt.Meta == nil {
		pt.Meta = &Meta{}
	}
	pt.Meta.VersionID = versionID
	pt.Meta.LastUpdated = lastUpdated.UTC().Format(time.RFC3339Nano)
}

// Identifiers returns the identifiers that have both a system and a value, in order: the
// ones to blind-index (as IdentifierKey). The slice is new; the Identifier values are
// shallow copies of the Patient's.
func (pt *Patient) Identifiers() []Identifier {
	var out []Identifier
	for _, id := range pt.Identifier {
		if id.System != "" && id.Value != "" {
			out = append(out, id)
		}
	}
	return out
}

// IdentifierKey returns "system|value", the form in which an identifier is searched
// (PatientSearch.Key) and so the string to blind-index. A system accepted by ValidatePatient
// contains no '|', so the key is unambiguous.
func IdentifierKey(system, value string) string {
	return system + "|" + value
}

// hasControl reports whether s holds an ASCII control character.
func hasControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0
}
