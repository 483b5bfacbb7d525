package simulator_test

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/pcd01"
	"github.com/vitalgate/vitalgate/simulator"
	"github.com/vitalgate/vitalgate/vitals"
)

// mapOptions are the pcd01 options of the brief: the connection's device is deviceID, the
// only EUI-64 it may name is deviceID, and PID-3.1 is the patient id.
func mapOptions(deviceID string, now time.Time) pcd01.Options {
	return pcd01.Options{
		DeviceID:          deviceID,
		ExpectedDeviceIDs: []string{deviceID},
		ResolvePatient:    func(p pcd01.PatientIdentifier) (string, error) { return p.Value, nil },
		Now:               func() time.Time { return now },
	}
}

// TestNewPCD01Maps generates a message for every device kind and checks that hl7v2 parses it,
// that pcd01 maps it to one valid Observation per OBX, and the header, patient and equipment
// fields Vitalgate relies on.
func TestNewPCD01Maps(t *testing.T) {
	at := time.Date(2026, 3, 1, 11, 59, 30, 0, time.FixedZone("", 2*3600))
	now := at.Add(time.Minute)
	for _, deviceID := range []string{"monitor-0001", "00-1C-05-FF-FE-E8-74-01"} {
		for _, kind := range simulator.Kinds() {
			t.Run(deviceID+"/"+kind, func(t *testing.T) {
				gen, err := simulator.NewGenerator(kind, bytes.NewReader(make([]byte, 32)))
				if err != nil {
					t.Fatal(err)
				}
				readings := gen.Next()
				raw, err := simulator.NewPCD01(readings, deviceID, "patient-0001", at, "ctl-1")
				if err != nil {
					t.Fatalf("NewPCD01: %v", err)
				}
				if bytes.ContainsAny(raw, "\n") || !bytes.HasSuffix(raw, []byte("\r")) {
					t.Errorf("segments must end with CR only: %q", raw)
				}
				msg, err := hl7v2.Parse(raw, hl7v2.Limits{})
				if err != nil {
					t.Fatalf("Parse: %v\n%s", err, raw)
				}
				res, err := pcd01.Map(msg, mapOptions(deviceID, now))
				if err != nil {
					t.Fatalf("Map: %v\n%s", err, bytes.ReplaceAll(raw, []byte("\r"), []byte("\n")))
				}
				want := simulator.PCD01Count(readings)
				if len(res.Observations) != want || len(res.Skipped) != 0 {
					t.Fatalf("%d observations, %d skipped (%v); want %d and 0", len(res.Observations), len(res.Skipped), res.Skipped, want)
				}
				if n := len(msg.All("OBX")); n != want {
					t.Errorf("%d OBX, want %d", n, want)
				}
				for i, o := range res.Observations {
					if err := fhir.ValidateObservation(o, now); err != nil {
						t.Errorf("observation %d: %v", i, err)
					}
					if o.EffectiveDateTime != "2026-03-01T11:59:30+02:00" || o.Status != "final" {
						t.Errorf("observation %d: effective %s, status %s", i, o.EffectiveDateTime, o.Status)
					}
					if o.Subject.Reference != "Patient/patient-0001" || o.Device.Reference != "Device/"+deviceID {
						t.Errorf("observation %d: subject %s, device %s", i, o.Subject.Reference, o.Device.Reference)
					}
					var mdc, loinc bool
					for _, c := range o.Code.Coding {
						mdc = mdc || c.System == vitals.SystemMDC
						loinc = loinc || c.System == vitals.SystemLOINC
					}
					if !mdc || !loinc {
						t.Errorf("observation %d: code %+v, want MDC and LOINC codings", i, o.Code.Coding)
					}
				}
				h := msg.Segment("MSH")
				checks := map[string]string{
					"MSH-9":   strings.Join([]string{h.Field(9).Rep(1).Comp(1).Value(), h.Field(9).Rep(1).Comp(2).Value(), h.Field(9).Rep(1).Comp(3).Value()}, "^"),
					"MSH-10":  h.Field(10).Value(),
					"MSH-11":  h.Field(11).Value(),
					"MSH-12":  h.Field(12).Value(),
					"profile": res.Profile,
					"PID-3.4": res.Patient.Authority,
					"PID-3.5": res.Patient.Type,
				}
				wantChecks := map[string]string{
					"MSH-9": "ORU^R01^ORU_R01", "MSH-10": "ctl-1", "MSH-11": "P", "MSH-12": "2.6",
					"profile": "IHE_PCD_001", "PID-3.4": simulator.HL7PatientAuthority, "PID-3.5": "PI",
				}
				for k, v := range wantChecks {
					if checks[k] != v {
						t.Errorf("%s = %q, want %q", k, checks[k], v)
					}
				}
				if got := h.Field(21).Rep(1); got.Comp(3).Value() != "1.3.6.1.4.1.19376.1.6.1.1.1" || got.Comp(4).Value() != "ISO" {
					t.Errorf("MSH-21 = %v", got)
				}
				if res.SendingApp.Namespace != deviceID {
					t.Errorf("MSH-3 = %+v, want the device id", res.SendingApp)
				}
				obr := msg.Segment("OBR")
				if obr.Field(7).Value() != "20260301115930+0200" {
					t.Errorf("OBR-7 = %q", obr.Field(7).Value())
				}
				if msg.Segment("PV1") == nil {
					t.Error("no PV1")
				}
				for i, obx := range msg.All("OBX") {
					if obx.Field(11).Value() != "F" || obx.Field(4).Value() == "" || obx.Field(14).Value() == "" {
						t.Errorf("OBX %d: OBX-4 %q, OBX-11 %q, OBX-14 %q", i+1, obx.Field(4).Value(), obx.Field(11).Value(), obx.Field(14).Value())
					}
					if obx.Field(3).Rep(1).Comp(3).Value() != "MDC" || obx.Field(6).Rep(1).Comp(3).Value() != "MDC" {
						t.Errorf("OBX %d: OBX-3 and OBX-6 must be MDC coded", i+1)
					}
				}
				if strings.Contains(deviceID, "-1C-") {
					// An EUI-64 device id is named as such, so pcd01 checks it.
					if res.DeviceEUI64 != "001C05FFFEE87401" || len(res.EquipmentEUI64) != 1 || res.EquipmentEUI64[0] != "001C05FFFEE87401" {
						t.Errorf("EUI-64s: MSH-3 %q, OBX-18 %v", res.DeviceEUI64, res.EquipmentEUI64)
					}
					opt := mapOptions(deviceID, now)
					opt.ExpectedDeviceIDs = []string{"0000000000000001"}
					if _, err := pcd01.Map(msg, opt); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
						t.Errorf("Map for another device: %v, want EFORBIDDEN", err)
					}
				} else {
					obx := msg.Segment("OBX")
					if e := obx.Field(18).Rep(1); e.Comp(1).Value() != deviceID || e.Comp(2).Value() != simulator.HL7DeviceNamespace {
						t.Errorf("OBX-18 = %v, want %s^%s", e, deviceID, simulator.HL7DeviceNamespace)
					}
				}
			})
		}
	}
}

// TestNewPCD01Values checks that values reach the Observations unchanged, blood pressure as
// systolic and diastolic.
func TestNewPCD01Values(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	readings := []simulator.Reading{
		{Vital: simulator.BloodPressure, Value: 121, Diastolic: 79},
		{Vital: simulator.BodyTemperature, Value: 36.8},
		{Vital: simulator.BodyWeight, Value: 72.4},
	}
	raw, err := simulator.NewPCD01(readings, "dev-1", "pat-1", at, "c1")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := hl7v2.Parse(raw, hl7v2.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := pcd01.Map(msg, mapOptions("dev-1", at))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ loinc, value, unit, containment string }{
		{"8480-6", "121", "mm[Hg]", "1.1.1.1"},
		{"8462-4", "79", "mm[Hg]", "1.1.1.2"},
		{"8310-5", "36.8", "Cel", "1.2.1.1"},
		{"29463-7", "72.4", "kg", "1.3.1.1"},
	}
	if len(res.Observations) != len(want) {
		t.Fatalf("%d observations, want %d", len(res.Observations), len(want))
	}
	for i, o := range res.Observations {
		var loinc, cont string
		for _, c := range o.Code.Coding {
			if c.System == vitals.SystemLOINC {
				loinc = c.Code
			}
		}
		for _, id := range o.Identifier {
			if id.System == pcd01.ContainmentSystem {
				cont = id.Value
			}
		}
		w := want[i]
		if loinc != w.loinc || o.ValueQuantity.Value.String() != w.value || o.ValueQuantity.Code != w.unit || cont != w.containment {
			t.Errorf("observation %d: %s %s %s %s, want %+v", i, loinc, o.ValueQuantity.Value, o.ValueQuantity.Code, cont, w)
		}
	}
}

func TestNewPCD01Errors(t *testing.T) {
	at := time.Now()
	ok := []simulator.Reading{{Vital: simulator.HeartRate, Value: 70}}
	tests := []struct {
		name                 string
		readings             []simulator.Reading
		device, patient, ctl string
	}{
		{"no device", ok, "", "p", "c"},
		{"no patient", ok, "d", "", "c"},
		{"no control id", ok, "d", "p", ""},
		{"control id with CR", ok, "d", "p", "a\rb"},
		{"control id too long", ok, "d", "p", strings.Repeat("x", 200)},
		{"no readings", nil, "d", "p", "c"},
		{"unknown vital", []simulator.Reading{{Vital: "mood", Value: 1}}, "d", "p", "c"},
		{"NaN", []simulator.Reading{{Vital: simulator.HeartRate, Value: math.NaN()}}, "d", "p", "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := simulator.NewPCD01(tt.readings, tt.device, tt.patient, at, tt.ctl); err == nil {
				t.Error("NewPCD01 succeeded")
			}
		})
	}
}
