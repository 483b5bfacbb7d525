package fhir

import (
	"encoding/json"
	"time"
)

// Device statuses (R4 value set device-status).
const (
	DeviceStatusActive         = "active"
	DeviceStatusInactive       = "inactive"
	DeviceStatusEnteredInError = "entered-in-error"
	DeviceStatusUnknown        = "unknown"
)

// Device is a FHIR R4 Device as Vitalgate returns it (GET /fhir/Device/{id}). It is output
// only: there is no decoder.
type Device struct {
	ID           string          `json:"id,omitempty"`
	Meta         *Meta           `json:"meta,omitempty"`
	Identifier   []Identifier    `json:"identifier,omitempty"`
	Status       string          `json:"status,omitempty"` // a DeviceStatus* constant
	Manufacturer string          `json:"manufacturer,omitempty"`
	ModelNumber  string          `json:"modelNumber,omitempty"`
	Version      []DeviceVersion `json:"version,omitempty"` // the software version it reported installed
	Patient      *Reference      `json:"patient,omitempty"` // "Patient/<id>"
}

// DeviceVersion is an R4 Device.version: the version of the device's software.
type DeviceVersion struct {
	Type  *CodeableConcept `json:"type,omitempty"`
	Value string           `json:"value"`
}

// MarshalJSON encodes d with resourceType first, then the elements in FHIR order.
func (d Device) MarshalJSON() ([]byte, error) {
	type plain Device
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"Device", plain(d)})
}

// Marshal returns d as compact FHIR JSON, resourceType first.
func (d *Device) Marshal() ([]byte, error) { return json.Marshal(d) }

// SetMeta sets the id, meta.versionId and meta.lastUpdated (as a FHIR instant in UTC),
// keeping the rest of meta.
func (d *Device) SetMeta(id, versionID string, lastUpdated time.Time) {
	d.ID = id
	if d.Meta == nil {
		d.Meta = &Meta{}
	}
	d.Meta.VersionID = versionID
	d.Meta.LastUpdated = lastUpdated.UTC().Format(time.RFC3339Nano)
}
