package fhir

import (
	"errors"
	"regexp"
	"strconv"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/vitals"
)

// MaxClockSkew is how far in the future (after now) an effective or issued time may be.
const MaxClockSkew = 5 * time.Minute

// observationStatus is the R4 value set observation-status.
var observationStatus = set("registered", "preliminary", "final", "amended", "corrected",
	"cancelled", "entered-in-error", "unknown")

var (
	narrativeStatus = set("generated", "extensions", "additional", "empty")
	comparators     = set("<", "<=", ">=", ">")
	// A literal reference: Type/id, optionally versioned.
	literalRef = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}(/_history/[A-Za-z0-9\-.]{1,64})?$`)
)

// ValidateObservation checks the rules that the structure alone does not (see the package
// documentation) and returns the first problem as a *vitalgate.Error naming the element:
// EUNPROCESSABLE for broken rules, EINVALID for malformed formats (ids, dates, references).
// now is the current time; effective and issued times may be at most MaxClockSkew after it.
// References may not be urn:uuid (those are allowed only inside a Bundle: ValidateEntry).
func ValidateObservation(o *Observation, now time.Time) error {
	v := validator{now: now}
	return v.observation(o, "Observation")
}

// ValidateEntry validates the Observation of entry i of b, a Bundle from DecodeBundle, as
// ValidateObservation does, with fields named "Bundle.entry[i].resource..." and with
// urn:uuid references allowed when they match the fullUrl of an entry of b.
func ValidateEntry(b *Bundle, i int, now time.Time) error {
	p := "Bundle.entry[" + strconv.Itoa(i) + "]"
	if b == nil || i < 0 || i >= len(b.Entry) {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, p, "no such entry")
	}
	v := validator{now: now, fullURLs: map[string]bool{}}
	for _, e := range b.Entry {
		if e.FullURL != "" {
			v.fullURLs[e.FullURL] = true
		}
	}
	return v.observation(b.Entry[i].Resource, p+".resource")
}

type validator struct {
	now      time.Time
	fullURLs map[string]bool // nil outside a Bundle
}

func unproc(field, format string, args ...any) error {
	return vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, field, format, args...)
}

// at returns err with Field set to field.
func at(err error, field string) error {
	var e *vitalgate.Error
	if errors.As(err, &e) {
		c := *e
		c.Field = field
		return &c
	}
	return err
}

func (v *validator) observation(o *Observation, p string) error {
	if o == nil {
		return unproc(p, "a resource is required")
	}
	if err := v.resource(o.ID, o.Meta, o.Text, p); err != nil {
		return err
	}
	if o.Status == "" {
		return unproc(p+".status", "status is required")
	}
	if !observationStatus[o.Status] {
		return unproc(p+".status", "status must be one of registered, preliminary, final, amended, corrected, cancelled, entered-in-error, unknown")
	}
	for i := range o.Identifier {
		if err := v.identifier(&o.Identifier[i], p+".identifier["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	vital, err := v.code(o.Code, p+".code", o.ValueQuantity != nil)
	if err != nil {
		return err
	}
	if o.Subject == nil || o.Subject.Reference == "" {
		return unproc(p+".subject", "subject is required and must be a reference")
	}
	if err := v.effective(o, p); err != nil {
		return err
	}
	if o.Issued != "" {
		if err := v.dateTime(o.Issued, p+".issued", true); err != nil {
			return err
		}
	}
	// References.
	for _, s := range []struct {
		name string
		ref  *Reference
	}{{"subject", o.Subject}, {"encounter", o.Encounter}, {"specimen", o.Specimen}, {"device", o.Device}} {
		if s.ref != nil {
			if err := v.reference(s.ref, p+"."+s.name); err != nil {
				return err
			}
		}
	}
	for _, g := range []struct {
		name string
		refs []Reference
	}{
		{"basedOn", o.BasedOn}, {"partOf", o.PartOf}, {"focus", o.Focus}, {"performer", o.Performer},
		{"hasMember", o.HasMember}, {"derivedFrom", o.DerivedFrom},
	} {
		for i := range g.refs {
			if err := v.reference(&g.refs[i], p+"."+g.name+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	for i, n := range o.Note {
		f := p + ".note[" + strconv.Itoa(i) + "]"
		if n.AuthorReference != nil {
			if err := v.reference(n.AuthorReference, f+".authorReference"); err != nil {
				return err
			}
		}
		if n.Time != "" {
			if err := v.dateTime(n.Time, f+".time", false); err != nil {
				return err
			}
		}
		if n.Text == "" {
			return unproc(f+".text", "note text is required")
		}
	}
	// value[x], dataAbsentReason, component and hasMember.
	hasVal := o.HasValue()
	switch {
	case hasVal && o.DataAbsentReason != nil:
		return unproc(p+".dataAbsentReason", "dataAbsentReason is not allowed when a value is given")
	case hasVal && len(o.Component) > 0:
		return unproc(p+".component", "give either a value or components, not both")
	case hasVal && len(o.HasMember) > 0:
		return unproc(p+".hasMember", "give either a value or members, not both")
	case !hasVal && o.DataAbsentReason == nil && len(o.Component) == 0 && len(o.HasMember) == 0:
		return unproc(p+".value[x]", "a value, components, members or a dataAbsentReason is required")
	}
	if err := v.value(&o.Value, p, vital); err != nil {
		return err
	}
	if err := v.referenceRanges(o.ReferenceRange, p, vital); err != nil {
		return err
	}
	for i := range o.Component {
		if err := v.component(&o.Component[i], p+".component["+strconv.Itoa(i)+"]", o.Code); err != nil {
			return err
		}
	}
	return nil
}

// resource checks the elements every resource has: id, meta and the narrative.
func (v *validator) resource(id string, m *Meta, t *Narrative, p string) error {
	if id != "" && !idRE.MatchString(id) {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".id", "id must be 1 to 64 letters, digits, '-' or '.'")
	}
	if m != nil {
		if m.VersionID != "" && !idRE.MatchString(m.VersionID) {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".meta.versionId", "versionId must be 1 to 64 letters, digits, '-' or '.'")
		}
		if m.LastUpdated != "" {
			if _, prec, ok := parseDateTime(m.LastUpdated); !ok || prec != precTime {
				return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".meta.lastUpdated", "lastUpdated must be an instant with seconds and a time zone")
			}
		}
	}
	if t != nil {
		if !narrativeStatus[t.Status] {
			return unproc(p+".text.status", "narrative status must be generated, extensions, additional or empty")
		}
		if t.Div == "" {
			return unproc(p+".text.div", "narrative div is required")
		}
		if err := CheckNarrative(t.Div); err != nil {
			return at(err, p+".text.div")
		}
	}
	return nil
}

func (v *validator) component(c *Component, p string, parent *CodeableConcept) error {
	vital, err := v.code(c.Code, p+".code", c.ValueQuantity != nil)
	if err != nil {
		return err
	}
	hasVal := c.HasValue()
	switch {
	case hasVal && c.DataAbsentReason != nil:
		return unproc(p+".dataAbsentReason", "dataAbsentReason is not allowed when a value is given")
	case !hasVal && c.DataAbsentReason == nil:
		return unproc(p+".value[x]", "a component needs a value or a dataAbsentReason")
	}
	if hasVal && parent != nil { // obs-7: a component with the Observation's own code has no value
		for _, pc := range parent.Coding {
			for _, cc := range c.Code.Coding {
				if pc.System == cc.System && pc.Code == cc.Code {
					return unproc(p+".code", "a component with the Observation's own code may not have a value")
				}
			}
		}
	}
	if err := v.value(&c.Value, p, vital); err != nil {
		return err
	}
	return v.referenceRanges(c.ReferenceRange, p, vital)
}

// code checks a CodeableConcept naming what was observed and returns the vital sign it
// names, if any. With requireKnown (a Quantity value is given), every LOINC and MDC coding
// must be a known vital sign.
func (v *validator) code(cc *CodeableConcept, p string, requireKnown bool) (*vitals.Vital, error) {
	if cc == nil {
		return nil, unproc(p, "code is required")
	}
	if len(cc.Coding) == 0 {
		return nil, unproc(p+".coding", "code needs at least one coding")
	}
	var found *vitals.Vital
	std := false
	for i, c := range cc.Coding {
		f := p + ".coding[" + strconv.Itoa(i) + "]"
		if c.System != vitals.SystemLOINC && c.System != vitals.SystemMDC {
			continue
		}
		std = true
		if c.Code == "" {
			return nil, unproc(f+".code", "a LOINC or MDC coding needs a code")
		}
		vt, ok := vitals.Lookup(c.System, c.Code)
		if !ok {
			if requireKnown {
				return nil, unproc(f+".code", "code %s is not a supported vital sign", quoteShort(c.Code))
			}
			continue
		}
		if found != nil && found.Name != vt.Name {
			return nil, unproc(f+".code", "codings name different vital signs (%s and %s)", found.Name, vt.Name)
		}
		found = &vt
	}
	if !std {
		return nil, unproc(p+".coding", "at least one coding must be from LOINC (%s) or IEEE 11073 MDC (%s)", vitals.SystemLOINC, vitals.SystemMDC)
	}
	return found, nil
}

// value checks the value[x] of an Observation or Component at p against vital, if known.
func (v *validator) value(val *Value, p string, vital *vitals.Vital) error {
	if !val.HasValue() {
		return nil
	}
	if vital != nil && vital.Panel {
		return unproc(p+".value[x]", "%s is a panel: give its values as components or members", vital.Name)
	}
	if vital != nil && val.ValueQuantity == nil {
		return unproc(p+".value[x]", "%s must be given as valueQuantity", vital.Name)
	}
	if q := val.ValueQuantity; q != nil {
		return v.quantity(q, p+".valueQuantity", vital, true)
	}
	if val.ValueDateTime != "" {
		return v.dateTime(val.ValueDateTime, p+".valueDateTime", false)
	}
	if val.ValuePeriod != nil {
		return v.period(val.ValuePeriod, p+".valuePeriod", false)
	}
	return nil
}

func (v *validator) referenceRanges(rr []ReferenceRange, p string, vital *vitals.Vital) error {
	for i, r := range rr {
		f := p + ".referenceRange[" + strconv.Itoa(i) + "]"
		if r.Low == nil && r.High == nil && r.Text == "" {
			return unproc(f, "a reference range needs low, high or text")
		}
		if r.Low != nil {
			if err := v.quantity(r.Low, f+".low", vital, false); err != nil {
				return err
			}
		}
		if r.High != nil {
			if err := v.quantity(r.High, f+".high", vital, false); err != nil {
				return err
			}
		}
		if a := r.Age; a != nil {
			for _, q := range []struct {
				n string
				q *Quantity
			}{{"low", a.Low}, {"high", a.High}} {
				if q.q != nil {
					if err := v.quantity(q.q, f+".age."+q.n, nil, false); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// quantity checks q at p: a value, UCUM system and code, and, for a known vital sign, the
// unit (and with checkRange the plausible range).
func (v *validator) quantity(q *Quantity, p string, vital *vitals.Vital, checkRange bool) error {
	if q.Value == "" {
		return unproc(p+".value", "a quantity needs a value")
	}
	if q.System != vitals.SystemUCUM {
		return unproc(p+".system", "the unit system must be UCUM (%s)", vitals.SystemUCUM)
	}
	if q.Code == "" {
		return unproc(p+".code", "a UCUM unit code is required")
	}
	if q.Comparator != "" && !comparators[q.Comparator] {
		return unproc(p+".comparator", "comparator must be <, <=, >= or >")
	}
	f, err := strconv.ParseFloat(q.Value.String(), 64)
	if err != nil {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".value", "value is not a valid decimal")
	}
	if vital == nil || vital.Panel {
		return nil
	}
	if _, err := vital.Canonical(f, q.Code); err != nil {
		return at(err, p+".code")
	}
	if checkRange {
		if err := vital.CheckQuantity(f, q.Code); err != nil {
			return at(err, p+".value")
		}
	}
	return nil
}

func (v *validator) effective(o *Observation, p string) error {
	switch {
	case o.EffectiveDateTime != "":
		return v.dateTime(o.EffectiveDateTime, p+".effectiveDateTime", false)
	case o.EffectiveInstant != "":
		return v.dateTime(o.EffectiveInstant, p+".effectiveInstant", true)
	case o.EffectivePeriod != nil:
		return v.period(o.EffectivePeriod, p+".effectivePeriod", true)
	}
	return unproc(p+".effective[x]", "effective time is required")
}

// period checks a Period; with notFuture, neither end may be after now.
func (v *validator) period(pd *Period, p string, notFuture bool) error {
	if pd.Start == "" && pd.End == "" {
		return unproc(p, "a period needs a start or an end")
	}
	var s, e time.Time
	var sp, ep precision
	if pd.Start != "" {
		var ok bool
		if s, sp, ok = parseDateTime(pd.Start); !ok {
			return badDateTime(p + ".start")
		}
		if notFuture && earliest(s, sp).After(v.now.Add(MaxClockSkew)) {
			return unproc(p+".start", "time is in the future")
		}
	}
	if pd.End != "" {
		var ok bool
		if e, ep, ok = parseDateTime(pd.End); !ok {
			return badDateTime(p + ".end")
		}
		if notFuture && earliest(e, ep).After(v.now.Add(MaxClockSkew)) {
			return unproc(p+".end", "time is in the future")
		}
	}
	if pd.Start != "" && pd.End != "" && sp == precTime && ep == precTime && e.Before(s) {
		return unproc(p+".end", "period ends before it starts")
	}
	return nil
}

// dateTime checks a FHIR dateTime (or, with instant, a full instant) that may not be in the
// future.
func (v *validator) dateTime(s, p string, instant bool) error {
	t, prec, ok := parseDateTime(s)
	if !ok || (instant && prec != precTime) {
		return badDateTime(p)
	}
	if earliest(t, prec).After(v.now.Add(MaxClockSkew)) {
		return unproc(p, "time is in the future")
	}
	return nil
}

func badDateTime(p string) error {
	return vitalgate.FieldErrorf(vitalgate.EINVALID, p, "must be a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone")
}

func (v *validator) identifier(id *Identifier, p string) error {
	if id.Period != nil {
		if err := v.period(id.Period, p+".period", false); err != nil {
			return err
		}
	}
	if id.Assigner != nil {
		return v.reference(id.Assigner, p+".assigner")
	}
	return nil
}

// reference checks a Reference: a literal reference must be Type/id, or inside a Bundle the
// urn:uuid fullUrl of one of its entries.
func (v *validator) reference(r *Reference, p string) error {
	if r.Reference == "" {
		if r.Identifier == nil && r.Display == "" {
			return unproc(p, "a reference needs a reference, identifier or display")
		}
	} else if uuidURN.MatchString(r.Reference) {
		if v.fullURLs == nil {
			return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".reference", "urn:uuid references are only allowed inside a Bundle")
		}
		if !v.fullURLs[r.Reference] {
			return unproc(p+".reference", "urn:uuid reference matches no entry of the Bundle")
		}
	} else if !literalRef.MatchString(r.Reference) {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".reference", "reference must be Type/id (id: 1 to 64 letters, digits, '-' or '.')")
	}
	if r.Identifier != nil {
		return v.identifier(r.Identifier, p+".identifier")
	}
	return nil
}

// quoteShort quotes a short value for a message, or elides a long or odd one.
func quoteShort(s string) string {
	if len(s) > 32 || !plainValue.MatchString(s) {
		return "(value not shown)"
	}
	return strconv.Quote(s)
}

var plainValue = regexp.MustCompile(`^[A-Za-z0-9\-._:/\[\]%{}]*$`)
