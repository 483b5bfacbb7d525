package fhir

import (
	"encoding/json"
	"strings"
	"time"
)

// MarshalJSON encodes o with resourceType first, then the elements in FHIR order.
func (o Observation) MarshalJSON() ([]byte, error) {
	type plain Observation
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"Observation", plain(o)})
}

// Marshal returns o as compact FHIR JSON, resourceType first. Decimal values are written as
// they were read.
func (o *Observation) Marshal() ([]byte, error) { return json.Marshal(o) }

// SubjectID returns the id of the Patient the Observation is about, if subject is a
// well-formed "Patient/<id>" reference.
func (o *Observation) SubjectID() (string, bool) { return refID(o.Subject, "Patient") }

// DeviceID returns the id of the Device that made the Observation, if device is a
// well-formed "Device/<id>" reference.
func (o *Observation) DeviceID() (string, bool) { return refID(o.Device, "Device") }

func refID(r *Reference, typ string) (string, bool) {
	if r == nil {
		return "", false
	}
	id, ok := strings.CutPrefix(r.Reference, typ+"/")
	if !ok || !idRE.MatchString(id) {
		return "", false
	}
	return id, true
}

// Codes returns the codings of the Observation's code (nil if it has none). The slice is
// the Observation's own: do not modify it.
func (o *Observation) Codes() []Coding {
	if o.Code == nil {
		return nil
	}
	return o.Code.Coding
}

// EffectiveTime returns the instant to index the Observation by: effectiveDateTime or
// effectiveInstant, or the start (else the end) of effectivePeriod. A partial date (year,
// month or day) counts as its first instant in UTC. It reports false if there is no
// well-formed effective time.
func (o *Observation) EffectiveTime() (time.Time, bool) {
	s := o.EffectiveDateTime
	if o.EffectiveInstant != "" {
		s = o.EffectiveInstant
	}
	if p := o.EffectivePeriod; p != nil {
		s = p.Start
		if s == "" {
			s = p.End
		}
	}
	t, _, ok := parseDateTime(s)
	return t, ok
}

// SetMeta sets the server-assigned id, meta.versionId and meta.lastUpdated (as a FHIR
// instant in UTC), keeping the rest of meta.
func (o *Observation) SetMeta(id, versionID string, lastUpdated time.Time) {
	o.ID = id
	if o.Meta == nil {
		o.Meta = &Meta{}
	}
	o.Meta.VersionID = versionID
	o.Meta.LastUpdated = lastUpdated.UTC().Format(time.RFC3339Nano)
}
