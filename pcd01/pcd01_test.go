package pcd01_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/pcd01"
	"github.com/vitalgate/vitalgate/vitals"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustRead(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func mustParse(tb testing.TB, s string) *hl7v2.Message {
	tb.Helper()
	m, err := hl7v2.Parse([]byte(s), hl7v2.Limits{})
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return m
}

// options returns Options that resolve every patient to "pat-1".
func options() pcd01.Options {
	return pcd01.Options{
		DeviceID: "dev-1",
		ResolvePatient: func(p pcd01.PatientIdentifier) (string, error) {
			if p.Value == "" {
				return "", errors.New("empty id")
			}
			return "pat-1", nil
		},
		Now: func() time.Time { return now },
	}
}

// obs is the expected gist of one Observation.
type obs struct {
	mdc, loinc, value, unit, effective, status string
	containment                                string
}

func gist(o *fhir.Observation) obs {
	var g obs
	for _, c := range o.Code.Coding {
		switch c.System {
		case vitals.SystemMDC:
			g.mdc = c.Code
		case vitals.SystemLOINC:
			g.loinc = c.Code
		}
	}
	if q := o.ValueQuantity; q != nil {
		g.value, g.unit = q.Value.String(), q.Code
	}
	g.effective, g.status = o.EffectiveDateTime, o.Status
	for _, id := range o.Identifier {
		if id.System == pcd01.ContainmentSystem {
			g.containment = id.Value
		}
	}
	return g
}

func TestMapSamples(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		opt       func(*pcd01.Options)
		obs       []obs
		skipped   int
		deviceEUI string
		equipment []string
		patient   pcd01.PatientIdentifier
	}{
		{
			name: "ICU gateway, UCUM units, time from MSH-7 via OBR-7", file: "01_ipf_pcd01_icu_monitor_awaregateway.hl7",
			opt: func(o *pcd01.Options) { o.ExpectedDeviceIDs = []string{"08-00-19-ff-ff-4f-6a-c0"} },
			obs: []obs{
				{"147842", "8867-4", "60", "/min", "2008-12-11T14:45:00+00:00", "preliminary", "1.6.1.1"},
				{"150035", "8478-0", "92", "mm[Hg]", "2008-12-11T14:45:00+00:00", "preliminary", "1.3.1.1"},
				{"150033", "8480-6", "120", "mm[Hg]", "2008-12-11T14:45:00+00:00", "preliminary", "1.3.1.2"},
				{"150034", "8462-4", "80", "mm[Hg]", "2008-12-11T14:45:00+00:00", "preliminary", "1.3.1.3"},
				{"149522", "8867-4", "60", "/min", "2008-12-11T14:45:00+00:00", "preliminary", "1.2.1.1"},
			},
			skipped: 4, deviceEUI: "080019FFFF4F6AC0",
			patient: pcd01.PatientIdentifier{Value: "AB60001", Authority: "A", Assigner: pcd01.HD{Namespace: "A"}, Type: "PI"},
		},
		{
			name: "NIBP with MDC units and containment", file: "02_ipf_pcd01_nibp.hl7",
			opt: func(o *pcd01.Options) { o.ExpectedDeviceIDs = []string{"ACDE48234567ABCD", "0123456789abcdef"} },
			obs: []obs{
				{"150021", "8480-6", "120", "mm[Hg]", "2009-08-13T09:57:15+05:00", "preliminary", "1.0.1.1"},
				{"150022", "8462-4", "80", "mm[Hg]", "2009-08-13T09:57:15+05:00", "preliminary", "1.0.1.2"},
				{"150023", "8478-0", "100", "mm[Hg]", "2009-08-13T09:57:15+05:00", "preliminary", "1.0.1.3"},
			},
			skipped: 2, deviceEUI: "ACDE48234567ABCD", equipment: []string{"0123456789ABCDEF"},
			patient: pcd01.PatientIdentifier{Value: "789567", Authority: "Imaginary Hospital", Assigner: pcd01.HD{Namespace: "Imaginary Hospital"}, Type: "PI"},
		},
		{
			name: "maximum fields: statuses, OBX-14, two OBRs", file: "03_ipf_pcd01_nibp_maximum_fields.hl7",
			obs: []obs{
				{"150021", "8480-6", "140", "mm[Hg]", "2009-08-13T09:57:25+05:00", "corrected", "1.0.1.1"},
				{"150022", "8462-4", "70", "mm[Hg]", "2009-08-13T09:57:25+05:00", "entered-in-error", "1.0.1.2"},
				{"150023", "8478-0", "100", "mm[Hg]", "2009-08-13T09:57:15+05:00", "final", "1.0.1.3"},
			},
			skipped: 7, deviceEUI: "ACDE48234567ABCD", equipment: []string{"0123456789ABCDEF"},
			patient: pcd01.PatientIdentifier{Value: "111222333444", Authority: "Imaginary Hospital",
				Assigner: pcd01.HD{Namespace: "Imaginary Hospital", UniversalID: "1.3.4.565", UniversalIDType: "ISO"}, Type: "PI"},
		},
		{
			name: "Continua pulse oximeter, waveform skipped", file: "04_ipf_continua_wan_pulse_oximeter.hl7",
			obs: []obs{
				{"150456", "2708-6", "80.5", "%", "2009-07-15T07:07:07+00:00", "preliminary", "1.0.0.1"},
			},
			skipped: 2, deviceEUI: "ACDE48234567ABCD", equipment: []string{"0123456789ABCDEF"},
			patient: pcd01.PatientIdentifier{Value: "789567", Authority: "Imaginary Hospital", Assigner: pcd01.HD{Namespace: "Imaginary Hospital"}, Type: "PI"},
		},
		{
			name: "Continua blood pressure, CWE and DTM skipped", file: "05_ipf_continua_wan_bp.hl7",
			obs: []obs{
				{"150021", "8480-6", "120", "mm[Hg]", "2009-08-13T09:57:15+00:00", "preliminary", "1.0.1.1"},
				{"150022", "8462-4", "80", "mm[Hg]", "2009-08-13T09:57:15+00:00", "preliminary", "1.0.1.2"},
				{"150023", "8478-0", "100", "mm[Hg]", "2009-08-13T09:57:15+00:00", "preliminary", "1.0.1.3"},
			},
			skipped: 4, deviceEUI: "ACDE48234567ABCD", equipment: []string{"0123456789ABCDEF"},
			patient: pcd01.PatientIdentifier{Value: "789567", Authority: "Imaginary Hospital", Assigner: pcd01.HD{Namespace: "Imaginary Hospital"}, Type: "PI"},
		},
		{
			name: "Continua thermometer, oral temperature in Fahrenheit", file: "06_ipf_continua_wan_thermometer.hl7",
			obs: []obs{
				{"188424", "8310-5", "98.6", "[degF]", "2009-07-15T07:07:07+00:00", "preliminary", "1.0.0.1"},
			},
			skipped: 1, deviceEUI: "ACDE48234567ABCD", equipment: []string{"0123456789ABCDEF"},
			patient: pcd01.PatientIdentifier{Value: "789567", Authority: "Imaginary Hospital", Assigner: pcd01.HD{Namespace: "Imaginary Hospital"}, Type: "PI"},
		},
		{
			name: "IntelliVue with debug processing id allowed", file: "07_philips_intellivue_mx500_pcd01_TRUNCATED_WAVEFORM.hl7.txt",
			opt: func(o *pcd01.Options) { o.ProcessingIDs = []string{"P", "D"} },
			obs: []obs{
				{"147842", "8867-4", "60", "/min", "2021-04-25T23:03:31.496-04:00", "final", "1.2.1.1"},
			},
			skipped: 6,
			patient: pcd01.PatientIdentifier{Value: "12345", Authority: "Philips", Assigner: pcd01.HD{Namespace: "Philips"}, Type: "MR"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := options()
			if tt.opt != nil {
				tt.opt(&opt)
			}
			msg := mustParse(t, mustRead(t, tt.file))
			res, err := pcd01.Map(msg, opt)
			if err != nil {
				t.Fatalf("Map: %v", err)
			}
			var got []obs
			for _, o := range res.Observations {
				got = append(got, gist(o))
				checkFHIR(t, o)
				if ref := o.Subject.Reference; ref != "Patient/pat-1" {
					t.Errorf("subject %q", ref)
				}
				if id, _ := o.DeviceID(); id != "dev-1" {
					t.Errorf("device %q", id)
				}
			}
			if !reflect.DeepEqual(got, tt.obs) {
				t.Errorf("observations\n got %+v\nwant %+v", got, tt.obs)
			}
			if len(res.Skipped) != tt.skipped {
				t.Errorf("skipped %d, want %d: %+v", len(res.Skipped), tt.skipped, res.Skipped)
			}
			if res.DeviceEUI64 != tt.deviceEUI || !reflect.DeepEqual(res.EquipmentEUI64, tt.equipment) {
				t.Errorf("device %q equipment %v", res.DeviceEUI64, res.EquipmentEUI64)
			}
			if res.Patient != tt.patient || res.PatientID != "pat-1" {
				t.Errorf("patient %+v %q", res.Patient, res.PatientID)
			}
			if res.MessageControlID != msg.Segment("MSH").Field(10).Value() {
				t.Errorf("control id %q", res.MessageControlID)
			}
		})
	}
}

// checkFHIR checks that o validates, survives the strict decoder and still validates.
func checkFHIR(t *testing.T, o *fhir.Observation) {
	t.Helper()
	if err := fhir.ValidateObservation(o, now); err != nil {
		t.Fatalf("ValidateObservation: %v", err)
	}
	b, err := o.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	o2, err := fhir.DecodeObservation(b)
	if err != nil {
		t.Fatalf("DecodeObservation: %v\n%s", err, b)
	}
	if err := fhir.ValidateObservation(o2, now); err != nil {
		t.Fatalf("decoded no longer validates: %v", err)
	}
}

func TestMapRetransmission(t *testing.T) {
	data := mustRead(t, "02_ipf_pcd01_nibp.hl7")
	a, err := pcd01.Map(mustParse(t, data), options())
	if err != nil {
		t.Fatal(err)
	}
	b, err := pcd01.Map(mustParse(t, strings.ReplaceAll(data, "\r\n", "\r")), options())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Observations, b.Observations) {
		t.Error("a retransmission maps differently")
	}
	want := fhir.Identifier{Use: "official", System: "urn:vitalgate:device:dev-1:hl7v2", Value: "MSGID1234/3"}
	if got := a.Observations[0].Identifier[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("identifier %+v, want %+v", got, want)
	}
	c, err := pcd01.Map(mustParse(t, strings.Replace(data, "MSGID1234", "MSGID1235", 1)), options())
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a.Observations[0].Identifier, c.Observations[0].Identifier) {
		t.Error("a new message has the same identifiers")
	}
}

func TestMapStatusCancelled(t *testing.T) {
	data := strings.Replace(mustRead(t, "02_ipf_pcd01_nibp.hl7"), "|1.0.1.1|120|266016^MDC_DIM_MMHG^MDC|||||R", "|1.0.1.1||266016^MDC_DIM_MMHG^MDC|||||X", 1)
	res, err := pcd01.Map(mustParse(t, data), options())
	if err != nil {
		t.Fatal(err)
	}
	o := res.Observations[0]
	if o.Status != "cancelled" || o.ValueQuantity != nil || o.DataAbsentReason == nil {
		t.Errorf("cancelled observation: %+v", o)
	}
	checkFHIR(t, o)
}

func TestMapErrors(t *testing.T) {
	base := strings.ReplaceAll(mustRead(t, "02_ipf_pcd01_nibp.hl7"), "\r\n", "\r")
	sys := "|1.0.1.1|120|266016^MDC_DIM_MMHG^MDC|||||R"
	notFound := func(o *pcd01.Options) {
		o.ResolvePatient = func(pcd01.PatientIdentifier) (string, error) {
			return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no such patient")
		}
	}
	tests := []struct {
		name          string
		from, to      string // replace the first from with to
		opt           func(*pcd01.Options)
		code, field   string
		ack, cond     string
		wantNoMessage bool
	}{
		{"message type", "ORU^R01^ORU_R01", "ADT^A01^ADT_A01", nil, vitalgate.EINVALID, "MSH-9.1", "AR", "200", false},
		{"event", "ORU^R01^ORU_R01", "ORU^R30^ORU_R01", nil, vitalgate.EINVALID, "MSH-9.2", "AR", "201", false},
		{"structure", "ORU^R01^ORU_R01", "ORU^R01^ORU_R30", nil, vitalgate.EINVALID, "MSH-9.3", "AR", "200", false},
		{"processing id", "|MSGID1234|P|2.6|", "|MSGID1234|T|2.6|", nil, vitalgate.EINVALID, "MSH-11", "AR", "202", false},
		{"version", "|MSGID1234|P|2.6|", "|MSGID1234|P|2.3|", nil, vitalgate.EINVALID, "MSH-12", "AR", "203", false},
		{"control id missing", "|MSGID1234|", "||", nil, vitalgate.EINVALID, "MSH-10", "AE", "101", false},
		{"malformed MSH-3 EUI-64", "ACDE48234567ABCD^EUI-64||", "ACDE4823^EUI-64||", nil, vitalgate.EINVALID, "MSH-3.2", "AE", "102", false},
		{"MSH-3 not this device", "", "", func(o *pcd01.Options) { o.ExpectedDeviceIDs = []string{"0123456789ABCDEF"} }, vitalgate.EFORBIDDEN, "MSH-3.2", "AR", "204", false},
		{"OBX-18 not this device", "", "", func(o *pcd01.Options) { o.ExpectedDeviceIDs = []string{"ACDE48234567ABCD"} }, vitalgate.EFORBIDDEN, "OBX-18.1", "AR", "204", false},
		{"PID missing", "PID|||789567", "NTE|||789567", nil, vitalgate.EINVALID, "PID", "AE", "100", false},
		{"PID-3 missing", "PID|||789567^^^Imaginary Hospital^PI", "PID|||", nil, vitalgate.EINVALID, "PID-3.1", "AE", "101", false},
		{"patient unknown", "", "", notFound, vitalgate.ENOTFOUND, "PID-3", "AE", "204", false},
		{"MSH-7 malformed", "20090713090030+0500", "2009071309003", nil, vitalgate.EINVALID, "MSH-7", "AE", "102", false},
		{"OBX-14 malformed", "|R|||20090813095715+0500", "|R|||200908130957150", nil, vitalgate.EINVALID, "OBX[2]-14", "AE", "102", false},
		{"inherited OBX-14 in the future", "|R|||20090813095715+0500", "|R|||20990813095715+0500", nil, vitalgate.EUNPROCESSABLE, "OBX[2]-14", "AE", "102", false},
		{"OBR-7 in the future", "|R|||20090813095715+0500", "|R|||", func(o *pcd01.Options) {
			o.Now = func() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }
		}, vitalgate.EUNPROCESSABLE, "OBR-7", "AE", "102", false},
		{"value missing", sys, "|1.0.1.1||266016^MDC_DIM_MMHG^MDC|||||R", nil, vitalgate.EINVALID, "OBX[3]-5", "AE", "101", false},
		{"value not a number", sys, "|1.0.1.1|12O|266016^MDC_DIM_MMHG^MDC|||||R", nil, vitalgate.EINVALID, "OBX[3]-5", "AE", "102", false},
		{"value with components", sys, "|1.0.1.1|120^3|266016^MDC_DIM_MMHG^MDC|||||R", nil, vitalgate.EINVALID, "OBX[3]-5", "AE", "102", false},
		{"value implausible", sys, "|1.0.1.1|999|266016^MDC_DIM_MMHG^MDC|||||R", nil, vitalgate.EUNPROCESSABLE, "OBX[3]-5", "AE", "102", false},
		{"units missing", sys, "|1.0.1.1|120||||||R", nil, vitalgate.EINVALID, "OBX[3]-6.1", "AE", "101", false},
		{"MDC unit unknown", sys, "|1.0.1.1|120|999999^MDC_DIM_X^MDC|||||R", nil, vitalgate.EUNPROCESSABLE, "OBX[3]-6.1", "AE", "103", false},
		{"unit wrong for vital", sys, "|1.0.1.1|120|/min^/min^UCUM|||||R", nil, vitalgate.EUNPROCESSABLE, "OBX[3]-6.1", "AE", "103", false},
		{"unit system unknown", sys, "|1.0.1.1|120|mmHg^mmHg^ISO+|||||R", nil, vitalgate.EUNPROCESSABLE, "OBX[3]-6.3", "AE", "103", false},
		{"status missing", sys, "|1.0.1.1|120|266016^MDC_DIM_MMHG^MDC|||||", nil, vitalgate.EINVALID, "OBX[3]-11", "AE", "101", false},
		{"status unknown", sys, "|1.0.1.1|120|266016^MDC_DIM_MMHG^MDC|||||Q", nil, vitalgate.EUNPROCESSABLE, "OBX[3]-11", "AE", "103", false},
		{"containment malformed", sys, "|1.0.x.1|120|266016^MDC_DIM_MMHG^MDC|||||R", nil, vitalgate.EINVALID, "OBX[3]-4", "AE", "102", false},
		{"control id with control character", "|MSGID1234|", "|MSG\x01ID|", nil, vitalgate.EINVALID, "MSH-10", "AE", "102", false},
		{"code missing", "150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "", nil, vitalgate.EINVALID, "OBX[3]-3.1", "AE", "101", false},
		{"MDC code not numeric", "150021^MDC_PRESS_BLD_NONINV_SYS^MDC", "SYS^MDC_PRESS_BLD_NONINV_SYS^MDC", nil, vitalgate.EINVALID, "OBX[3]-3.1", "AE", "102", false},
		{"options incomplete", "", "", func(o *pcd01.Options) { o.DeviceID = "" }, vitalgate.EINTERNAL, "", "AR", "207", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := base
			if tt.from != "" {
				if !strings.Contains(data, tt.from) {
					t.Fatalf("sample does not contain %q", tt.from)
				}
				data = strings.Replace(data, tt.from, tt.to, 1)
			}
			opt := options()
			if tt.opt != nil {
				tt.opt(&opt)
			}
			msg := mustParse(t, data)
			_, err := pcd01.Map(msg, opt)
			if err == nil {
				t.Fatal("no error")
			}
			if got := vitalgate.ErrorCode(err); got != tt.code {
				t.Errorf("code %q, want %q (%v)", got, tt.code, err)
			}
			if got := vitalgate.ErrorField(err); got != tt.field {
				t.Errorf("field %q, want %q (%v)", got, tt.field, err)
			}
			ack, cond := pcd01.AckCodeFor(err)
			if ack != tt.ack || cond != tt.cond {
				t.Errorf("AckCodeFor = %s %s, want %s %s", ack, cond, tt.ack, tt.cond)
			}
			// The ACK reports the location in ERR-2 and the condition in ERR-3.
			b := hl7v2.BuildACK(msg, ack, []hl7v2.AckError{hl7v2.AckErrorFrom(err)}, now, "A1")
			am := mustParse(t, string(b))
			e := am.Segment("ERR")
			if e.Field(3).Value() != cond {
				t.Errorf("ERR-3 %q", e.Field(3).Value())
			}
			if loc, ok := hl7v2.ErrorLocation(err); ok && loc.Segment != "" && e.Field(2).Value() != loc.Segment {
				t.Errorf("ERR-2 %q, want segment %s", e.Field(2).Value(), loc.Segment)
			}
			if tt.wantNoMessage && strings.Contains(e.Field(8).Value(), "Options") {
				t.Errorf("internal detail in ERR-8: %q", e.Field(8).Value())
			}
		})
	}
}

func TestMapSample07DefaultOptions(t *testing.T) {
	// The IntelliVue sample is a debugging message (MSH-11 D): rejected by default.
	_, err := pcd01.Map(mustParse(t, mustRead(t, "07_philips_intellivue_mx500_pcd01_TRUNCATED_WAVEFORM.hl7.txt")), options())
	if ack, cond := pcd01.AckCodeFor(err); ack != "AR" || cond != "202" || vitalgate.ErrorField(err) != "MSH-11" {
		t.Errorf("got %s %s %v", ack, cond, err)
	}
}

func TestAckCodeFor(t *testing.T) {
	_, parseErr := hl7v2.Parse([]byte("garbage"), hl7v2.Limits{})
	_, bigErr := hl7v2.Parse([]byte("MSH|^~\\&|A"), hl7v2.Limits{MaxMessageBytes: 4})
	tests := []struct {
		name      string
		err       error
		ack, cond string
	}{
		{"nil", nil, "AA", ""},
		{"unparseable", parseErr, "AR", "100"},
		{"too large", bigErr, "AR", "207"},
		{"plain error", errors.New("boom"), "AR", "207"},
		{"unavailable", vitalgate.Unavailable(errors.New("db busy"), "try later"), "AR", "207"},
		{"forbidden", vitalgate.Errorf(vitalgate.EFORBIDDEN, "not your patient"), "AR", "204"},
		{"not found", vitalgate.Errorf(vitalgate.ENOTFOUND, "no patient"), "AE", "204"},
		{"conflict", vitalgate.Errorf(vitalgate.ECONFLICT, "duplicate"), "AE", "205"},
		{"unprocessable without location", vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "out of range"), "AE", "207"},
		{"located data error", hl7v2.NewError(vitalgate.EINVALID, "102", hl7v2.Location{Segment: "OBX", Seq: 2, Field: 5}, "bad"), "AE", "102"},
		{"unsupported version", hl7v2.NewError(vitalgate.EINVALID, "203", hl7v2.Location{Segment: "MSH", Seq: 1, Field: 12}, "bad"), "AR", "203"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ack, cond := pcd01.AckCodeFor(tt.err)
			if ack != tt.ack || cond != tt.cond {
				t.Errorf("got %s %s, want %s %s", ack, cond, tt.ack, tt.cond)
			}
		})
	}
}
