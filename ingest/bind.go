package ingest

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

// msgNotAssigned is the one answer for an observation that names a patient the device is not
// assigned to, and for an HL7 patient identifier that names no patient at all: the same
// code and text, so that a device cannot learn which identifiers exist.
const msgNotAssigned = "subject is not the patient this device is assigned to"

// errNotAssigned is the refusal of a subject (or PID-3) that is not the device's patient.
func errNotAssigned(field string) error {
	return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field, msgNotAssigned)
}

// binder ties the observations of one request to the sending device and, by their effective
// times, to the patients it was assigned to then. It remembers the assignments it has seen,
// so that a batch asks the registry once per assignment, not once per observation.
type binder struct {
	s       *Service
	dev     vitalgate.Device
	binding vitalgate.Binding
	now     time.Time
	seen    []vitalgate.Assignment
	unit    string // the care unit an identified device is placed in, once a patient was checked
}

// msgNotInSite is the one answer of an identified device's message that names a patient
// who is not a Patient of the device's site: unknown and another site's read the same.
const msgNotInSite = "subject is not a Patient of this device's site"

// resolved returns the audit description of how the patients of this request were
// resolved: empty for an assigned device (its assignment, as ever), "patient identified by
// <how>" for a device that identifies its patients.
func (b *binder) resolved(how string) string {
	if b == nil || b.binding != vitalgate.BindingIdentified {
		return ""
	}
	if b.unit != "" {
		return "patient identified by " + how + " in site " + b.dev.Site + ", admitted to its care unit " + b.unit
	}
	return "patient identified by " + how + " in site " + b.dev.Site
}

// newBinder checks that the device may send now (Registry.Sender).
func (s *Service) newBinder(ctx context.Context, deviceID string, now time.Time) (*binder, error) {
	if s.Registry == nil {
		return nil, vitalgate.Internal(errString("ingest.Service.Registry is not set"), "ingest")
	}
	d, err := s.Registry.Sender(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	binding, err := s.Registry.Binding(ctx, d)
	if err != nil {
		return nil, err
	}
	return &binder{s: s, dev: d, binding: binding, now: now}, nil
}

type errString string

func (e errString) Error() string { return string(e) }

func (s *Service) maxBackdate() time.Duration {
	if s.MaxBackdate > 0 {
		return s.MaxBackdate
	}
	return DefaultMaxBackdate
}

// assignment returns the assignment that binds data measured at t.
func (b *binder) assignment(ctx context.Context, t time.Time, path string) (vitalgate.Assignment, error) {
	for _, a := range b.seen {
		if a.Covers(t) {
			return a, nil
		}
	}
	a, err := b.s.Registry.PatientAt(ctx, b.dev.ID, t)
	switch vitalgate.ErrorCode(err) {
	case "":
	case vitalgate.EFORBIDDEN, vitalgate.ENOTFOUND:
		return a, vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, path+".effective[x]",
			"this device was assigned to no patient at the observation's time, or that assignment ended too long ago")
	default:
		return a, err
	}
	// The registry decides which assignment binds t (it may bind a reading dated slightly
	// before a device's first assignment, for clock skew); it must name a patient.
	if len(a.PatientIndex) == 0 {
		return a, vitalgate.Internal(errString("registry returned an assignment without a patient"), "ingest")
	}
	b.seen = append(b.seen, a)
	return a, nil
}

// bind applies every rule that ties a validated Observation (named path in errors) to the
// sending device and its patient: the effective time is not older than MaxBackdate; the
// patient is the one the device was assigned to at that time (PatientAt), and subject,
// subject.identifier and focus name no other; device names only the sender (and is set to
// it when absent); derivedFrom names Observations of the same patient (a reference for
// which local reports true, a member of the same transaction, is checked by the caller).
// It returns the device as bound for this observation: its PatientIndex is the patient's.
func (b *binder) bind(ctx context.Context, o *fhir.Observation, path string, local func(ref string) bool) (vitalgate.Device, error) {
	t, ok := o.EffectiveTime()
	if !ok {
		return vitalgate.Device{}, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, path+".effective[x]", "effective time is required")
	}
	if max := b.s.maxBackdate(); b.now.Sub(t) > max {
		return vitalgate.Device{}, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, path+".effective[x]",
			"the observation is older than this server accepts (%s); check the device's clock", fmtDuration(max))
	}
	var pidx, psealed []byte
	pid, ok := o.SubjectID()
	if b.binding == vitalgate.BindingIdentified {
		// A shared device: the message names its patient, who must be a Patient of the
		// device's site.
		if !ok {
			return vitalgate.Device{}, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, path+".subject",
				"subject must reference a Patient (Patient/<id>)")
		}
		idx, err := b.identify(ctx, pid, path+".subject")
		if err != nil {
			return vitalgate.Device{}, err
		}
		pidx = idx
	} else {
		a, err := b.assignment(ctx, t, path)
		if err != nil {
			return vitalgate.Device{}, err
		}
		pidx, psealed = a.PatientIndex, a.PatientSealed
		// subject: the patient of the assignment, by reference and by any identifier beside it.
		if !ok {
			return vitalgate.Device{}, vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, path+".subject",
				"subject must reference a Patient (Patient/<id>)")
		}
		if !bytes.Equal(b.s.Vault.SitePatientIndex(b.dev.Site, pid), pidx) {
			return vitalgate.Device{}, errNotAssigned(path + ".subject")
		}
	}
	if id := o.Subject.Identifier; id != nil {
		if err := b.samePatient(ctx, id, pidx, path+".subject.identifier"); err != nil {
			return vitalgate.Device{}, err
		}
	}
	// focus: this patient or this device, nothing else.
	for i, f := range o.Focus {
		fp := path + ".focus[" + strconv.Itoa(i) + "]"
		if err := b.focus(ctx, f, pidx, fp); err != nil {
			return vitalgate.Device{}, err
		}
	}
	// device: the sender, set from its certificate when absent.
	if o.Device == nil {
		o.Device = &fhir.Reference{Reference: "Device/" + b.dev.ID}
	} else if err := b.device(o.Device, path+".device"); err != nil {
		return vitalgate.Device{}, err
	}
	// derivedFrom: Observations of the same patient.
	for i, r := range o.DerivedFrom {
		if local != nil && local(r.Reference) {
			continue
		}
		if err := b.derivedFrom(ctx, r, pidx, path+".derivedFrom["+strconv.Itoa(i)+"]"); err != nil {
			return vitalgate.Device{}, err
		}
	}
	d := b.dev
	d.PatientIndex, d.PatientSealed = pidx, psealed
	return d, nil
}

// identify returns the blind index of Patient pid if it is a Patient of the device's site.
// An unknown Patient and another site's get the same answer (msgNotInSite).
func (b *binder) identify(ctx context.Context, pid, field string) ([]byte, error) {
	refuse := vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field, msgNotInSite)
	if b.s.Finder == nil {
		return nil, refuse
	}
	r, err := b.s.Finder.Resource(ctx, "Patient", pid)
	switch vitalgate.ErrorCode(err) {
	case "":
	case vitalgate.ENOTFOUND:
		return nil, refuse
	default:
		return nil, err
	}
	if r.Site != b.dev.Site || !bytes.Equal(r.PatientIndex, b.s.Vault.SitePatientIndex(b.dev.Site, pid)) {
		return nil, refuse
	}
	if b.s.Units != nil {
		unit, admitted, err := b.s.Units.UnitCheck(ctx, b.dev.ID, b.dev.Site, r.PatientIndex)
		if err != nil {
			return nil, err
		}
		if unit != "" && !admitted {
			return nil, vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field, msgNotInUnit)
		}
		b.unit = unit
	}
	return r.PatientIndex, nil
}

// msgNotInUnit is the answer of a device placed in a care unit whose message names a
// Patient of its site who is not admitted to that unit.
const msgNotInUnit = "subject is not admitted to this device's care unit"

// samePatient checks that a patient identifier names the Patient whose index is pidx.
func (b *binder) samePatient(ctx context.Context, id *fhir.Identifier, pidx []byte, field string) error {
	refuse := vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field,
		"this identifier does not name the patient this device is assigned to; send the reference alone")
	if id.System == "" || id.Value == "" || b.s.Finder == nil {
		return refuse
	}
	var found vitalgate.SealedResource
	err := b.s.Finder.Resources(ctx, vitalgate.ResourceFilter{Site: b.dev.Site, Type: "Patient",
		IdentifierIndex: b.s.Vault.IdentifierIndex(fhir.IdentifierKey(id.System, id.Value)), Limit: 1},
		func(r vitalgate.SealedResource) error { found = r; return errFound })
	if err != nil && err != errFound {
		return err
	}
	if found.ID == "" || !bytes.Equal(found.PatientIndex, pidx) {
		return refuse
	}
	return nil
}

func (b *binder) focus(ctx context.Context, f fhir.Reference, pidx []byte, field string) error {
	refuse := vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field,
		"focus may name only the patient this device is assigned to or the device itself")
	switch typ, id, _ := strings.Cut(f.Reference, "/"); {
	case typ == "Patient" && id != "" && bytes.Equal(b.s.Vault.SitePatientIndex(b.dev.Site, id), pidx):
	case typ == "Device" && id == b.dev.ID:
	default:
		return refuse
	}
	if f.Identifier != nil {
		if strings.HasPrefix(f.Reference, "Device/") {
			return b.device(&f, field)
		}
		return b.samePatient(ctx, f.Identifier, pidx, field+".identifier")
	}
	return nil
}

// device checks a reference to the device that made the observation: the sender itself,
// by reference and by any identifier or display beside it.
func (b *binder) device(r *fhir.Reference, field string) error {
	if did, ok := refID(r.Reference, "Device"); !ok || did != b.dev.ID {
		return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field,
			"device must reference the sending device itself (Device/%s)", b.dev.ID)
	}
	if id := r.Identifier; id != nil && id.Value != b.dev.ID {
		return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field+".identifier",
			"the identifier names another device than the one whose certificate sent this")
	}
	if r.Display != "" && r.Display != b.dev.ID && (b.dev.Model == "" || r.Display != b.dev.Model) {
		return vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field+".display",
			"display may only name the sending device (its id or model)")
	}
	return nil
}

// derivedFrom checks that a reference names a stored Observation of the patient pidx.
func (b *binder) derivedFrom(ctx context.Context, r fhir.Reference, pidx []byte, field string) error {
	refuse := vitalgate.FieldErrorf(vitalgate.EFORBIDDEN, field,
		"derivedFrom must reference a stored Observation of the same patient (Observation/<id>)")
	id, ok := refID(r.Reference, "Observation")
	if !ok || r.Identifier != nil || b.s.Finder == nil {
		return refuse
	}
	found, err := b.s.Finder.Resource(ctx, "Observation", id)
	switch vitalgate.ErrorCode(err) {
	case "":
	case vitalgate.ENOTFOUND:
		return refuse
	default:
		return err
	}
	if found.Site != b.dev.Site || !bytes.Equal(found.PatientIndex, pidx) {
		return refuse // the same answer as for an unknown id
	}
	return nil
}

// refID returns the id of a literal reference "typ/<id>".
func refID(ref, typ string) (string, bool) {
	id, ok := strings.CutPrefix(ref, typ+"/")
	return id, ok && id != "" && !strings.Contains(id, "/")
}

// fmtDuration writes a bound in days or hours.
func fmtDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	}
	return d.String()
}
