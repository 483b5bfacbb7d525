// Package lab maps laboratory and point-of-care results in HL7 v2 to FHIR R4: ORU^R01 as
// the HL7 Laboratory Results Interface (LRI, v2.5.1) sends it and OUL^R22 as the IHE
// Laboratory Analytical Workflow (LAW) sends it, in HL7 v2.5.1 or v2.6. It is the laboratory
// counterpart of package pcd01 and is called the same way: Map takes a parsed message and
// Options and returns a Result, or a *hl7v2.Error that names the HL7 field and carries the
// HL7 table 0357 condition (pcd01.AckCodeFor turns it into the ACK code).
//
// # What is mapped
//
// Each OBX with a result becomes one Observation (category laboratory), each OBR one
// DiagnosticReport grouping the Observations of its OBX segments, each SPM one Specimen:
//
//   - Observation.code: the codings of OBX-3 (both triplets; LOINC is
//     http://loinc.org, SNOMED CT http://snomed.info/sct, HL7 tables
//     http://terminology.hl7.org/CodeSystem/v2-NNNN, other systems
//     urn:vitalgate:hl7-codesystem:<name>). A LOINC code must be an analyte of package
//     analyte (unit, dimension and plausible range are checked) unless
//     Options.AcceptUnknownCodes. An OBX-3 without a LOINC coding is refused; with
//     Options.AcceptUnknownCodes it is skipped (Result.Skipped), since every stored
//     Observation needs a LOINC code.
//   - value: NM → valueQuantity with the UCUM unit of OBX-6 (a common non-UCUM spelling such
//     as mmHg or mEq/L is translated to UCUM; anything else is refused); SN → valueQuantity
//     with its comparator, or valueString for a range or ratio ("1:128"); CWE/CE →
//     valueCodeableConcept; ST/TX/FT → valueString. The value is kept in the unit it was
//     measured in; the analyte's conversion factor to its canonical unit is what the range
//     check uses.
//   - referenceRange from OBX-7 ("3.5-5.1", "0 to 17", "<0.50", ">60": low/high in the
//     result's unit; anything else as text); interpretation from OBX-8 (HL7 table 0078,
//     http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation); method from
//     OBX-17; effectiveDateTime from OBX-14, else OBR-7, else (OUL) the collection time of
//     the group's specimen (SPM-17), else MSH-7; issued from OBX-19.
//   - status from OBX-11: F, U → final; C → corrected; A → amended; P, R, S → preliminary;
//     I → registered; X → cancelled; D, W → entered-in-error; N and O (no result) are
//     skipped. X, D and W carry no value but dataAbsentReason (not-performed, error); so
//     does I without a value (temp-unknown).
//   - identifier[0] (official) is the result's key: system from the filler order number's
//     assigning authority (OBR-3, else OBR-2, else the specimen id SPM-2, by
//     hl7v2.IdentifierSystem with Options.Authorities; without an authority
//     urn:vitalgate:device:<DeviceID>:lab), value "<order number>/<OBX-3 code>[/<OBX-4>]".
//     A later message about the same result (a correction, a final after a preliminary, a
//     cancellation) has the same key: Entry.Change says what it does to the stored result,
//     which the caller replaces as a new version, never as a duplicate. identifier[1]
//     (secondary) is "<MSH-10>/<n>", n the position of the OBX among all OBX segments.
//   - subject Patient/<id> from Options.ResolvePatient (PID-3 as pcd01 reads it); device
//     Device/<DeviceID> (the sender); specimen: a reference by identifier to the first Specimen of
//     the OBR's group. The equipment that performed the test (OBX-18 entity identifiers and
//     PRT-10 of PRT segments with PRT-4 EQUIP, which IHE LAW pre-adopts from v2.7) is in
//     Entry.Equipment.
//
// DiagnosticReport: identifier (the order key and the placer order number OBR-2), status
// from OBR-25 (or, when empty, from its results), category LAB, code OBR-4, subject,
// effectiveDateTime OBR-7, issued OBR-22, result and specimen as references by identifier.
// Specimen: identifier SPM-2 (placer assigned, else filler assigned), type SPM-4, collection (collectedDateTime or collectedPeriod
// SPM-17, method SPM-7, bodySite SPM-8: the source site), receivedTime SPM-18, status from
// SPM-20/SPM-21 (available, unavailable, unsatisfactory).
//
// In ORU^R01 the SPM segments of an order follow its OBX segments; in OUL^R22 an SPM
// starts a specimen group and the OBR segments after it belong to it (an OBR without a
// preceding SPM takes the SPM segments that follow it). OBX segments directly under an SPM
// (specimen observations) and under no OBR are skipped (Result.Skipped).
//
// # Errors
//
// Errors are *hl7v2.Error values, as pcd01's: EINVALID with 200/201 (not ORU^R01 or
// OUL^R22), 202 (MSH-11), 203 (MSH-12), 101 (a required field missing: MSH-10, PID, PID-3,
// OBR-4, the order number, OBX-3, OBX-5, OBX-6, OBX-11), 102 (a malformed value);
// EUNPROCESSABLE with 103 (a unit, status, flag or analyte not accepted) or 102 (a value
// outside the plausible range, a time in the future); the code of ResolvePatient's error at
// PID-3; ETOOLARGE 207 (more OBX than Options.MaxObservations); EINTERNAL 207 (Options
// incomplete).
//
// The package is pure: no I/O, no clock (Options.Now), no global mutable state.
package lab

import (
	"regexp"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
)

// Code systems used in the resources.
const (
	// CategorySystem is the FHIR observation-category code system (category laboratory).
	CategorySystem = "http://terminology.hl7.org/CodeSystem/observation-category"
	// DataAbsentReasonSystem is the FHIR data-absent-reason code system.
	DataAbsentReasonSystem = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
	// InterpretationSystem is the FHIR (v3) observation interpretation code system.
	InterpretationSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	// DiagnosticServiceSystem is HL7 table 0074 (DiagnosticReport.category LAB).
	DiagnosticServiceSystem = "http://terminology.hl7.org/CodeSystem/v2-0074"
	// IdentifierTypeSystem is HL7 table 0203 (identifier types FILL, PLAC).
	IdentifierTypeSystem = "http://terminology.hl7.org/CodeSystem/v2-0203"
	// SNOMEDSystem is SNOMED CT.
	SNOMEDSystem = "http://snomed.info/sct"
	// UCUMSystem is UCUM.
	UCUMSystem = "http://unitsofmeasure.org"
	// LOINCSystem is LOINC.
	LOINCSystem = "http://loinc.org"
	// LocalCodeSystemPrefix is the prefix of the system of a coding whose HL7 coding system
	// (CWE.3) is neither LOINC, SNOMED CT, UCUM nor an HL7 table: the name is appended,
	// path-escaped.
	LocalCodeSystemPrefix = "urn:vitalgate:hl7-codesystem:"
)

// HD is an HL7 hierarchic designator.
type HD = hl7v2.HD

// PatientIdentifier is the patient identifier taken from PID-3, read exactly as package
// pcd01 reads it (the first repetition with a value), so that ingest resolves it with the
// same rule and table (hl7v2.IdentifierSystem of Assigner).
type PatientIdentifier = hl7v2.PatientIdentifier

// Options configure Map.
type Options struct {
	// DeviceID is the id of the Device that sent the message (from its TLS identity);
	// required. Observations reference Device/<DeviceID>.
	DeviceID string
	// ResolvePatient returns the FHIR Patient id for the patient identifier of PID-3;
	// required. A *vitalgate.Error it returns keeps its code and is located at PID-3.
	ResolvePatient func(PatientIdentifier) (patientID string, err error)
	// Authorities maps assigning authorities known by name to identifier systems (for the
	// order and specimen numbers, as for PID-3).
	Authorities hl7v2.AuthorityTable
	// AcceptUnknownCodes accepts results whose OBX-3 is a LOINC code that package analyte
	// does not list: they are mapped without unit or range checks (a numeric value still
	// needs a UCUM unit), and results whose OBX-3 has no LOINC coding are skipped. Default
	// false: either is an EUNPROCESSABLE 103 error at OBX-3.
	AcceptUnknownCodes bool
	// Location is the time zone of times without an offset; default UTC.
	Location *time.Location
	// Now returns the current time (no time may be in the future); default time.Now.
	Now func() time.Time
	// ProcessingIDs are the accepted MSH-11 values; default {"P"}.
	ProcessingIDs []string
	// Versions are the accepted MSH-12 values; default {"2.5.1", "2.6"}.
	Versions []string
	// IdentifierSystem is the system of the message-position identifier; default
	// "urn:vitalgate:device:<DeviceID>:hl7v2".
	IdentifierSystem string
	// MaxObservations bounds the OBX segments of a message; more are an ETOOLARGE error.
	// Zero: no bound.
	MaxObservations int
}

// Change is what a result does to the result stored under the same key.
type Change int

// Changes, from OBX-11.
const (
	// Record records the result: a new one, or a new version of a preliminary one
	// (F, P, R, S, I, U, A).
	Record Change = iota + 1
	// Correct replaces the stored result with a corrected one (C).
	Correct
	// Cancel marks the result cancelled: it could not be obtained (X).
	Cancel
	// Delete marks the stored result entered-in-error (D, W).
	Delete
)

// String names the change: record, correct, cancel, delete.
func (c Change) String() string {
	switch c {
	case Record:
		return "record"
	case Correct:
		return "correct"
	case Cancel:
		return "cancel"
	case Delete:
		return "delete"
	}
	return "unknown"
}

// Entry is one result: its Observation and what the caller needs to store it.
type Entry struct {
	Observation *fhir.Observation
	Loc         hl7v2.Location // the OBX segment
	// Key is the result's identifier (Observation.identifier[0]): the same result in a
	// later message has the same key.
	Key    fhir.Identifier
	Change Change
	// Report is the index in Result.Reports of the DiagnosticReport of the result's OBR.
	Report int
	// Equipment are the identifiers of the instruments that performed the test (OBX-18,
	// PRT-10 of a following PRT with PRT-4 EQUIP), system by hl7v2.IdentifierSystem of the
	// EI's authority (else urn:vitalgate:device:<DeviceID>:equipment), in order, without
	// duplicates. The caller decides whether the sender may speak for them.
	Equipment []fhir.Identifier
}

// Skipped is an OBX that was not mapped, and why.
type Skipped struct {
	Loc    hl7v2.Location
	Reason string
}

// Result is what Map found in a message.
type Result struct {
	MessageType      string // "ORU^R01" or "OUL^R22"
	Version          string // MSH-12
	MessageControlID string // MSH-10
	SendingApp       HD     // MSH-3
	SendingFacility  HD     // MSH-4
	Profiles         []string
	Patient          PatientIdentifier
	PatientLoc       hl7v2.Location // where Patient was read
	PatientID        string         // from Options.ResolvePatient
	Results          []Entry
	Reports          []*DiagnosticReport
	Specimens        []*Specimen
	Skipped          []Skipped
}

// Observations returns the Observations of r.Results, in message order.
func (r *Result) Observations() []*fhir.Observation {
	out := make([]*fhir.Observation, len(r.Results))
	for i := range r.Results {
		out[i] = r.Results[i].Observation
	}
	return out
}

type errString string

func (e errString) Error() string { return string(e) }

var (
	idRE        = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	printableRE = regexp.MustCompile(`^[\x20-\x7e]+$`)
)

func errAt(code, cond string, loc hl7v2.Location, format string, args ...any) error {
	return hl7v2.NewError(code, cond, loc, format, args...)
}

func loc(seg string, seq, field, comp int) hl7v2.Location {
	return hl7v2.Location{Segment: seg, Seq: seq, Field: field, Component: comp}
}

// Map maps msg (see the package documentation). Every Observation it returns passes
// ValidateObservation, every DiagnosticReport and Specimen their Validate methods.
func Map(msg *hl7v2.Message, opt Options) (*Result, error) {
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if len(opt.ProcessingIDs) == 0 {
		opt.ProcessingIDs = []string{"P"}
	}
	if len(opt.Versions) == 0 {
		opt.Versions = []string{"2.5.1", "2.6"}
	}
	if !idRE.MatchString(opt.DeviceID) || opt.ResolvePatient == nil {
		return nil, hl7v2.WrapError(vitalgate.Internal(errString("lab: Options.DeviceID (a FHIR id) and Options.ResolvePatient are required"), "lab.Map"), hl7v2.CondInternal, hl7v2.Location{})
	}
	if opt.IdentifierSystem == "" {
		opt.IdentifierSystem = "urn:vitalgate:device:" + opt.DeviceID + ":hl7v2"
	}
	m := &mapper{opt: opt, msg: msg, res: &Result{}, now: opt.Now()}
	if err := m.header(); err != nil {
		return nil, err
	}
	if max := opt.MaxObservations; max > 0 {
		if n := len(msg.All("OBX")); n > max {
			return nil, errAt(vitalgate.ETOOLARGE, hl7v2.CondInternal, loc("OBX", max+1, 0, 0),
				"a message may hold at most %d OBX segments; send the rest in another message", max)
		}
	}
	if err := m.patient(); err != nil {
		return nil, err
	}
	if err := m.walk(); err != nil {
		return nil, err
	}
	return m.res, nil
}

type mapper struct {
	opt  Options
	msg  *hl7v2.Message
	res  *Result
	now  time.Time
	msh7 timeValue
	oul  bool
	// specTimes[i] is the collection (start) time of Result.Specimens[i].
	specTimes []timeValue
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hd(r hl7v2.Rep) HD {
	return HD{Namespace: r.Comp(1).Value(), UniversalID: r.Comp(2).Value(), UniversalIDType: r.Comp(3).Value()}
}

func (m *mapper) header() error {
	h := m.msg.Segment("MSH")
	if h == nil {
		return errAt(vitalgate.EINVALID, hl7v2.CondSegmentSequence, loc("MSH", 1, 0, 0), "message has no MSH segment")
	}
	mt := h.Field(9).Rep(1)
	typ, ev, st := mt.Comp(1).Value(), mt.Comp(2).Value(), mt.Comp(3).Value()
	switch {
	case typ != "ORU" && typ != "OUL":
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedMessage, loc("MSH", 1, 9, 1), "message type must be ORU (LRI ORU^R01) or OUL (IHE LAW OUL^R22)")
	case typ == "ORU" && ev != "R01":
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedEvent, loc("MSH", 1, 9, 2), "trigger event of an ORU must be R01")
	case typ == "OUL" && ev != "R22":
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedEvent, loc("MSH", 1, 9, 2), "trigger event of an OUL must be R22")
	case st != "" && st != typ+"_"+ev:
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedMessage, loc("MSH", 1, 9, 3), "message structure must be %s_%s", typ, ev)
	}
	m.oul = typ == "OUL"
	m.res.MessageType = typ + "^" + ev
	if p := h.Field(11).Value(); !contains(m.opt.ProcessingIDs, p) {
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedProcID, loc("MSH", 1, 11, 0), "processing id must be one of %s", strings.Join(m.opt.ProcessingIDs, ", "))
	}
	v := h.Field(12).Value()
	if !contains(m.opt.Versions, v) {
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedVersion, loc("MSH", 1, 12, 0), "version must be one of %s", strings.Join(m.opt.Versions, ", "))
	}
	m.res.Version = v
	id := h.Field(10).Value()
	if id == "" || id == `""` {
		return errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("MSH", 1, 10, 0), "message control id is required")
	}
	if len(id) > 199 || !printableRE.MatchString(id) {
		return errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("MSH", 1, 10, 0), "message control id must be at most 199 printable ASCII characters")
	}
	m.res.MessageControlID = id
	m.res.SendingApp = hd(h.Field(3).Rep(1))
	m.res.SendingFacility = hd(h.Field(4).Rep(1))
	f21 := h.Field(21)
	for r := 1; r <= len(f21); r++ {
		p := f21.Rep(r).Comp(1).Value()
		if p == "" {
			p = f21.Rep(r).Comp(3).Value()
		}
		if p != "" && len(p) <= 64 && printableRE.MatchString(p) {
			m.res.Profiles = append(m.res.Profiles, p)
		}
	}
	if ts := h.Field(7).Value(); ts != "" {
		tv, err := m.parseTime(ts, loc("MSH", 1, 7, 0))
		if err != nil {
			return err
		}
		m.msh7 = tv
	}
	return nil
}

func (m *mapper) patient() error {
	p, l, id, err := hl7v2.ResolvePID3(m.msg, ": a laboratory result must name its patient", m.opt.ResolvePatient)
	m.res.Patient, m.res.PatientLoc = p, l
	if err != nil {
		return err
	}
	m.res.PatientID = id
	return nil
}

// timeValue is a parsed HL7 time formatted for FHIR.
type timeValue struct {
	fhir string
	t    time.Time
	prec hl7v2.Precision
	loc  hl7v2.Location
}

func (m *mapper) parseTime(s string, l hl7v2.Location) (timeValue, error) {
	t, p, err := hl7v2.ParseTS(s, m.opt.Location)
	if err != nil {
		return timeValue{}, hl7v2.WrapError(err, hl7v2.CondDataType, l)
	}
	tv := timeValue{fhir: fhirDateTime(t, p), t: t, prec: p, loc: l}
	if tv.future(m.now) {
		return timeValue{}, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondDataType, l, "time is in the future")
	}
	return tv, nil
}

// optTime parses the time in field f of seg (empty or "" gives the zero timeValue).
func (m *mapper) optTime(seg *hl7v2.Segment, f int, l hl7v2.Location) (timeValue, error) {
	ts := seg.Field(f).Value()
	if ts == "" || ts == `""` {
		return timeValue{}, nil
	}
	return m.parseTime(ts, l)
}

// future reports whether the earliest instant the time can mean is after now (with
// fhir.MaxClockSkew); a date without a time may be in any zone up to 14 hours ahead.
func (tv timeValue) future(now time.Time) bool {
	t := tv.t
	if tv.prec < hl7v2.PrecHour {
		t = t.Add(-14 * time.Hour)
	}
	return t.After(now.Add(fhir.MaxClockSkew))
}

// instant reports whether the time can be a FHIR instant (seconds and a zone).
func (tv timeValue) instant() bool { return tv.fhir != "" && tv.prec >= hl7v2.PrecHour }

// fhirDateTime formats t at precision p as a FHIR dateTime.
func fhirDateTime(t time.Time, p hl7v2.Precision) string {
	switch p {
	case hl7v2.PrecYear:
		return t.Format("2006")
	case hl7v2.PrecMonth:
		return t.Format("2006-01")
	case hl7v2.PrecDay:
		return t.Format("2006-01-02")
	case hl7v2.PrecFraction1, hl7v2.PrecFraction2, hl7v2.PrecFraction3, hl7v2.PrecFraction4:
		n := int(p - hl7v2.PrecSecond)
		return t.Format("2006-01-02T15:04:05." + strings.Repeat("0", n) + "-07:00")
	}
	return t.Format("2006-01-02T15:04:05-07:00")
}
