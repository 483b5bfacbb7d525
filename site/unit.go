package site

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// Care units: the wards of a site. A shared (identified) device placed in a unit writes only
// for the patients admitted to that unit; the rule is checked where every device write is
// bound to its patient (package ingest), against what these acts record.

// openSite returns site if it exists and is not erased.
func (a *Admin) openSite(ctx context.Context, site string) error {
	if err := vitalgate.CheckSiteID(site); err != nil {
		return err
	}
	s, err := a.Store.Site(ctx, site)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "site", "no site %q is registered; add it with site add", site)
	} else if err != nil {
		return err
	}
	return vitalgate.CheckSiteOpen(s)
}

// AddUnit registers care unit id, named name, of site. Errors: EINVALID, ENOTFOUND (the
// site), ECONFLICT (the unit exists).
func (a *Admin) AddUnit(ctx context.Context, site, id, name string) (vitalgate.CareUnit, error) {
	if err := vitalgate.CheckUnitID(id); err != nil {
		return vitalgate.CareUnit{}, err
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) || strings.ContainsFunc(name, isControl) {
		return vitalgate.CareUnit{}, vitalgate.FieldErrorf(vitalgate.EINVALID, "name", "a care unit name is 1 to %d printable characters", MaxNameLen)
	}
	if err := a.openSite(ctx, site); err != nil {
		return vitalgate.CareUnit{}, err
	}
	u := vitalgate.CareUnit{Site: site, ID: id, Name: name, CreatedAt: a.now()}
	if err := a.Store.CreateUnit(ctx, u, a.entry(audit.ActionCreate, "unit-add", site, "Location/"+id, "care unit added")); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return vitalgate.CareUnit{}, vitalgate.Errorf(vitalgate.ECONFLICT, "site %q has a care unit %q already", site, id)
		}
		return vitalgate.CareUnit{}, err
	}
	return u, nil
}

// Units returns the care units of site.
func (a *Admin) Units(ctx context.Context, site string) ([]vitalgate.CareUnit, error) {
	if err := vitalgate.CheckSiteID(site); err != nil {
		return nil, err
	}
	return a.Store.Units(ctx, site)
}

// PlaceDevice places device deviceID in care unit unit of its site, or takes it out of any
// unit when unit is empty. Errors: ENOTFOUND (the device, or the unit in its site).
func (a *Admin) PlaceDevice(ctx context.Context, deviceID, unit string) error {
	if unit != "" {
		if err := vitalgate.CheckUnitID(unit); err != nil {
			return err
		}
	}
	d, err := a.Store.Device(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "device", "no device %q is registered (vitalgate device list)", deviceID)
	} else if err != nil {
		return err
	}
	desc := "device placed in care unit " + unit
	if unit == "" {
		desc = "device taken out of its care unit"
	}
	return a.Store.SetDeviceUnit(ctx, deviceID, unit, a.entry(audit.ActionUpdate, "device-unit", d.Site, "Device/"+deviceID, desc))
}

// Admit admits patientID of site to care unit unit (replacing an earlier admission), audited
// with the patient's blind index only. Errors: ENOTFOUND (the site or unit).
func (a *Admin) Admit(ctx context.Context, site, patientID, unit string) error {
	idx, err := a.patient(ctx, site, patientID)
	if err != nil {
		return err
	}
	if err := vitalgate.CheckUnitID(unit); err != nil {
		return err
	}
	return a.Store.AdmitPatient(ctx, site, idx, unit, a.now(), a.patientEntry(audit.ActionUpdate, "patient-admit", site, idx, "admitted to care unit "+unit))
}

// Discharge ends the admission of patientID of site. ENOTFOUND when it is admitted nowhere.
func (a *Admin) Discharge(ctx context.Context, site, patientID string) error {
	idx, err := a.patient(ctx, site, patientID)
	if err != nil {
		return err
	}
	return a.Store.DischargePatient(ctx, site, idx, a.patientEntry(audit.ActionUpdate, "patient-discharge", site, idx, "discharged from its care unit"))
}

// patient returns the blind index of patientID within an open site.
func (a *Admin) patient(ctx context.Context, site, patientID string) ([]byte, error) {
	if a.Index == nil {
		return nil, errors.New("site: admissions need the patient index (Admin.Index)")
	}
	if patientID == "" {
		return nil, vitalgate.FieldErrorf(vitalgate.EINVALID, "patient", "give the patient's id")
	}
	if err := a.openSite(ctx, site); err != nil {
		return nil, err
	}
	return a.Index(site, patientID), nil
}

func (a *Admin) patientEntry(action, subtype, site string, idx []byte, desc string) []byte {
	return audit.Entry{Time: a.now(), Action: action, Type: "admin", Subtype: subtype,
		AgentType: audit.AgentOperator, AgentID: a.Operator, Outcome: audit.OutcomeSuccess,
		PatientIndex: audit.PatientIndex(idx), OutcomeDesc: desc, Site: site}.Marshal()
}
