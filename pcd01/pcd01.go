// Package pcd01 maps an HL7 v2 ORU^R01 message of the IHE PCD-01 transaction ("Communicate
// PCD Data", also used by Continua WAN) to FHIR R4 vital-sign Observations.
//
// # What is mapped
//
// Every OBX whose value type (OBX-2) is NM and whose code (OBX-3) is a vital sign known to
// package vitals becomes one Observation; blood pressure arrives as separate systolic,
// diastolic and mean OBX lines and becomes separate Observations (no panel). Other OBX lines
// are reported in Result.Skipped, not mapped and not errors: device containment rows (no
// value type: MDS, VMD, CHAN), coded and text status metrics (CWE, ST, DTM ...), waveforms
// (NA, MA: not supported) and numeric metrics whose code is not a known vital sign (PVC
// count, pulmonary artery pressure ...). A message may therefore map to no Observation at
// all; the caller decides what to do with that. A few MDC codes that vitals does not list
// yet but that are a form of a known vital sign (188424 MDC_TEMP_ORAL → body temperature
// 8310-5) map to the LOINC coding only, with the MDC code in code.text (the strict validator
// rejects MDC codings it does not know).
//
// Each Observation has:
//   - code: the MDC coding (system urn:iso:std:iso:11073:10101, code = OBX-3.1, display =
//     the MDC_ reference id from OBX-3.2) plus the LOINC coding from vitals.LOINCForMDC; an
//     OBX-3 coded in LOINC (LN) gives the LOINC coding only;
//   - valueQuantity: OBX-5 as a FHIR decimal with the UCUM unit from OBX-6 (an MDC unit code
//     translated with vitals.UCUMFromMDCUnit, or a UCUM code when OBX-6.3 is UCUM);
//   - effectiveDateTime: OBX-14, else OBX-14 of the nearest containing OBX of the same OBR
//     (by OBX-4 containment: the metric 1.0.1.1 inherits from the channel 1.0.1), else OBR-7,
//     else MSH-7, with the precision given (a time to the minute gets :00 seconds, as FHIR
//     requires seconds); a time without offset is in Options.Location;
//   - status from OBX-11: F, U → final; C → corrected; A → amended; R, P, S → preliminary;
//     I → registered; D, W → entered-in-error; X → cancelled, without a value and with
//     dataAbsentReason "error"; N and O (not a result) are skipped;
//   - category vital-signs; subject Patient/<id> from Options.ResolvePatient; device
//     Device/<Options.DeviceID>;
//   - identifier[0]: system Options.IdentifierSystem (default urn:vitalgate:device:<DeviceID>:hl7v2),
//     value "<MSH-10>/<n>" where n is the position of the OBX among all OBX segments, so a
//     retransmitted message yields the same identifiers;
//   - identifier[1] (when OBX-4 is given): the IEEE 11073 containment MDS.VMD.CHAN.METRIC
//     (a dotted path of numbers, else a 102 error), system ContainmentSystem, use secondary.
//
// OBX-7 (reference range), OBX-8 (abnormal flags), OBX-17 (method), OBX-20 (body site) and
// NTE segments are not mapped.
//
// # Errors
//
// Errors are *hl7v2.Error values that name the HL7 location and carry the HL7 table 0357
// condition; AckCodeFor turns any error into the ACK code (AA, AE, AR) and ERR-3 condition.
package pcd01

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/vitals"
)

// Code systems and identifiers used in the Observations.
const (
	// ContainmentSystem is the identifier system of the OBX-4 containment identifier.
	ContainmentSystem = "urn:vitalgate:hl7v2:obx-4"
	// CategorySystem is the FHIR observation-category code system.
	CategorySystem = "http://terminology.hl7.org/CodeSystem/observation-category"
	// DataAbsentReasonSystem is the FHIR data-absent-reason code system.
	DataAbsentReasonSystem = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
)

// Options configure Map.
type Options struct {
	// DeviceID is the id of the Device that sent the message (from its TLS identity);
	// required. Observations reference Device/<DeviceID>.
	DeviceID string
	// ExpectedDeviceIDs are the EUI-64s (16 hex digits, any case, '-' or ':' separators
	// allowed) the sender may name in MSH-3 and OBX-18. When not empty, any other EUI-64 in
	// those fields is an EFORBIDDEN error naming the field. When empty, no check is made.
	ExpectedDeviceIDs []string
	// ResolvePatient returns the FHIR Patient id for the patient identifier of PID-3 (its
	// value, assigning authority and type); required. A *vitalgate.Error it returns keeps
	// its code (ENOTFOUND, EFORBIDDEN ...) and is located at PID-3.
	ResolvePatient func(PatientIdentifier) (patientID string, err error)
	// Location is the time zone of times without an offset; default UTC.
	Location *time.Location
	// Now returns the current time, used to validate the Observations; default time.Now.
	Now func() time.Time
	// ProcessingIDs are the accepted MSH-11 values; default {"P"}.
	ProcessingIDs []string
	// Versions are the accepted MSH-12 values; default {"2.6"}, as IHE PCD-01 requires.
	Versions []string
	// IdentifierSystem is the system of the retransmission identifier; default
	// "urn:vitalgate:device:<DeviceID>:hl7v2".
	IdentifierSystem string
	// MaxObservations bounds the OBX segments of a message (mapped or not); more are an
	// ETOOLARGE error at the first one over. Zero: no bound (the caller's ingest applies
	// its own).
	MaxObservations int
}

// HD is an HL7 hierarchic designator (MSH-3, MSH-4, CX-4).
type HD = hl7v2.HD

// PatientIdentifier is the patient identifier taken from PID-3.
type PatientIdentifier = hl7v2.PatientIdentifier

// Skipped is an OBX that was not mapped, and why.
type Skipped struct {
	Loc    hl7v2.Location
	Reason string
}

// Result is what Map found in a message.
type Result struct {
	MessageControlID string // MSH-10
	SendingApp       HD     // MSH-3
	SendingFacility  HD     // MSH-4
	Profile          string // MSH-21.1 (or MSH-21.3 when .1 is empty), e.g. IHE PCD ORU-R01 2006
	// DeviceEUI64 is MSH-3.2 when MSH-3.3 is EUI-64 (upper case), usually the gateway.
	DeviceEUI64 string
	// EquipmentEUI64 are the distinct EUI-64s named in OBX-18 (upper case), in order.
	EquipmentEUI64 []string
	Patient        PatientIdentifier
	PatientLoc     hl7v2.Location // where Patient was read (PID-3 and its repetition)
	PatientID      string         // from Options.ResolvePatient
	Observations   []*fhir.Observation
	Skipped        []Skipped
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func errAt(code, cond string, loc hl7v2.Location, format string, args ...any) error {
	return hl7v2.NewError(code, cond, loc, format, args...)
}

// Map maps msg to FHIR Observations (see the package documentation). Every Observation
// returned passes fhir.ValidateObservation. Errors are *hl7v2.Error:
//   - EINVALID 200/201: MSH-9 is not ORU^R01; 202: MSH-11 not accepted; 203: MSH-12 not
//     accepted; 101: a required field is missing (MSH-10, PID, PID-3, OBX-3, OBX-5, OBX-6,
//     OBX-11); 102: a malformed value (time, number, EUI-64, code);
//   - EUNPROCESSABLE 103: a unit or status not in its table, or a unit not allowed for the
//     vital sign; 102: a value outside the plausible range;
//   - EFORBIDDEN 204: MSH-3 or OBX-18 names an EUI-64 not in Options.ExpectedDeviceIDs;
//   - the code of ResolvePatient's error, at PID-3;
//   - ETOOLARGE 207: more OBX segments than Options.MaxObservations;
//   - EINTERNAL 207: Options incomplete.
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
		opt.Versions = []string{"2.6"}
	}
	if !idRE.MatchString(opt.DeviceID) || opt.ResolvePatient == nil {
		return nil, hl7v2.WrapError(vitalgate.Internal(errString("pcd01: Options.DeviceID (a FHIR id) and Options.ResolvePatient are required"), "pcd01.Map"), hl7v2.CondInternal, hl7v2.Location{})
	}
	if opt.IdentifierSystem == "" {
		opt.IdentifierSystem = "urn:vitalgate:device:" + opt.DeviceID + ":hl7v2"
	}
	m := mapper{opt: opt, msg: msg, res: &Result{}}
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
	if err := m.observations(); err != nil {
		return nil, err
	}
	return m.res, nil
}

type errString string

func (e errString) Error() string { return string(e) }

type mapper struct {
	opt      Options
	msg      *hl7v2.Message
	res      *Result
	expected map[string]bool
	msh7     timeValue
}

func loc(seg string, seq, field, comp int) hl7v2.Location {
	return hl7v2.Location{Segment: seg, Seq: seq, Field: field, Component: comp}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hd(c hl7v2.Rep) HD {
	return HD{Namespace: c.Comp(1).Value(), UniversalID: c.Comp(2).Value(), UniversalIDType: c.Comp(3).Value()}
}

func (m *mapper) header() error {
	h := m.msg.Segment("MSH")
	if h == nil {
		return errAt(vitalgate.EINVALID, hl7v2.CondSegmentSequence, loc("MSH", 1, 0, 0), "message has no MSH segment")
	}
	mt := h.Field(9).Rep(1)
	if typ := mt.Comp(1).Value(); typ != "ORU" {
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedMessage, loc("MSH", 1, 9, 1), "message type must be ORU (IHE PCD-01 ORU^R01)")
	}
	if ev := mt.Comp(2).Value(); ev != "R01" {
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedEvent, loc("MSH", 1, 9, 2), "trigger event must be R01 (IHE PCD-01 ORU^R01)")
	}
	if st := mt.Comp(3).Value(); st != "" && st != "ORU_R01" {
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedMessage, loc("MSH", 1, 9, 3), "message structure must be ORU_R01")
	}
	if p := h.Field(11).Value(); !contains(m.opt.ProcessingIDs, p) {
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedProcID, loc("MSH", 1, 11, 0), "processing id must be one of %s", strings.Join(m.opt.ProcessingIDs, ", "))
	}
	if v := h.Field(12).Value(); !contains(m.opt.Versions, v) {
		return errAt(vitalgate.EINVALID, hl7v2.CondUnsupportedVersion, loc("MSH", 1, 12, 0), "version must be one of %s", strings.Join(m.opt.Versions, ", "))
	}
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
	prof := h.Field(21).Rep(1)
	m.res.Profile = prof.Comp(1).Value()
	if m.res.Profile == "" {
		m.res.Profile = prof.Comp(3).Value()
	}
	if len(m.opt.ExpectedDeviceIDs) > 0 {
		m.expected = map[string]bool{}
		for _, e := range m.opt.ExpectedDeviceIDs {
			if n, ok := normEUI64(e); ok {
				m.expected[n] = true
			}
		}
	}
	if strings.EqualFold(m.res.SendingApp.UniversalIDType, "EUI-64") {
		eui, err := m.eui64(m.res.SendingApp.UniversalID, loc("MSH", 1, 3, 2))
		if err != nil {
			return err
		}
		m.res.DeviceEUI64 = eui
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

// normEUI64 returns an EUI-64 as 16 upper-case hex digits.
func normEUI64(s string) (string, bool) {
	s = strings.NewReplacer("-", "", ":", "").Replace(s)
	if len(s) != 16 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", false
		}
	}
	return strings.ToUpper(s), true
}

// eui64 checks an EUI-64 named at l: well-formed and, if a set is expected, in it.
func (m *mapper) eui64(s string, l hl7v2.Location) (string, error) {
	eui, ok := normEUI64(s)
	if !ok {
		return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, l, "EUI-64 must be 16 hexadecimal digits")
	}
	if m.expected != nil && !m.expected[eui] {
		return "", errAt(vitalgate.EFORBIDDEN, hl7v2.CondUnknownKey, l, "device %s is not this connection's device", eui)
	}
	return eui, nil
}

func (m *mapper) patient() error {
	p, l, id, err := hl7v2.ResolvePID3(m.msg, "", m.opt.ResolvePatient)
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
	loc  hl7v2.Location // where it was read
}

func (m *mapper) parseTime(s string, l hl7v2.Location) (timeValue, error) {
	t, p, err := hl7v2.ParseTS(s, m.opt.Location)
	if err != nil {
		return timeValue{}, hl7v2.WrapError(err, hl7v2.CondDataType, l)
	}
	return timeValue{fhir: fhirDateTime(t, p), t: t, prec: p, loc: l}, nil
}

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

// mdcAliases are MDC codes that package vitals does not (yet) list but that are a site- or
// method-specific form of a vital sign it knows by LOINC. They are mapped to that LOINC
// code alone (the strict validator rejects MDC codings it does not know), with the MDC
// reference id and code in code.text. Once vitals lists the MDC code, the MDC coding is
// used instead.
var mdcAliases = map[string]struct{ loinc, refID string }{
	"188424": {"8310-5", "MDC_TEMP_ORAL"}, // oral temperature → body temperature
}

var statusMap = map[string]string{
	"F": "final", "U": "final", "C": "corrected", "A": "amended",
	"R": "preliminary", "P": "preliminary", "S": "preliminary",
	"I": "registered", "D": "entered-in-error", "W": "entered-in-error", "X": "cancelled",
}

// normContainment strips trailing ".0" levels: 1.2.1.0 and 1.2.1 name the same channel.
func normContainment(s string) string {
	for strings.HasSuffix(s, ".0") {
		s = strings.TrimSuffix(s, ".0")
	}
	return s
}

func (m *mapper) observations() error {
	var obrTime timeValue
	var inherited map[string]timeValue // containment → OBX-14 within the current OBR
	obrSeq, obxSeq := 0, 0
	seenEUI := map[string]bool{}
	for i := range m.msg.Segments {
		seg := &m.msg.Segments[i]
		switch seg.ID {
		case "OBR":
			obrSeq++
			obrTime = timeValue{}
			inherited = map[string]timeValue{}
			if ts := seg.Field(7).Value(); ts != "" && ts != `""` {
				tv, err := m.parseTime(ts, loc("OBR", obrSeq, 7, 0))
				if err != nil {
					return err
				}
				obrTime = tv
			}
		case "OBX":
			obxSeq++
			if inherited == nil {
				inherited = map[string]timeValue{}
			}
			// Equipment identifiers (OBX-18) are checked on every OBX, mapped or not.
			f18 := seg.Field(18)
			for r := 1; r <= len(f18); r++ {
				ei := f18.Rep(r)
				var s string
				var comp int
				switch {
				case strings.EqualFold(ei.Comp(4).Value(), "EUI-64"):
					s, comp = ei.Comp(3).Value(), 3
					if s == "" {
						s, comp = ei.Comp(1).Value(), 1
					}
				case strings.EqualFold(ei.Comp(2).Value(), "EUI-64"):
					s, comp = ei.Comp(1).Value(), 1
				default:
					continue
				}
				eui, err := m.eui64(s, hl7v2.Location{Segment: "OBX", Seq: obxSeq, Field: 18, Rep: r, Component: comp})
				if err != nil {
					return err
				}
				if !seenEUI[eui] {
					seenEUI[eui] = true
					m.res.EquipmentEUI64 = append(m.res.EquipmentEUI64, eui)
				}
			}
			cont := strings.TrimSpace(seg.Field(4).Value())
			var own timeValue
			if ts := seg.Field(14).Value(); ts != "" && ts != `""` {
				tv, err := m.parseTime(ts, loc("OBX", obxSeq, 14, 0))
				if err != nil {
					return err
				}
				own = tv
				if cont != "" {
					inherited[normContainment(cont)] = tv
				}
			}
			eff := own
			if eff.fhir == "" && cont != "" {
				c := normContainment(cont)
				for eff.fhir == "" {
					j := strings.LastIndexByte(c, '.')
					if j < 0 {
						break
					}
					c = normContainment(c[:j])
					eff = inherited[c]
				}
			}
			if eff.fhir == "" {
				eff = obrTime
			}
			if eff.fhir == "" {
				eff = m.msh7
			}
			if err := m.obx(seg, obxSeq, cont, eff); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *mapper) skip(seq int, field int, format string, args ...any) {
	m.res.Skipped = append(m.res.Skipped, Skipped{Loc: loc("OBX", seq, field, 0), Reason: sprintf(format, args...)})
}

var (
	nmRE     = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$`)
	refIDRE  = regexp.MustCompile(`^MDC_[A-Z0-9_]{1,60}$`)
	digitsRE = regexp.MustCompile(`^[0-9]{1,10}$`)
	loincRE  = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)
	// containmentRE is an OBX-4 sub-id: MDS.VMD.CHAN.METRIC, or a shorter or longer dotted path.
	containmentRE = regexp.MustCompile(`^[0-9]{1,10}(\.[0-9]{1,10}){0,7}$`)
	printableRE   = regexp.MustCompile(`^[\x20-\x7e]+$`)
)

func (m *mapper) obx(seg *hl7v2.Segment, seq int, cont string, eff timeValue) error {
	vt := seg.Field(2).Value()
	switch vt {
	case "NM":
	case "":
		m.skip(seq, 2, "no value type: a device containment element")
		return nil
	case "NA", "MA":
		m.skip(seq, 2, "waveform value type %s is not supported", vt)
		return nil
	default:
		m.skip(seq, 2, "value type %s is not mapped", quote(vt))
		return nil
	}
	// Code.
	ce := seg.Field(3).Rep(1)
	code, text, system := strings.TrimSpace(ce.Comp(1).Value()), ce.Comp(2).Value(), strings.TrimSpace(ce.Comp(3).Value())
	if code == "" {
		return errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 3, 1), "observation identifier is required")
	}
	cc := &fhir.CodeableConcept{}
	var vital vitals.Vital
	switch system {
	case "MDC", "":
		if !digitsRE.MatchString(code) {
			return errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("OBX", seq, 3, 1), "an MDC observation identifier must be numeric")
		}
		if v, ok := vitals.Lookup(vitals.SystemMDC, code); ok {
			vital = v
			c := fhir.Coding{System: vitals.SystemMDC, Code: code}
			if refIDRE.MatchString(text) {
				c.Display = text
			}
			cc.Coding = append(cc.Coding, c)
			if l, ok := vitals.LOINCForMDC(code); ok {
				cc.Coding = append(cc.Coding, fhir.Coding{System: vitals.SystemLOINC, Code: l})
			}
		} else if a, ok := mdcAliases[code]; ok {
			v, ok := vitals.Lookup(vitals.SystemLOINC, a.loinc)
			if !ok {
				m.skip(seq, 3, "MDC code %s is not a supported vital sign", code)
				return nil
			}
			vital = v
			cc.Coding = append(cc.Coding, fhir.Coding{System: vitals.SystemLOINC, Code: a.loinc})
			cc.Text = a.refID + " (MDC " + code + ")"
		} else {
			m.skip(seq, 3, "MDC code %s is not a supported vital sign", code)
			return nil
		}
	case "LN":
		if !loincRE.MatchString(code) {
			return errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("OBX", seq, 3, 1), "a LOINC code must look like 8867-4")
		}
		v, ok := vitals.Lookup(vitals.SystemLOINC, code)
		if !ok {
			m.skip(seq, 3, "LOINC code %s is not a supported vital sign", code)
			return nil
		}
		vital = v
		cc.Coding = append(cc.Coding, fhir.Coding{System: vitals.SystemLOINC, Code: code})
	default:
		m.skip(seq, 3, "code system %s is not supported", quote(system))
		return nil
	}
	if vital.Panel {
		m.skip(seq, 3, "%s is a panel and carries no value", vital.Name)
		return nil
	}
	// Status.
	st := strings.TrimSpace(seg.Field(11).Value())
	if st == "" {
		return errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 11, 0), "observation result status is required")
	}
	if st == "N" || st == "O" {
		m.skip(seq, 11, "result status %s is not a result", st)
		return nil
	}
	status, ok := statusMap[st]
	if !ok {
		return errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBX", seq, 11, 0), "result status %s is not in HL7 table 0085", quote(st))
	}
	o := &fhir.Observation{
		Status: status,
		Category: []fhir.CodeableConcept{{Coding: []fhir.Coding{{
			System: CategorySystem, Code: "vital-signs", Display: "Vital Signs"}}}},
		Code:              cc,
		Subject:           &fhir.Reference{Reference: "Patient/" + m.res.PatientID},
		Device:            &fhir.Reference{Reference: "Device/" + m.opt.DeviceID},
		EffectiveDateTime: eff.fhir,
		Identifier: []fhir.Identifier{{
			Use: "official", System: m.opt.IdentifierSystem,
			Value: m.res.MessageControlID + "/" + strconv.Itoa(seq),
		}},
	}
	if cont != "" && cont != `""` {
		if !containmentRE.MatchString(cont) {
			return errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("OBX", seq, 4, 0), "observation sub-id must be a containment like 1.0.1.2")
		}
		o.Identifier = append(o.Identifier, fhir.Identifier{
			Use: "secondary", System: ContainmentSystem, Value: cont,
			Type: &fhir.CodeableConcept{Text: "IEEE 11073 containment MDS.VMD.CHAN.METRIC"},
		})
	}
	if eff.fhir == "" {
		return errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 14, 0), "no observation time in OBX-14, OBR-7 or MSH-7")
	}
	if earliest := eff.t; eff.prec < hl7v2.PrecHour && earliest.Add(-14*time.Hour).After(m.opt.Now().Add(fhir.MaxClockSkew)) ||
		eff.prec >= hl7v2.PrecHour && earliest.After(m.opt.Now().Add(fhir.MaxClockSkew)) {
		return errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondDataType, eff.loc, "observation time is in the future")
	}
	if st == "X" {
		o.DataAbsentReason = &fhir.CodeableConcept{Coding: []fhir.Coding{{System: DataAbsentReasonSystem, Code: "error", Display: "Error"}}}
	} else {
		q, err := m.quantity(seg, seq, vital)
		if err != nil {
			return err
		}
		o.ValueQuantity = q
	}
	if err := fhir.ValidateObservation(o, m.opt.Now()); err != nil {
		return hl7v2.WrapError(err, hl7v2.CondDataType, loc("OBX", seq, 0, 0))
	}
	m.res.Observations = append(m.res.Observations, o)
	return nil
}

func (m *mapper) quantity(seg *hl7v2.Segment, seq int, vital vitals.Vital) (*fhir.Quantity, error) {
	f5 := seg.Field(5)
	raw := strings.TrimSpace(f5.Value())
	if raw == "" || raw == `""` {
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 5, 0), "observation value is required")
	}
	if len(f5) > 1 || len(f5.Rep(1)) > 1 || len(raw) > 32 {
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("OBX", seq, 5, 0), "an NM value must be a single number")
	}
	dec, ok := fhirDecimal(raw)
	if !ok {
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("OBX", seq, 5, 0), "an NM value must be a number")
	}
	// Unit.
	ce := seg.Field(6).Rep(1)
	ucode, usys := strings.TrimSpace(ce.Comp(1).Value()), strings.TrimSpace(ce.Comp(3).Value())
	if ucode == "" {
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 6, 1), "units are required for a numeric vital sign")
	}
	var ucum string
	switch {
	case usys == "UCUM" || usys == "" && !digitsRE.MatchString(ucode):
		ucum = ucode
	case usys == "MDC" || usys == "" && digitsRE.MatchString(ucode):
		u, ok := vitals.UCUMFromMDCUnit(ucode)
		if !ok {
			return nil, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBX", seq, 6, 1), "MDC unit %s is unknown", quote(ucode))
		}
		ucum = u
	default:
		return nil, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBX", seq, 6, 3), "unit system %s is not supported; use UCUM or MDC", quote(usys))
	}
	if _, ok := vital.Unit(ucum); !ok {
		return nil, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBX", seq, 6, 1), "unit %s is not allowed for %s", quote(ucum), vital.Name)
	}
	fv, _ := strconv.ParseFloat(dec, 64)
	if err := vital.CheckQuantity(fv, ucum); err != nil {
		return nil, hl7v2.WrapError(err, hl7v2.CondDataType, loc("OBX", seq, 5, 0))
	}
	return &fhir.Quantity{Value: json.Number(dec), Unit: ucum, System: vitals.SystemUCUM, Code: ucum}, nil
}

// fhirDecimal converts an HL7 NM ([+-]digits[.digits]) to a FHIR decimal.
func fhirDecimal(s string) (string, bool) {
	if !nmRE.MatchString(s) {
		return "", false
	}
	neg := s[0] == '-'
	s = strings.TrimLeft(s, "+-")
	ip, fp, _ := strings.Cut(s, ".")
	ip = strings.TrimLeft(ip, "0")
	if ip == "" {
		ip = "0"
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if neg && strings.Trim(out, "0.") != "" {
		out = "-" + out
	}
	return out, true
}

// quote quotes a short, plain value for a message, or elides it.
func quote(s string) string {
	if len(s) > 32 || !plainRE.MatchString(s) {
		return "(not shown)"
	}
	return strconv.Quote(s)
}

var plainRE = regexp.MustCompile(`^[A-Za-z0-9\-._:/\[\]%{}*^ ]*$`)
