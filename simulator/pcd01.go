package simulator

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate/hl7v2"
)

// HL7 v2 identifiers used in generated IHE PCD-01 messages.
const (
	// HL7PatientAuthority is the assigning authority (PID-3.4) of the patient identifier in
	// generated messages: with it, Vitalgate takes PID-3.1 as the FHIR Patient id itself.
	HL7PatientAuthority = "VITALGATE"
	// HL7DeviceNamespace is the namespace (OBX-18.2) of the equipment identifier when the
	// device id is not an EUI-64.
	HL7DeviceNamespace = "VITALGATE"
	// HL7ReceivingApplication is MSH-5 of generated messages.
	HL7ReceivingApplication = "VITALGATE"
	// PCD01Profile is MSH-21, the message profile identifier of IHE PCD-01 (an EI:
	// entity^namespace^universal id^universal id type).
	PCD01Profile = "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
)

// mdcMetric is one numeric metric of an IEEE 11073 device: its observation code and unit.
type mdcMetric struct {
	code, refID         string // OBX-3: MDC code and reference id
	unitCode, unitRefID string // OBX-6: MDC_DIM_* code and reference id
}

// vitalMetrics lists, per vital, the metrics a PCD-01 message carries for one reading: one,
// or two for blood pressure (systolic then diastolic, from the Reading's Value and
// Diastolic). The codes are those package vitals knows (so Vitalgate stores them with their
// LOINC code): IEEE 11073-10101 codes, 2^16 × partition + term code.
var vitalMetrics = map[Vital][]mdcMetric{
	HeartRate:        {{"147842", "MDC_ECG_HEART_RATE", "264864", "MDC_DIM_BEAT_PER_MIN"}},
	OxygenSaturation: {{"150456", "MDC_PULS_OXIM_SAT_O2", "262688", "MDC_DIM_PERCENT"}},
	RespiratoryRate:  {{"151562", "MDC_RESP_RATE", "264928", "MDC_DIM_RESP_PER_MIN"}},
	BloodPressure: {
		{"150021", "MDC_PRESS_BLD_NONINV_SYS", "266016", "MDC_DIM_MMHG"},
		{"150022", "MDC_PRESS_BLD_NONINV_DIA", "266016", "MDC_DIM_MMHG"},
	},
	BodyTemperature: {{"188424", "MDC_TEMP_ORAL", "268192", "MDC_DIM_DEGC"}},
	BodyWeight:      {{"188736", "MDC_MASS_BODY_ACTUAL", "263875", "MDC_DIM_KILO_G"}},
	PulseRate:       {{"149530", "MDC_PULS_OXIM_PULS_RATE", "264864", "MDC_DIM_BEAT_PER_MIN"}},
}

// PCD01Count returns the number of OBX segments (numeric observations) [NewPCD01] writes for
// readings: one per reading, two for blood pressure. Vitalgate stores one Observation per OBX.
func PCD01Count(readings []Reading) int {
	n := 0
	for _, r := range readings {
		n += len(vitalMetrics[r.Vital])
	}
	return n
}

// deviceEUI64 returns the device id as 16 upper-case hex digits if it is an EUI-64 (16 hex
// digits, optionally separated by '-' or ':').
func deviceEUI64(id string) (string, bool) {
	s := strings.NewReplacer("-", "", ":", "").Replace(id)
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

// hl7Value is a field holding one plain value (nil when v is empty).
func hl7Value(v string) hl7v2.Field {
	if v == "" {
		return nil
	}
	return hl7v2.Field{hl7v2.Rep{hl7v2.Comp{v}}}
}

// hl7Comps is a field of one repetition with the given components.
func hl7Comps(comps ...string) hl7v2.Field {
	r := make(hl7v2.Rep, len(comps))
	for i, c := range comps {
		if c != "" {
			r[i] = hl7v2.Comp{c}
		}
	}
	return hl7v2.Field{r}
}

// hl7Segment builds a segment from fields numbered from 1 (fields[0] is field 1).
func hl7Segment(id string, fields ...hl7v2.Field) hl7v2.Segment {
	return hl7v2.Segment{ID: id, Fields: fields}
}

// NewPCD01 returns an HL7 v2.6 ORU^R01 message of the IHE PCD-01 transaction ("Communicate
// PCD Data") for one round of readings, ER7-encoded with CR segment terminators (not MLLP
// framed), built with package hl7v2:
//
//   - MSH: MSH-3 names the device (namespace = deviceID; when deviceID is an EUI-64 also
//     universal id = the EUI-64, type EUI-64), MSH-5 VITALGATE, MSH-7 at, MSH-9
//     ORU^R01^ORU_R01, MSH-10 controlID, MSH-11 P, MSH-12 2.6, MSH-15 NE, MSH-16 AL, MSH-21
//     [PCD01Profile];
//   - PID: PID-3 patientID^^^VITALGATE^PI ([HL7PatientAuthority]);
//   - PV1: patient class U (unknown);
//   - OBR: OBR-1 1, OBR-2/OBR-3 controlID^deviceID, OBR-4 182777000^monitoring of
//     patient^SCT, OBR-7 at;
//   - one OBX per numeric metric (see [PCD01Count]): OBX-2 NM, OBX-3 and OBX-6 MDC codes
//     (code^MDC_ reference id^MDC), OBX-4 the IEEE 11073 containment 1.<n>.1.<m> (VMD n per
//     reading, metric m within it), OBX-5 the value, OBX-11 F, OBX-14 at, OBX-18 the
//     equipment: EUI^^EUI^EUI-64 when deviceID is an EUI-64 (so pcd01's
//     ExpectedDeviceIDs check applies), else deviceID^VITALGATE.
//
// Times are written to the second with their UTC offset. It fails on an empty id, a control
// id that is not 1 to 199 printable ASCII characters, no readings, an unknown vital or a
// value that is not finite.
func NewPCD01(readings []Reading, deviceID, patientID string, at time.Time, controlID string) ([]byte, error) {
	if deviceID == "" || patientID == "" {
		return nil, errors.New("simulator: a PCD-01 message needs a device id and a patient id")
	}
	if controlID == "" || len(controlID) > 199 || strings.IndexFunc(controlID, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
		return nil, errors.New("simulator: the message control id must be 1 to 199 printable ASCII characters")
	}
	if len(readings) == 0 {
		return nil, errors.New("simulator: a PCD-01 message needs at least one reading")
	}
	ts := hl7v2.FormatTS(at)
	sendingApp := hl7Comps(deviceID)
	equipment := hl7Comps(deviceID, HL7DeviceNamespace)
	if eui, ok := deviceEUI64(deviceID); ok {
		sendingApp = hl7Comps(deviceID, eui, "EUI-64")
		equipment = hl7Comps(eui, "", eui, "EUI-64")
	}
	d := hl7v2.DefaultDelimiters
	m := &hl7v2.Message{Delims: d, Segments: []hl7v2.Segment{
		hl7Segment("MSH",
			hl7Value(string(d.Field)), hl7Value(d.EncodingCharacters()), // MSH-1, MSH-2
			sendingApp, nil, // MSH-3, MSH-4
			hl7Value(HL7ReceivingApplication), nil, // MSH-5, MSH-6
			hl7Value(ts), nil, // MSH-7, MSH-8
			hl7Comps("ORU", "R01", "ORU_R01"), hl7Value(controlID), // MSH-9, MSH-10
			hl7Value("P"), hl7Value("2.6"), // MSH-11, MSH-12
			nil, nil, hl7Value("NE"), hl7Value("AL"), // MSH-13 to MSH-16
			nil, nil, nil, nil, // MSH-17 to MSH-20
			hl7Comps(strings.Split(PCD01Profile, "^")...), // MSH-21
		),
		hl7Segment("PID", nil, nil, hl7Comps(patientID, "", "", HL7PatientAuthority, "PI")),
		hl7Segment("PV1", nil, hl7Value("U")),
		hl7Segment("OBR", hl7Value("1"),
			hl7Comps(controlID, deviceID), hl7Comps(controlID, deviceID), // OBR-2, OBR-3
			hl7Comps("182777000", "monitoring of patient", "SCT"), // OBR-4
			nil, nil, hl7Value(ts), // OBR-5 to OBR-7
		),
	}}
	set := 0
	for n, r := range readings {
		metrics, ok := vitalMetrics[r.Vital]
		if !ok {
			return nil, fmt.Errorf("simulator: unknown vital %q", r.Vital)
		}
		values := []float64{r.Value, r.Diastolic}
		for j, mt := range metrics {
			v := values[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("simulator: %s value %v is not a number", r.Vital, v)
			}
			set++
			fields := make([]hl7v2.Field, 18)
			fields[0] = hl7Value(strconv.Itoa(set))                   // OBX-1
			fields[1] = hl7Value("NM")                                // OBX-2
			fields[2] = hl7Comps(mt.code, mt.refID, "MDC")            // OBX-3
			fields[3] = hl7Value(fmt.Sprintf("1.%d.1.%d", n+1, j+1))  // OBX-4
			fields[4] = hl7Value(strconv.FormatFloat(v, 'f', -1, 64)) // OBX-5
			fields[5] = hl7Comps(mt.unitCode, mt.unitRefID, "MDC")    // OBX-6
			fields[10] = hl7Value("F")                                // OBX-11
			fields[13] = hl7Value(ts)                                 // OBX-14
			fields[17] = equipment                                    // OBX-18
			m.Segments = append(m.Segments, hl7v2.Segment{ID: "OBX", Fields: fields})
		}
	}
	return hl7v2.Encode(m), nil
}
