package lab

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab/analyte"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

var (
	nmRE       = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)$`)
	loincRE    = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)
	hl7TableRE = regexp.MustCompile(`^HL7([0-9]{4})$`)
	codeRE     = regexp.MustCompile(`^[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?$`)
	// ucumRE is the character set of UCUM codes (case-sensitive, no spaces).
	ucumRE  = regexp.MustCompile(`^[A-Za-z0-9\[\]{}%/.*\-+'_]{1,32}$`)
	plainRE = regexp.MustCompile(`^[A-Za-z0-9\-._:/\[\]%{}* ]*$`)
)

// maxString bounds a valueString (ST, TX, FT results); maxFlags the OBX-8 repetitions.
const (
	maxString = 4096
	maxFlags  = 8
)

// statusMap maps OBX-11 (HL7 table 0085) to observation-status and the change it makes.
var statusMap = map[string]struct {
	status string
	change Change
}{
	"F": {"final", Record}, "U": {"final", Record}, "C": {"corrected", Correct}, "A": {"amended", Correct},
	"P": {"preliminary", Record}, "R": {"preliminary", Record}, "S": {"preliminary", Record},
	"I": {"registered", Record}, "X": {"cancelled", Cancel}, "D": {"entered-in-error", Delete},
	"W": {"entered-in-error", Delete},
}

// interpretations are the HL7 table 0078 abnormal flags accepted in OBX-8, with their
// display in the v3 ObservationInterpretation code system (same codes).
var interpretations = map[string]string{
	"L": "Low", "H": "High", "LL": "Critical low", "HH": "Critical high", "LU": "Significantly low",
	"HU": "Significantly high", "<": "Off scale low", ">": "Off scale high", "N": "Normal",
	"A": "Abnormal", "AA": "Critical abnormal", "U": "Significant change up", "D": "Significant change down",
	"B": "Better", "W": "Worse", "S": "Susceptible", "R": "Resistant", "I": "Intermediate",
	"MS": "Moderately susceptible", "VS": "Very susceptible", "NEG": "Negative", "POS": "Positive",
	"IND": "Indeterminate", "DET": "Detected", "ND": "Not detected", "AC": "Anti-complementary substances present",
	"TOX": "Cytotoxic substance present", "QCF": "Quality control failure", "RR": "Reactive", "NR": "Non-reactive",
	"WR": "Weakly reactive", "E": "Equivocal", "EX": "outside threshold",
}

// codeSystem returns the FHIR system of an HL7 coding system name (CWE.3).
func (m *mapper) codeSystem(s string) string {
	switch s {
	case "LN":
		return LOINCSystem
	case "SCT":
		return SNOMEDSystem
	case "UCUM":
		return UCUMSystem
	case "":
		return "urn:vitalgate:device:" + m.opt.DeviceID + ":code"
	}
	if t := hl7TableRE.FindStringSubmatch(s); t != nil {
		return "http://terminology.hl7.org/CodeSystem/v2-" + t[1]
	}
	return LocalCodeSystemPrefix + url.PathEscape(s)
}

// concept maps a CWE/CE (both triplets; text from CWE.9, else the first display) to a
// CodeableConcept, nil when the rep has no code; loinc is the LOINC code among its codings,
// if any. A malformed code or LOINC code is an EINVALID 102 error at l (component set).
func (m *mapper) concept(r hl7v2.Rep, l hl7v2.Location) (cc *fhir.CodeableConcept, loinc string, err error) {
	c := &fhir.CodeableConcept{}
	for _, t := range []int{1, 4} {
		code := strings.TrimSpace(r.Comp(t).Value())
		if code == "" || code == `""` {
			continue
		}
		at := l
		at.Component = t
		if !codeRE.MatchString(code) {
			return nil, "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at, "a code must be 1 to 64 printable ASCII characters")
		}
		sys := strings.TrimSpace(r.Comp(t + 2).Value())
		if sys == "LN" {
			if !loincRE.MatchString(code) {
				return nil, "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at, "a LOINC code must look like 2345-7")
			}
			if loinc == "" {
				loinc = code
			}
		}
		cd := fhir.Coding{System: m.codeSystem(sys), Code: code}
		if d := strings.TrimSpace(r.Comp(t + 1).Value()); d != "" && len(d) <= 256 && !hasControl(d) {
			cd.Display = d
		}
		c.Coding = append(c.Coding, cd)
	}
	if len(c.Coding) == 0 {
		return nil, "", nil
	}
	if t := strings.TrimSpace(r.Comp(9).Value()); t != "" && len(t) <= 256 && !hasControl(t) {
		c.Text = t
	}
	return c, loinc, nil
}

// hasControl reports whether s holds a control character or is not valid UTF-8 (which JSON
// could not carry unchanged).
func hasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// obx maps one OBX of group g (index gi in the groups) and returns the index of its entry in
// Result.Results, or -1 when it is skipped.
func (m *mapper) obx(seg *hl7v2.Segment, seq int, g *group, gi int) (int, error) {
	at := func(f int) hl7v2.Location { return loc("OBX", seq, f, 0) }
	// Status.
	st := strings.TrimSpace(seg.Field(11).Value())
	if st == "" {
		return -1, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, at(11), "observation result status (OBX-11) is required")
	}
	if st == "N" || st == "O" {
		m.skip(seq, 11, "result status %s is not a result", st)
		return -1, nil
	}
	sm, ok := statusMap[st]
	if !ok {
		return -1, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, at(11), "result status %s is not in HL7 table 0085", quote(st))
	}
	vt := strings.TrimSpace(seg.Field(2).Value())
	switch vt {
	case "NA", "MA", "ED", "RP", "CP", "AD", "PN", "XAD", "XPN", "XCN", "XON", "XTN", "CX", "EI", "TM":
		m.skip(seq, 2, "value type %s is not mapped", vt)
		return -1, nil
	}
	// Code.
	code, loinc, err := m.concept(seg.Field(3).Rep(1), at(3))
	if err != nil {
		return -1, err
	}
	if code == nil {
		return -1, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 3, 1), "observation identifier (OBX-3) is required")
	}
	var an *analyte.Analyte
	if a, ok := analyte.Lookup(loinc); ok {
		an = &a
	} else if loinc == "" && m.opt.AcceptUnknownCodes {
		m.skip(seq, 3, "the observation identifier has no LOINC code")
		return -1, nil
	} else if !m.opt.AcceptUnknownCodes {
		if loinc == "" {
			return -1, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBX", seq, 3, 3), "the observation identifier (OBX-3) must be a LOINC code (coding system LN)")
		}
		return -1, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBX", seq, 3, 1), "LOINC %s is not a supported analyte", quote(loinc))
	}
	// Key.
	sub := strings.TrimSpace(seg.Field(4).Value())
	if sub == `""` {
		sub = ""
	}
	if sub != "" && !subIDRE.MatchString(sub) {
		return -1, errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(4), "observation sub-id must be 1 to 32 letters, digits, '.', '-' or '_'")
	}
	kc := loinc
	if kc == "" {
		kc = code.Coding[0].Code
	}
	kv := g.key.Value + "/" + kc
	if sub != "" {
		kv += "/" + sub
	}
	g.keys[kv]++
	if n := g.keys[kv]; n > 1 {
		kv += "#" + strconv.Itoa(n)
	}
	key := fhir.Identifier{Use: "official", System: g.key.System, Value: kv}
	// Time.
	eff, err := m.optTime(seg, 14, at(14))
	if err != nil {
		return -1, err
	}
	if eff.fhir == "" {
		eff = g.time
	}
	if eff.fhir == "" && len(g.specimens) > 0 {
		eff = m.specTimes[g.specimens[0]]
	}
	if eff.fhir == "" {
		eff = m.msh7
	}
	if eff.fhir == "" {
		return -1, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, at(14), "no observation time in OBX-14, OBR-7, SPM-17 or MSH-7")
	}
	o := &fhir.Observation{
		Identifier: []fhir.Identifier{key, {Use: "secondary", System: m.opt.IdentifierSystem,
			Value: m.res.MessageControlID + "/" + strconv.Itoa(seq)}},
		Status: sm.status,
		Category: []fhir.CodeableConcept{{Coding: []fhir.Coding{{
			System: CategorySystem, Code: "laboratory", Display: "Laboratory"}}}},
		Code:              code,
		Subject:           &fhir.Reference{Reference: "Patient/" + m.res.PatientID},
		EffectiveDateTime: eff.fhir,
		Device:            &fhir.Reference{Reference: "Device/" + m.opt.DeviceID},
	}
	issued, err := m.optTime(seg, 19, at(19))
	if err != nil {
		return -1, err
	}
	if issued.instant() {
		o.Issued = issued.fhir
	}
	// Value.
	var unit string
	raw := strings.TrimSpace(seg.Field(5).Value())
	hasValue := raw != "" && raw != `""` || len(seg.Field(5).Rep(1)) > 1
	switch {
	case sm.change == Cancel:
		o.DataAbsentReason = dar("not-performed", "Not Performed")
	case sm.change == Delete:
		o.DataAbsentReason = dar("error", "Error")
	case !hasValue && st == "I":
		o.DataAbsentReason = dar("temp-unknown", "Temporarily Unknown")
	case !hasValue:
		return -1, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, at(5), "observation value (OBX-5) is required")
	default:
		if unit, err = m.value(o, seg, seq, vt, an); err != nil {
			return -1, err
		}
	}
	// Reference range, interpretation, method.
	if rr := strings.TrimSpace(seg.Field(7).Value()); rr != "" && rr != `""` {
		if len(rr) > 128 || !printableRE.MatchString(rr) {
			return -1, errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(7), "reference range must be at most 128 printable ASCII characters")
		}
		o.ReferenceRange = []fhir.ReferenceRange{referenceRange(rr, unit)}
	}
	f8 := seg.Field(8)
	if len(f8) > maxFlags {
		return -1, errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(8), "at most %d abnormal flags", maxFlags)
	}
	for r := 1; r <= len(f8); r++ {
		flag := strings.TrimSpace(f8.Rep(r).Value())
		if flag == "" || flag == `""` {
			continue
		}
		d, ok := interpretations[flag]
		if !ok {
			return -1, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, hl7v2.Location{Segment: "OBX", Seq: seq, Field: 8, Rep: r},
				"abnormal flag %s is not in HL7 table 0078", quote(flag))
		}
		o.Interpretation = append(o.Interpretation, fhir.CodeableConcept{Coding: []fhir.Coding{{System: InterpretationSystem, Code: flag, Display: d}}})
	}
	if o.Method, _, err = m.concept(seg.Field(17).Rep(1), at(17)); err != nil {
		return -1, err
	}
	e := Entry{Observation: o, Loc: at(0), Key: key, Change: sm.change, Report: gi}
	f18 := seg.Field(18)
	for r := 1; r <= len(f18); r++ {
		e.Equipment = m.addEquipment(e.Equipment, f18.Rep(r))
	}
	if err := ValidateObservation(o, m.now); err != nil {
		return -1, hl7v2.WrapError(err, hl7v2.CondDataType, at(0))
	}
	m.res.Results = append(m.res.Results, e)
	idx := len(m.res.Results) - 1
	g.results = append(g.results, idx)
	return idx, nil
}

func dar(code, display string) *fhir.CodeableConcept {
	return &fhir.CodeableConcept{Coding: []fhir.Coding{{System: DataAbsentReasonSystem, Code: code, Display: display}}}
}

// value sets o's value from OBX-5 by value type vt, checking it against the analyte an if
// known; it returns the UCUM unit of a quantity ("" otherwise).
func (m *mapper) value(o *fhir.Observation, seg *hl7v2.Segment, seq int, vt string, an *analyte.Analyte) (string, error) {
	at := func(f int) hl7v2.Location { return loc("OBX", seq, f, 0) }
	f5 := seg.Field(5)
	if an != nil && vt != "NM" && vt != "SN" {
		return "", errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondDataType, at(2), "%s is quantitative: its value type (OBX-2) must be NM or SN", an.Name)
	}
	if len(f5) > 1 && vt != "ST" && vt != "TX" && vt != "FT" {
		return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(5), "a %s value must not repeat", quote(vt))
	}
	switch vt {
	case "NM":
		raw := strings.TrimSpace(f5.Value())
		if len(f5.Rep(1)) > 1 || len(raw) > 32 {
			return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(5), "an NM value must be a single number")
		}
		dec, ok := fhirDecimal(raw)
		if !ok {
			return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(5), "an NM value must be a number")
		}
		q, err := m.quantity(seg, seq, dec, "", an)
		if err != nil {
			return "", err
		}
		o.ValueQuantity = q
		return q.Code, nil
	case "SN":
		r := f5.Rep(1)
		cmp, n1, sep, n2 := strings.TrimSpace(r.Comp(1).Value()), strings.TrimSpace(r.Comp(2).Value()), strings.TrimSpace(r.Comp(3).Value()), strings.TrimSpace(r.Comp(4).Value())
		d1, ok1 := fhirDecimal(n1)
		if !ok1 || len(n1) > 32 {
			return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("OBX", seq, 5, 2), "a structured numeric value needs a number in its second component")
		}
		if sep == "" && n2 == "" {
			switch cmp {
			case "", "=":
				cmp = ""
			case "<", ">", "<=", ">=":
			default:
				return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, loc("OBX", seq, 5, 1), "comparator must be <, >, <=, >= or =")
			}
			q, err := m.quantity(seg, seq, d1, cmp, an)
			if err != nil {
				return "", err
			}
			o.ValueQuantity = q
			return q.Code, nil
		}
		d2, ok2 := fhirDecimal(n2)
		if !ok2 || len(n2) > 32 || !contains([]string{"-", "+", "/", ".", ":"}, sep) || cmp != "" && cmp != "=" {
			return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(5), "a structured numeric range or ratio must be num1^separator^num2 with separator -, +, /, . or :")
		}
		if an != nil {
			return "", errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondDataType, at(5), "%s must be a single number, not a range or ratio", an.Name)
		}
		o.ValueString = d1 + sep + d2
		return "", nil
	case "CWE", "CE", "CNE", "CF":
		c, _, err := m.concept(f5.Rep(1), at(5))
		if err != nil {
			return "", err
		}
		if c == nil {
			return "", errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 5, 1), "a coded value needs a code")
		}
		o.ValueCodeableConcept = c
		return "", nil
	case "ST", "TX", "FT", "IS", "ID":
		var parts []string
		for r := 1; r <= len(f5); r++ {
			parts = append(parts, strings.TrimSpace(f5.Rep(r).Comp(1).Value()))
		}
		s := strings.Join(parts, "\n")
		if len(s) > maxString {
			return "", errAt(vitalgate.ETOOLARGE, hl7v2.CondDataType, at(5), "a text value may hold at most %d characters", maxString)
		}
		if !utf8.ValidString(s) {
			return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(5), "a text value must be UTF-8 (MSH-18 UNICODE UTF-8)")
		}
		for _, r := range s {
			if r < 0x20 && r != '\n' || r == 0x7f {
				return "", errAt(vitalgate.EINVALID, hl7v2.CondDataType, at(5), "a text value must not hold control characters")
			}
		}
		if strings.TrimSpace(s) == "" {
			return "", errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, at(5), "observation value (OBX-5) is required")
		}
		o.ValueString = s
		return "", nil
	case "DT", "DTM", "TS":
		tv, err := m.parseTime(strings.TrimSpace(f5.Value()), at(5))
		if err != nil {
			return "", err
		}
		o.ValueDateTime = tv.fhir
		return "", nil
	case "":
		return "", errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, at(2), "value type (OBX-2) is required with a value")
	}
	return "", errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, at(2), "value type %s is not supported", quote(vt))
}

// unitOf reads OBX-6: the UCUM code of the first triplet whose system is UCUM, else of the
// first code, translated with analyte.NormalizeUnit; "" when OBX-6 is empty.
func unitOf(seg *hl7v2.Segment) (code string, ucumSystem bool) {
	r := seg.Field(6).Rep(1)
	for _, t := range []int{1, 4} {
		if strings.TrimSpace(r.Comp(t+2).Value()) == "UCUM" && strings.TrimSpace(r.Comp(t).Value()) != "" {
			return strings.TrimSpace(r.Comp(t).Value()), true
		}
	}
	c := strings.TrimSpace(r.Comp(1).Value())
	if c == `""` {
		c = ""
	}
	return c, false
}

// quantity builds the valueQuantity of a decimal dec with comparator cmp and the unit of
// OBX-6, checking unit and plausible range against the analyte an when known.
func (m *mapper) quantity(seg *hl7v2.Segment, seq int, dec, cmp string, an *analyte.Analyte) (*fhir.Quantity, error) {
	raw, isUCUM := unitOf(seg)
	var ucum string
	switch {
	case raw == "" && an != nil && an.Unitless:
		ucum = an.Canonical()
	case raw == "":
		return nil, errAt(vitalgate.EINVALID, hl7v2.CondRequiredMissing, loc("OBX", seq, 6, 1), "units (OBX-6) are required for a numeric result")
	default:
		u, ok := analyte.NormalizeUnit(raw)
		if !ok && isUCUM && ucumRE.MatchString(raw) && an == nil {
			u, ok = raw, true
		}
		if !ok {
			return nil, errAt(vitalgate.EUNPROCESSABLE, hl7v2.CondTableValue, loc("OBX", seq, 6, 1), "unit %s is not a UCUM unit this server knows", quote(raw))
		}
		ucum = u
	}
	if an != nil {
		if _, ok := an.Unit(ucum); !ok {
			_, err := an.Convert(0, ucum)
			return nil, hl7v2.WrapError(err, hl7v2.CondTableValue, loc("OBX", seq, 6, 1))
		}
		f, _ := strconv.ParseFloat(dec, 64)
		if err := an.Check(f, ucum); err != nil {
			return nil, hl7v2.WrapError(err, hl7v2.CondDataType, loc("OBX", seq, 5, 0))
		}
	}
	return &fhir.Quantity{Value: json.Number(dec), Comparator: cmp, Unit: ucum, System: UCUMSystem, Code: ucum}, nil
}

var (
	rangeRE = regexp.MustCompile(`^([+-]?[0-9]+(?:\.[0-9]+)?)\s*(?:-|to|–)\s*([+-]?[0-9]+(?:\.[0-9]+)?)(?:\s+(\S.*))?$`)
	boundRE = regexp.MustCompile(`^(<=|>=|<|>)\s*([+-]?[0-9]+(?:\.[0-9]+)?)(?:\s+(\S.*))?$`)
)

// referenceRange maps OBX-7: "low-high", "low to high", "<high", ">low" (with an optional
// trailing unit equal to the result's) give low and high quantities in unit; text is kept.
func referenceRange(s, unit string) fhir.ReferenceRange {
	rr := fhir.ReferenceRange{Text: s}
	if unit == "" {
		return rr
	}
	q := func(v string) *fhir.Quantity {
		d, _ := fhirDecimal(v)
		return &fhir.Quantity{Value: json.Number(d), Unit: unit, System: UCUMSystem, Code: unit}
	}
	sameUnit := func(u string) bool {
		if u == "" {
			return true
		}
		n, ok := analyte.NormalizeUnit(u)
		return u == unit || ok && n == unit
	}
	if g := rangeRE.FindStringSubmatch(s); g != nil && sameUnit(g[3]) {
		lo, _ := strconv.ParseFloat(g[1], 64)
		hi, _ := strconv.ParseFloat(g[2], 64)
		if lo <= hi {
			rr.Low, rr.High = q(g[1]), q(g[2])
		}
		return rr
	}
	if g := boundRE.FindStringSubmatch(s); g != nil && sameUnit(g[3]) {
		if strings.HasPrefix(g[1], "<") {
			rr.High = q(g[2])
		} else {
			rr.Low = q(g[2])
		}
	}
	return rr
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
