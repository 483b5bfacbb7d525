package fhir

import (
	"encoding/json"
)

// Meta is the metadata of a resource.
type Meta struct {
	VersionID   string   `json:"versionId,omitempty"`
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Source      string   `json:"source,omitempty"`
	Profile     []string `json:"profile,omitempty"`
	Security    []Coding `json:"security,omitempty"`
	Tag         []Coding `json:"tag,omitempty"`
}

// Narrative is a resource's human-readable XHTML summary.
type Narrative struct {
	Status string `json:"status,omitempty"` // generated | extensions | additional | empty
	Div    string `json:"div,omitempty"`    // XHTML fragment, checked by CheckNarrative
}

// Coding is a code from a code system.
type Coding struct {
	System       string `json:"system,omitempty"`
	Version      string `json:"version,omitempty"`
	Code         string `json:"code,omitempty"`
	Display      string `json:"display,omitempty"`
	UserSelected *bool  `json:"userSelected,omitempty"`
}

// CodeableConcept is a concept given by codings and/or text.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Reference refers to another resource ("Patient/123" or, inside a Bundle, "urn:uuid:...").
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Identifier is a business identifier.
type Identifier struct {
	Use      string           `json:"use,omitempty"`
	Type     *CodeableConcept `json:"type,omitempty"`
	System   string           `json:"system,omitempty"`
	Value    string           `json:"value,omitempty"`
	Period   *Period          `json:"period,omitempty"`
	Assigner *Reference       `json:"assigner,omitempty"`
}

// Quantity is a measured amount. Value is kept as written (json.Number) so that decimals
// round-trip exactly.
type Quantity struct {
	Value      json.Number `json:"value,omitempty"`
	Comparator string      `json:"comparator,omitempty"` // < | <= | >= | >
	Unit       string      `json:"unit,omitempty"`       // human-readable unit
	System     string      `json:"system,omitempty"`     // must be vitals.SystemUCUM when Value is set
	Code       string      `json:"code,omitempty"`       // UCUM code
}

// Range is a low and high Quantity.
type Range struct {
	Low  *Quantity `json:"low,omitempty"`
	High *Quantity `json:"high,omitempty"`
}

// Period is a time interval; either end may be open.
type Period struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

// Annotation is a note.
type Annotation struct {
	AuthorReference *Reference `json:"authorReference,omitempty"`
	AuthorString    string     `json:"authorString,omitempty"`
	Time            string     `json:"time,omitempty"`
	Text            string     `json:"text,omitempty"`
}

// ReferenceRange is a guide for interpreting an observation value.
type ReferenceRange struct {
	Low       *Quantity         `json:"low,omitempty"`
	High      *Quantity         `json:"high,omitempty"`
	Type      *CodeableConcept  `json:"type,omitempty"`
	AppliesTo []CodeableConcept `json:"appliesTo,omitempty"`
	Age       *Range            `json:"age,omitempty"`
	Text      string            `json:"text,omitempty"`
}

// Value holds an Observation's or Component's value[x]; at most one field is set.
type Value struct {
	ValueQuantity        *Quantity        `json:"valueQuantity,omitempty"`
	ValueCodeableConcept *CodeableConcept `json:"valueCodeableConcept,omitempty"`
	ValueString          string           `json:"valueString,omitempty"`
	ValueBoolean         *bool            `json:"valueBoolean,omitempty"`
	ValueInteger         *int32           `json:"valueInteger,omitempty"`
	ValueDateTime        string           `json:"valueDateTime,omitempty"`
	ValuePeriod          *Period          `json:"valuePeriod,omitempty"`
}

// HasValue reports whether any value[x] is set.
func (v *Value) HasValue() bool {
	return v.ValueQuantity != nil || v.ValueCodeableConcept != nil || v.ValueString != "" ||
		v.ValueBoolean != nil || v.ValueInteger != nil || v.ValueDateTime != "" || v.ValuePeriod != nil
}

// Component is one component of an Observation, e.g. systolic pressure in a blood-pressure
// panel.
type Component struct {
	Code *CodeableConcept `json:"code,omitempty"`
	Value
	DataAbsentReason *CodeableConcept  `json:"dataAbsentReason,omitempty"`
	Interpretation   []CodeableConcept `json:"interpretation,omitempty"`
	ReferenceRange   []ReferenceRange  `json:"referenceRange,omitempty"`
}

// Observation is a FHIR R4 Observation, limited to the elements Vitalgate supports.
type Observation struct {
	ID                string            `json:"id,omitempty"`
	Meta              *Meta             `json:"meta,omitempty"`
	Language          string            `json:"language,omitempty"`
	Text              *Narrative        `json:"text,omitempty"`
	Identifier        []Identifier      `json:"identifier,omitempty"`
	BasedOn           []Reference       `json:"basedOn,omitempty"`
	PartOf            []Reference       `json:"partOf,omitempty"`
	Status            string            `json:"status,omitempty"`
	Category          []CodeableConcept `json:"category,omitempty"`
	Code              *CodeableConcept  `json:"code,omitempty"`
	Subject           *Reference        `json:"subject,omitempty"`
	Focus             []Reference       `json:"focus,omitempty"`
	Encounter         *Reference        `json:"encounter,omitempty"`
	EffectiveDateTime string            `json:"effectiveDateTime,omitempty"`
	EffectivePeriod   *Period           `json:"effectivePeriod,omitempty"`
	EffectiveInstant  string            `json:"effectiveInstant,omitempty"`
	Issued            string            `json:"issued,omitempty"`
	Performer         []Reference       `json:"performer,omitempty"`
	Value
	DataAbsentReason *CodeableConcept  `json:"dataAbsentReason,omitempty"`
	Interpretation   []CodeableConcept `json:"interpretation,omitempty"`
	Note             []Annotation      `json:"note,omitempty"`
	BodySite         *CodeableConcept  `json:"bodySite,omitempty"`
	Method           *CodeableConcept  `json:"method,omitempty"`
	Specimen         *Reference        `json:"specimen,omitempty"`
	Device           *Reference        `json:"device,omitempty"`
	ReferenceRange   []ReferenceRange  `json:"referenceRange,omitempty"`
	HasMember        []Reference       `json:"hasMember,omitempty"`
	DerivedFrom      []Reference       `json:"derivedFrom,omitempty"`
	Component        []Component       `json:"component,omitempty"`
}

// Bundle is a FHIR R4 Bundle: on input a batch or transaction of Observations, on output a
// batch-response or transaction-response.
type Bundle struct {
	ID        string        `json:"id,omitempty"`
	Meta      *Meta         `json:"meta,omitempty"`
	Type      string        `json:"type,omitempty"`
	Timestamp string        `json:"timestamp,omitempty"`
	Entry     []BundleEntry `json:"entry,omitempty"`
}

// BundleEntry is one entry of a Bundle.
type BundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource *Observation    `json:"resource,omitempty"`
	Request  *BundleRequest  `json:"request,omitempty"`
	Response *BundleResponse `json:"response,omitempty"`
}

// BundleRequest is what to do with an entry of a batch or transaction.
type BundleRequest struct {
	Method string `json:"method,omitempty"`
	URL    string `json:"url,omitempty"`
}

// BundleResponse is the outcome of one entry of a batch or transaction.
type BundleResponse struct {
	Status       string            `json:"status,omitempty"` // e.g. "201 Created", given by the caller
	Location     string            `json:"location,omitempty"`
	Etag         string            `json:"etag,omitempty"`
	LastModified string            `json:"lastModified,omitempty"`
	Outcome      *OperationOutcome `json:"outcome,omitempty"`
}
