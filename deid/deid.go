// Package deid de-identifies FHIR R4 resources under the HIPAA Safe Harbor method (45 CFR
// 164.514(b)(2)): the 18 kinds of identifiers of the patient and of the patient's
// relatives, employers and household are removed or generalized, and identifiers are
// replaced by random codes kept in a re-identification mapping ([Pseudonyms]; 45 CFR
// 164.514(c)).
//
// The transform works on the JSON of any resource type, by element name, and keeps only
// what it knows to be safe; every other string is dropped:
//
//   - names (HumanName, and every other "name" and "alias"), telecom (phone, fax, e-mail,
//     URLs), contacts (relatives), photos and attachments, device identifiers (udiCarrier,
//     serial, lot, model and part numbers, distinctIdentifier, deviceName), contained
//     resources: removed.
//   - free text: narrative (text.div), every "text", "note", "comment", "description" and
//     "patientInstruction", Reference.display, and the display of anything but a coded
//     value (Coding with system and code): removed.
//   - addresses: only state and country kept (no line, city, district or postal code;
//     Safe Harbor allows three ZIP digits for some areas, this transform keeps none).
//   - dates: every date, dateTime and instant reduced to its year, or with
//     [Options.ShiftDates] moved by a random number of days (±1 to 365) that is the same for
//     every resource of one patient and kept in the mapping. A birth date that makes the
//     patient 90 or older is removed and replaced by an extension saying "90 or older"
//     ([AgeOver89URL]); ages (Age, or any quantity in years) over 89 become "≥ 90".
//   - resource ids, references, identifiers (MRN, SSN, account, licence, device, ...) and
//     urn:uuid full URLs: replaced by random codes from the mapping, consistently, so
//     references between exported resources still resolve. Identifiers keep their type
//     coding; their system becomes [IdentifierSystem].
//   - strings kept: codes, code systems, units, profiles, extension URLs and statuses
//     (resourceType, status, code, system, unit, use, gender, ...), and numbers and
//     booleans (clinical values).
//
// The package is pure: no I/O; randomness comes from [Options.Rand].
package deid

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// IdentifierSystem is the system of every identifier the transform writes: its value is a
// code from the mapping.
const IdentifierSystem = "urn:vitalgate:deid:pseudonym"

// AgeOver89URL is the extension that replaces the birth date of a patient aged 90 or over
// (45 CFR 164.514(b)(2)(i)(C): such ages are aggregated into one category, 90 or older).
const AgeOver89URL = "urn:vitalgate:deid:age-90-or-older"

// Options configure a Transformer.
type Options struct {
	// ShiftDates moves dates by the patient's random offset instead of cutting them to the
	// year. Shifted dates are not Safe Harbor (which keeps only years); use them when the
	// recipient needs intervals and an expert determination covers it.
	ShiftDates bool
	// Now is the reference for ages (who is 90 or older); required.
	Now time.Time
	// Rand is the source of codes and offsets; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Transformer de-identifies resources with one mapping. It is not safe for concurrent use.
type Transformer struct {
	p   *Pseudonyms
	opt Options
}

// New returns a Transformer drawing codes from (and adding them to) p.
func New(p *Pseudonyms, opt Options) *Transformer {
	p.rand = opt.Rand
	return &Transformer{p: p, opt: opt}
}

// ErrNotResource is returned for input that is not a JSON object with a resourceType.
var ErrNotResource = errors.New("deid: not a FHIR resource (a JSON object with a resourceType)")

// Resource returns the de-identified form of one resource (JSON in, compact JSON out).
func (t *Transformer) Resource(body []byte) ([]byte, error) {
	if t.opt.Now.IsZero() {
		return nil, errors.New("deid: Options.Now is required (the reference date for ages)")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotResource, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrNotResource)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, ErrNotResource
	}
	if rt, _ := m["resourceType"].(string); !resourceTypePattern.MatchString(rt) {
		return nil, ErrNotResource
	}
	out, err := t.resource(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("deid: encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

var (
	resourceTypePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)
	idPattern           = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	// relativeRef is Type/id, optionally with a version, possibly after a base URL.
	relativeRef = regexp.MustCompile(`(?:^|/)([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$`)
	uuidURN     = regexp.MustCompile(`^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	// fhirDate matches FHIR date, dateTime and instant values.
	fhirDate = regexp.MustCompile(`^([0-9]{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?$`)
	// dateKey names the elements that hold dates.
	dateKey = regexp.MustCompile(`(?i)(date|datetime|instant)$|^(start|end|issued|lastUpdated|recorded|authoredOn|created|timestamp|time|when|occurrence)$`)
)

// resCtx is what the walk knows about the resource it is in.
type resCtx struct {
	subject string // the patient (or the resource itself) whose date offset applies
}

// resource de-identifies one resource object (top level or a Bundle entry's).
func (t *Transformer) resource(m map[string]any) (map[string]any, error) {
	rt, _ := m["resourceType"].(string)
	id, _ := m["id"].(string)
	rc := &resCtx{subject: subjectOf(rt, id, m)}
	out, err := t.object(m, rc, true)
	if err != nil {
		return nil, err
	}
	out["resourceType"] = rt
	if rt == "Patient" {
		if err := t.groupOldAge(m, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// subjectOf returns the key of the patient a resource is about: itself for a Patient, else
// its subject or patient reference, else the resource itself.
func subjectOf(rt, id string, m map[string]any) string {
	if rt == "Patient" {
		return "Patient/" + id
	}
	for _, k := range []string{"subject", "patient", "beneficiary"} {
		if ref, ok := m[k].(map[string]any); ok {
			if s, ok := ref["reference"].(string); ok {
				if mm := relativeRef.FindStringSubmatch(s); mm != nil && mm[1] == "Patient" {
					return "Patient/" + mm[2]
				}
			}
		}
	}
	return rt + "/" + id
}

// dropped are the elements removed wherever they appear (see the package documentation).
var dropped = map[string]bool{
	"text": true, "div": true, "note": true, "comment": true, "description": true, "patientInstruction": true,
	"display": true, "name": true, "alias": true, "telecom": true, "contact": true, "photo": true,
	"udiCarrier": true, "serialNumber": true, "lotNumber": true, "distinctIdentifier": true, "modelNumber": true,
	"partNumber": true, "deviceName": true, "contained": true, "presentedForm": true, "valueAttachment": true,
	"content": true, "image": true, "implicitRules": true, "response": true,
}

// kept are the elements whose string values are kept: codes, code systems, units,
// canonical URLs of definitions, statuses.
var kept = map[string]bool{
	"resourceType": true, "status": true, "code": true, "system": true, "unit": true, "use": true, "gender": true,
	"comparator": true, "version": true, "profile": true, "language": true, "intent": true, "priority": true,
	"category": true, "operationalStatus": true, "color": true, "type": true, "state": true, "mode": true,
	"kind": true, "periodUnit": true, "durationUnit": true, "dayOfWeek": true, "severity": true,
	"criticality": true, "contentType": true, "method": true, "valueCode": true, "fhirVersion": true,
}

// object de-identifies the elements of one JSON object. root is true for a resource's
// own object.
func (t *Transformer) object(m map[string]any, rc *resCtx, root bool) (map[string]any, error) {
	out := make(map[string]any, len(m))
	coded := isString(m["system"]) && isString(m["code"]) && m["reference"] == nil
	for k, v := range m {
		var nv any
		var err error
		switch {
		case k == "resourceType":
			if root {
				out[k] = v
			}
			continue
		case k == "id":
			if !root {
				continue // element ids are internal and may carry anything
			}
			nv, err = t.resourceID(m, v)
		case k == "display" && coded:
			if s, ok := v.(string); ok {
				nv = s
			}
		case dropped[k] || strings.HasPrefix(k, "_") && dropped[k[1:]]:
			continue
		case k == "identifier" || strings.HasSuffix(k, "Identifier"):
			nv, err = t.identifiers(v)
		case k == "reference":
			nv, err = t.reference(v)
		case k == "fullUrl":
			nv, err = t.reference(v)
		case k == "url":
			nv, err = t.url(m, v)
		case k == "address":
			nv = generalizeAddress(v)
		case k == "meta":
			nv, err = t.meta(v)
		case k == "resource" && !root:
			if r, ok := v.(map[string]any); ok && isString(r["resourceType"]) {
				nv, err = t.resource(r)
			}
		case strings.HasSuffix(k, "Age"):
			nv, err = t.value(k, v, rc)
			if q, ok := nv.(map[string]any); ok {
				nv = capAge(q, true)
			}
		default:
			nv, err = t.value(k, v, rc)
		}
		if err != nil {
			return nil, err
		}
		if nv != nil {
			out[k] = nv
		}
	}
	if q := capAge(out, false); q != nil {
		out = q
	}
	if isExtension(m) && !hasValue(out) {
		return nil, nil // an extension whose value was removed says nothing
	}
	return out, nil
}

// value de-identifies the value of element k: objects and arrays recursively, strings by
// the element's kind, numbers and booleans as they are.
func (t *Transformer) value(k string, v any, rc *resCtx) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		o, err := t.object(x, rc, false)
		if err != nil || len(o) == 0 {
			return nil, err
		}
		return o, nil
	case []any:
		var out []any
		for _, e := range x {
			nv, err := t.value(k, e, rc)
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out = append(out, nv)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case string:
		switch {
		case dateKey.MatchString(k):
			return t.date(x, rc)
		case kept[k] || kept[strings.TrimPrefix(k, "_")]:
			return x, nil
		case k == "data" || k == "valueSampledData":
			// SampledData.data: the decimal samples of a waveform, nothing else.
			if sampledData.MatchString(x) {
				return x, nil
			}
		}
		return nil, nil
	case json.Number, bool:
		return x, nil
	}
	return nil, nil
}

var sampledData = regexp.MustCompile(`^(?:[-+0-9.eE]+|E|U|L)(?: (?:[-+0-9.eE]+|E|U|L))*$`)

// resourceID replaces the resource's own id by its code.
func (t *Transformer) resourceID(m map[string]any, v any) (any, error) {
	id, ok := v.(string)
	rt, _ := m["resourceType"].(string)
	if !ok || !idPattern.MatchString(id) {
		return nil, nil
	}
	return t.p.resource(rt, id)
}

// identifiers replaces each Identifier by {type, system: IdentifierSystem, value: code}.
func (t *Transformer) identifiers(v any) (any, error) {
	one := func(e any) (any, error) {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, nil
		}
		val, ok := m["value"].(string)
		if !ok || val == "" {
			return nil, nil
		}
		system, _ := m["system"].(string)
		code, err := t.p.identifier(system, val)
		if err != nil {
			return nil, err
		}
		out := map[string]any{"system": IdentifierSystem, "value": code}
		if ty, ok := m["type"].(map[string]any); ok {
			if c, err := t.object(ty, &resCtx{}, false); err == nil && len(c) > 0 {
				out["type"] = c
			}
		}
		return out, nil
	}
	switch x := v.(type) {
	case []any:
		var out []any
		for _, e := range x {
			nv, err := one(e)
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out = append(out, nv)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case map[string]any:
		return one(x)
	}
	return nil, nil
}

// reference rewrites a reference (or a Bundle fullUrl): Type/id and URL/Type/id become
// Type/code, urn:uuid:X a random UUID; anything else (contained #refs, other URLs) is
// removed.
func (t *Transformer) reference(v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, nil
	}
	if uuidURN.MatchString(s) {
		return t.p.uuid(strings.ToLower(s))
	}
	m := relativeRef.FindStringSubmatch(s)
	if m == nil {
		return nil, nil
	}
	code, err := t.p.resource(m[1], m[2])
	if err != nil {
		return nil, err
	}
	return m[1] + "/" + code, nil
}

// url keeps an extension's url (the canonical URL of its definition) and removes every
// other url (Attachment, Device, Endpoint, Bundle request URLs, ...).
func (t *Transformer) url(m map[string]any, v any) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, nil
	}
	if isExtension(m) {
		return s, nil
	}
	if _, isRequest := m["method"]; isRequest {
		return t.reference(s) // Bundle.entry.request.url: Type/id only
	}
	return nil, nil
}

// isExtension reports whether m looks like an Extension: a url and a value[x] or nested
// extensions.
func isExtension(m map[string]any) bool {
	if !isString(m["url"]) {
		return false
	}
	if _, ok := m["extension"]; ok {
		return true
	}
	return hasValue(m)
}

func hasValue(m map[string]any) bool {
	for k := range m {
		if strings.HasPrefix(k, "value") || k == "extension" {
			return true
		}
	}
	return false
}

// meta keeps profiles, security labels and tags (codes); versionId, lastUpdated and
// source go.
func (t *Transformer) meta(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil
	}
	out := map[string]any{}
	for _, k := range []string{"profile", "security", "tag"} {
		if e, ok := m[k]; ok {
			nv, err := t.value(k, e, &resCtx{})
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out[k] = nv
			}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// generalizeAddress keeps only an address's state and country (45 CFR
// 164.514(b)(2)(i)(B): no geographic subdivision smaller than a state).
func generalizeAddress(v any) any {
	one := func(e any) any {
		m, ok := e.(map[string]any)
		if !ok {
			return nil
		}
		out := map[string]any{}
		for _, k := range []string{"state", "country"} {
			if s, ok := m[k].(string); ok && s != "" {
				out[k] = s
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	switch x := v.(type) {
	case []any:
		var out []any
		for _, e := range x {
			if nv := one(e); nv != nil {
				out = append(out, nv)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case map[string]any:
		return one(x)
	}
	return nil
}

// date reduces a date to its year, or shifts it by the subject's offset. Anything that is
// not a valid FHIR date, dateTime or instant is removed.
func (t *Transformer) date(v any, rc *resCtx) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, nil
	}
	m := fhirDate.FindStringSubmatch(s)
	if m == nil {
		return nil, nil
	}
	if !t.opt.ShiftDates || m[2] == "" {
		return m[1], nil // the year alone (a year is also what shifting keeps of a year-only date)
	}
	days, err := t.p.offset(rc.subject)
	if err != nil {
		return nil, err
	}
	switch {
	case m[3] == "": // YYYY-MM: shift the first of the month
		d, err := time.Parse("2006-01", s)
		if err != nil {
			return nil, nil
		}
		return d.AddDate(0, 0, days).Format("2006-01"), nil
	case m[4] == "": // YYYY-MM-DD
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, nil // 2023-02-30 and the like
		}
		return d.AddDate(0, 0, days).Format(time.DateOnly), nil
	}
	layout := "2006-01-02T15:04:05"
	if m[7] != "" {
		layout += "." + strings.Repeat("0", len(m[7])-1)
	}
	switch {
	case m[8] == "":
	case m[8] == "Z":
		layout += "Z07:00"
	default:
		layout += "-07:00"
	}
	d, err := time.Parse(layout, s)
	if err != nil {
		return nil, nil
	}
	return d.AddDate(0, 0, days).Format(layout), nil
}

// groupOldAge replaces the birth date of a patient aged 90 or older with the
// AgeOver89URL extension. It judges by year, so the grouping errs on the safe side, and by
// the shifted birth date too, so that a shift never shows an age over 89 either.
func (t *Transformer) groupOldAge(in, out map[string]any) error {
	old := false
	for _, v := range []any{in["birthDate"], out["birthDate"]} {
		bd, _ := v.(string)
		m := fhirDate.FindStringSubmatch(bd)
		if m == nil {
			continue
		}
		var year int
		if _, err := fmt.Sscanf(m[1], "%d", &year); err == nil && t.opt.Now.Year()-year >= 90 {
			old = true
		}
	}
	if !old {
		return nil
	}
	delete(out, "birthDate")
	delete(out, "_birthDate")
	ext, _ := out["extension"].([]any)
	out["extension"] = append(ext, map[string]any{"url": AgeOver89URL, "valueBoolean": true})
	return nil
}

// yearUnits are the units of a quantity in years (UCUM "a", and the words).
var yearUnits = map[string]bool{"a": true, "yr": true, "yrs": true, "year": true, "years": true, "Years": true, "Year": true}

// capAge turns a quantity in years above 89 into "≥ 90". It returns nil for anything that
// is not such a quantity unless always is set (then q itself).
func capAge(q map[string]any, always bool) map[string]any {
	n, ok := q["value"].(json.Number)
	unit, _ := q["unit"].(string)
	code, _ := q["code"].(string)
	if !ok || !(yearUnits[unit] || yearUnits[code]) {
		if always {
			return q
		}
		return nil
	}
	f, err := n.Float64()
	if err != nil || f <= 89 {
		if always {
			return q
		}
		return nil
	}
	q["value"] = json.Number("90")
	q["comparator"] = ">="
	return q
}

func isString(v any) bool { _, ok := v.(string); return ok }
