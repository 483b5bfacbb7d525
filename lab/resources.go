package lab

import (
	"encoding/json"
	"regexp"
	"strconv"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

// DiagnosticReport is a FHIR R4 DiagnosticReport, limited to the elements the mapping
// fills. Result and Specimen refer to the Observations and Specimens by identifier (their
// server ids are assigned when they are stored).
type DiagnosticReport struct {
	ID                string                 `json:"id,omitempty"`
	Meta              *fhir.Meta             `json:"meta,omitempty"`
	Identifier        []fhir.Identifier      `json:"identifier,omitempty"`
	Status            string                 `json:"status"`
	Category          []fhir.CodeableConcept `json:"category,omitempty"`
	Code              *fhir.CodeableConcept  `json:"code"`
	Subject           *fhir.Reference        `json:"subject,omitempty"`
	EffectiveDateTime string                 `json:"effectiveDateTime,omitempty"`
	Issued            string                 `json:"issued,omitempty"`
	Specimen          []fhir.Reference       `json:"specimen,omitempty"`
	Result            []fhir.Reference       `json:"result,omitempty"`
}

// MarshalJSON encodes r with resourceType first.
func (r DiagnosticReport) MarshalJSON() ([]byte, error) {
	type plain DiagnosticReport
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"DiagnosticReport", plain(r)})
}

// Marshal returns r as compact FHIR JSON.
func (r *DiagnosticReport) Marshal() ([]byte, error) { return json.Marshal(r) }

// SpecimenCollection is Specimen.collection.
type SpecimenCollection struct {
	CollectedDateTime string                `json:"collectedDateTime,omitempty"`
	CollectedPeriod   *fhir.Period          `json:"collectedPeriod,omitempty"`
	Method            *fhir.CodeableConcept `json:"method,omitempty"`
	BodySite          *fhir.CodeableConcept `json:"bodySite,omitempty"`
}

// Specimen is a FHIR R4 Specimen, limited to the elements the mapping fills.
type Specimen struct {
	ID           string                 `json:"id,omitempty"`
	Meta         *fhir.Meta             `json:"meta,omitempty"`
	Identifier   []fhir.Identifier      `json:"identifier,omitempty"`
	Status       string                 `json:"status,omitempty"`
	Type         *fhir.CodeableConcept  `json:"type,omitempty"`
	Subject      *fhir.Reference        `json:"subject,omitempty"`
	ReceivedTime string                 `json:"receivedTime,omitempty"`
	Collection   *SpecimenCollection    `json:"collection,omitempty"`
	Condition    []fhir.CodeableConcept `json:"condition,omitempty"`
}

// MarshalJSON encodes s with resourceType first.
func (s Specimen) MarshalJSON() ([]byte, error) {
	type plain Specimen
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"Specimen", plain(s)})
}

// Marshal returns s as compact FHIR JSON.
func (s *Specimen) Marshal() ([]byte, error) { return json.Marshal(s) }

var (
	reportStatus   = map[string]bool{"registered": true, "partial": true, "preliminary": true, "final": true, "amended": true, "corrected": true, "appended": true, "cancelled": true, "entered-in-error": true, "unknown": true}
	specimenStatus = map[string]bool{"available": true, "unavailable": true, "unsatisfactory": true, "entered-in-error": true}
	// dateTimeRE is a FHIR dateTime: YYYY, YYYY-MM, YYYY-MM-DD or a time with seconds
	// (and an optional fraction) and a zone.
	dateTimeRE = regexp.MustCompile(`^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)
	instantRE  = regexp.MustCompile(`T.*(Z|[+-][0-9]{2}:[0-9]{2})$`)
	literalRef = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}$`)
)

func unproc(field, format string, args ...any) error {
	return vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, field, format, args...)
}

// Validate checks the rules of a DiagnosticReport the structure alone does not: status in
// its value set, a code with a coding or text, a subject that is a Patient reference,
// well-formed times (issued an instant), references that are literal or by identifier.
// Errors are EUNPROCESSABLE *vitalgate.Error naming the element.
func (r *DiagnosticReport) Validate() error {
	const p = "DiagnosticReport"
	if !reportStatus[r.Status] {
		return unproc(p+".status", "status is not in the diagnostic-report-status value set")
	}
	if err := checkConcept(r.Code, p+".code", true); err != nil {
		return err
	}
	if err := checkRef(r.Subject, p+".subject", true); err != nil {
		return err
	}
	if err := checkDateTime(r.EffectiveDateTime, p+".effectiveDateTime", false); err != nil {
		return err
	}
	if err := checkDateTime(r.Issued, p+".issued", true); err != nil {
		return err
	}
	for i := range r.Result {
		if err := checkRef(&r.Result[i], p+".result["+strconv.Itoa(i)+"]", true); err != nil {
			return err
		}
	}
	for i := range r.Specimen {
		if err := checkRef(&r.Specimen[i], p+".specimen["+strconv.Itoa(i)+"]", true); err != nil {
			return err
		}
	}
	return checkIdentifiers(r.Identifier, p)
}

// Validate checks the rules of a Specimen as DiagnosticReport.Validate does.
func (s *Specimen) Validate() error {
	const p = "Specimen"
	if s.Status != "" && !specimenStatus[s.Status] {
		return unproc(p+".status", "status is not in the specimen-status value set")
	}
	if s.Type != nil {
		if err := checkConcept(s.Type, p+".type", true); err != nil {
			return err
		}
	}
	if err := checkRef(s.Subject, p+".subject", true); err != nil {
		return err
	}
	if err := checkDateTime(s.ReceivedTime, p+".receivedTime", false); err != nil {
		return err
	}
	if c := s.Collection; c != nil {
		if c.CollectedDateTime != "" && c.CollectedPeriod != nil {
			return unproc(p+".collection.collected[x]", "at most one collected[x]")
		}
		if err := checkDateTime(c.CollectedDateTime, p+".collection.collectedDateTime", false); err != nil {
			return err
		}
		if pd := c.CollectedPeriod; pd != nil {
			if pd.Start == "" && pd.End == "" {
				return unproc(p+".collection.collectedPeriod", "a period needs a start or an end")
			}
			if err := checkDateTime(pd.Start, p+".collection.collectedPeriod.start", false); err != nil {
				return err
			}
			if err := checkDateTime(pd.End, p+".collection.collectedPeriod.end", false); err != nil {
				return err
			}
		}
		for _, cc := range []struct {
			n string
			c *fhir.CodeableConcept
		}{{"method", c.Method}, {"bodySite", c.BodySite}} {
			if cc.c != nil {
				if err := checkConcept(cc.c, p+".collection."+cc.n, true); err != nil {
					return err
				}
			}
		}
	}
	return checkIdentifiers(s.Identifier, p)
}

func checkConcept(cc *fhir.CodeableConcept, p string, required bool) error {
	if cc == nil {
		if required {
			return unproc(p, "a code is required")
		}
		return nil
	}
	if len(cc.Coding) == 0 && cc.Text == "" {
		return unproc(p, "a code needs a coding or text")
	}
	for i, c := range cc.Coding {
		if c.Code == "" {
			return unproc(p+".coding["+strconv.Itoa(i)+"].code", "a coding needs a code")
		}
	}
	return nil
}

func checkRef(r *fhir.Reference, p string, required bool) error {
	if r == nil {
		if required {
			return unproc(p, "a reference is required")
		}
		return nil
	}
	switch {
	case r.Reference != "" && !literalRef.MatchString(r.Reference):
		return unproc(p+".reference", "reference must be Type/id")
	case r.Reference == "" && (r.Identifier == nil || r.Identifier.System == "" || r.Identifier.Value == ""):
		return unproc(p, "a reference needs a reference or an identifier with system and value")
	}
	return nil
}

func checkDateTime(s, p string, instant bool) error {
	if s == "" {
		return nil
	}
	if !dateTimeRE.MatchString(s) || instant && !instantRE.MatchString(s) {
		return unproc(p, "must be a FHIR dateTime")
	}
	return nil
}

func checkIdentifiers(ids []fhir.Identifier, p string) error {
	for i, id := range ids {
		if id.System == "" || id.Value == "" {
			return unproc(p+".identifier["+strconv.Itoa(i)+"]", "an identifier needs a system and a value")
		}
	}
	return nil
}
