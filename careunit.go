package vitalgate

import (
	"context"
	"time"
)

// CareUnit is a ward or department of a site (an ICU, an emergency department). A shared
// (identified) device placed in a unit writes only for the patients admitted to it, so a
// glucose meter of one ward cannot file a reading under a patient of another ward of the
// same hospital.
type CareUnit struct {
	Site      string
	ID        string
	Name      string
	CreatedAt time.Time
}

// CheckUnitID reports whether id can name a care unit: the same form as a site id.
func CheckUnitID(id string) error {
	if !siteIDPattern.MatchString(id) {
		return FieldErrorf(EINVALID, "unit", "a care unit id is 1 to 63 lower-case letters, digits or '-'")
	}
	return nil
}

// CareUnitStore persists care units, the unit each device is placed in and the unit each
// patient is admitted to (by blind index). Trailing audit entries are appended in the same
// transaction as the write.
type CareUnitStore interface {
	// CreateUnit registers a care unit of a site. ECONFLICT if the site has a unit of that id.
	CreateUnit(ctx context.Context, u CareUnit, audit ...[]byte) error
	// Units returns the care units of site, ordered by id.
	Units(ctx context.Context, site string) ([]CareUnit, error)
	// SetDeviceUnit places a device in unit of its site, or takes it out of any unit when
	// unit is empty. ENOTFOUND when the device or (for a non-empty unit) the unit of the
	// device's site does not exist.
	SetDeviceUnit(ctx context.Context, deviceID, unit string, audit ...[]byte) error
	// AdmitPatient admits the patient of site to unit, replacing an earlier admission.
	// ENOTFOUND when the unit does not exist in the site.
	AdmitPatient(ctx context.Context, site string, patientIndex []byte, unit string, at time.Time, audit ...[]byte) error
	// DischargePatient ends the patient's admission. ENOTFOUND when it is admitted nowhere.
	DischargePatient(ctx context.Context, site string, patientIndex []byte, audit ...[]byte) error
	// UnitCheck returns the unit device deviceID is placed in ("" for none) and whether the
	// patient of site is admitted to that unit: one indexed read.
	UnitCheck(ctx context.Context, deviceID, site string, patientIndex []byte) (unit string, admitted bool, err error)
}
