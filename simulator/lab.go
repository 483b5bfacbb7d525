package simulator

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// KindBloodGas is a point-of-care blood gas analyzer: each round it sends one laboratory
// result message (NewBloodGasORU) over MLLP/TLS (Config.HL7Addr; it sends nothing over
// FHIR). Its model is usually registered with binding "assigned" (a bedside analyzer) or
// "identified" (a shared one: PID-3 names the patient, here by Vitalgate Patient id).
const KindBloodGas = "blood-gas"

// BloodGasCount is the number of results (OBX segments) in a NewBloodGasORU message.
const BloodGasCount = 6

// labAnalyte is one blood gas result: LOINC code and name, UCUM unit, a plausible
// arterial range to draw from, decimals, and the reference range reported in OBX-7.
type labAnalyte struct {
	loinc, name, unit string
	lo, hi            float64
	decimals          int
	ref               string
}

var bloodGasPanel = [BloodGasCount]labAnalyte{
	{"2744-1", "pH of Arterial blood", "", 7.30, 7.48, 2, "7.35-7.45"},
	{"2019-8", "Carbon dioxide [Partial pressure] in Arterial blood", "mm[Hg]", 32, 50, 0, "35-45"},
	{"2703-7", "Oxygen [Partial pressure] in Arterial blood", "mm[Hg]", 70, 105, 0, "80-100"},
	{"6298-4", "Potassium [Moles/volume] in Blood", "mmol/L", 3.3, 5.3, 1, "3.5-5.1"},
	{"2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 180, 0, "70-99"},
	{"32693-4", "Lactate [Moles/volume] in Blood", "mmol/L", 0.5, 3.0, 1, "0.5-2.0"},
}

var hl7Safe = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// NewBloodGasORU returns an HL7 v2.5.1 ORU^R01 laboratory result message as the HL7 LRI
// profile has it (MSH-21 LRI_Common_Component), ER7-encoded with CR segment terminators
// (not MLLP framed), for one arterial blood gas panel measured at `at` by the device: MSH-3
// the device id, PID-3 the Vitalgate Patient id (assigning authority VITALGATE), one OBR
// (filler order number controlID, gas panel 24336-0), BloodGasCount OBX results with UCUM
// units, reference ranges and abnormal flags, and the SPM of the arterial specimen. Values
// are drawn from g's random source (plausible, some outside the reference range);
// controlID is MSH-10 and the order number, so that every message is a new order.
func NewBloodGasORU(g *Generator, device, patient string, at time.Time, controlID string) ([]byte, error) {
	for _, v := range []string{device, patient, controlID} {
		if !hl7Safe.MatchString(v) {
			return nil, fmt.Errorf("simulator: %q cannot be written in an HL7 lab message (1 to 64 letters, digits, '-' or '.')", v)
		}
	}
	if g == nil || g.rng == nil {
		return nil, fmt.Errorf("simulator: blood gas message needs a generator")
	}
	ts := func(t time.Time) string { return t.UTC().Format("20060102150405") + "+0000" }
	measured := at.Add(-2 * time.Minute)
	order := controlID + "^" + device
	segs := []string{
		"MSH|^~\\&|" + device + "|POC||VITALGATE|" + ts(at) + "||ORU^R01^ORU_R01|" + controlID + "|P|2.5.1|||NE|AL|||||LRI_Common_Component^^2.16.840.1.113883.9.16^ISO",
		"PID|1||" + patient + "^^^" + HL7PatientAuthority + "^PI",
		"ORC|RE||" + order,
		"OBR|1||" + order + "|24336-0^Gas panel - Arterial blood^LN|||" + ts(measured) + "|||||||||||||||" + ts(at) + "|||F",
	}
	for i, a := range bloodGasPanel {
		v := a.lo + g.rng.Float64()*(a.hi-a.lo)
		value := strconv.FormatFloat(v, 'f', a.decimals, 64)
		unit := ""
		if a.unit != "" {
			unit = a.unit + "^" + a.unit + "^UCUM"
		}
		segs = append(segs, "OBX|"+strconv.Itoa(i+1)+"|NM|"+a.loinc+"^"+a.name+"^LN||"+value+"|"+unit+"|"+a.ref+"|"+flag(value, a.ref)+
			"|||F|||"+ts(measured)+"||||"+device+"^"+HL7DeviceNamespace+"|"+ts(at))
	}
	segs = append(segs, "SPM|1|"+controlID+"-S1&"+device+"||122552005^Arterial blood specimen^SCT|||ART^Arterial puncture^HL70488|||||||||||"+ts(measured)+"|"+ts(at))
	return []byte(strings.Join(segs, "\r") + "\r"), nil
}

// flag is the OBX-8 abnormal flag of a value against a "lo-hi" reference range.
func flag(value, ref string) string {
	v, _ := strconv.ParseFloat(value, 64)
	lo, hi, _ := strings.Cut(ref, "-")
	l, _ := strconv.ParseFloat(lo, 64)
	h, _ := strconv.ParseFloat(hi, 64)
	switch {
	case v < l:
		return "L"
	case v > h:
		return "H"
	}
	return "N"
}

// hl7Time matches an HL7 v2 DTM of second precision or finer, with an optional zone.
var hl7Time = regexp.MustCompile(`\b(\d{14})(\.\d{1,4})?([+-]\d{4})?\b`)

// ShiftHL7Times returns a copy of the HL7 v2 message msg whose every time of second precision
// (YYYYMMDDHHMMSS, with an optional fraction and zone) is moved by the same amount, so
// that MSH-7 (the first such time) becomes `to`: a recorded message replayed as if it were
// sent now, its times still consistent with each other. Zones are kept.
func ShiftHL7Times(msg []byte, to time.Time) []byte {
	first := hl7Time.FindSubmatch(msg)
	if first == nil {
		return append([]byte(nil), msg...)
	}
	parse := func(digits, zone []byte) (time.Time, bool) {
		loc := time.UTC
		if len(zone) == 5 {
			h, _ := strconv.Atoi(string(zone[1:3]))
			m, _ := strconv.Atoi(string(zone[3:5]))
			off := h*3600 + m*60
			if zone[0] == '-' {
				off = -off
			}
			loc = time.FixedZone("", off)
		}
		t, err := time.ParseInLocation("20060102150405", string(digits), loc)
		return t, err == nil
	}
	t0, ok := parse(first[1], first[3])
	if !ok {
		return append([]byte(nil), msg...)
	}
	d := to.Sub(t0)
	return hl7Time.ReplaceAllFunc(msg, func(m []byte) []byte {
		sm := hl7Time.FindSubmatch(m)
		t, ok := parse(sm[1], sm[3])
		if !ok {
			return m
		}
		out := t.Add(d).In(t.Location()).Format("20060102150405")
		return []byte(out + string(sm[2]) + string(sm[3]))
	})
}
