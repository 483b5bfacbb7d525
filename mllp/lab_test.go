package mllp_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/simulator"
)

// labSample returns a lab/testdata message with its times moved so that MSH-7 is a minute
// ago, mutated by the replacements old → new.
func labSample(t *testing.T, name string, replace ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "lab", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(simulator.ShiftHL7Times(raw, time.Now().Add(-time.Minute)))
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("%s has no %q to replace", name, replace[i])
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return []byte(s)
}

// labPatient creates the Patient that a sample's PID-3 names (system from its assigning
// authority, as ingest resolves it) and returns its id.
func labPatient(t testing.TB, e *intakeEnv, authority hl7v2.HD, mrn string) string {
	t.Helper()
	admin := vitalgate.Principal{Kind: "client", ID: "admin", Role: vitalgate.RoleAdmin, Site: vitalgate.DefaultSite, Scopes: []string{"system/Patient.cruds"}}
	body, _ := json.Marshal(map[string]any{"resourceType": "Patient",
		"identifier": []any{map[string]any{"system": hl7v2.IdentifierSystem(authority, nil), "value": mrn}}})
	c, err := e.intake.Ingest.CreatePatient(context.Background(), admin, body)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

var generalHospitalOID = hl7v2.HD{Namespace: "General Hospital", UniversalID: "2.16.840.1.113883.19.5", UniversalIDType: "ISO"}

// stored returns the bodies of the stored resources of a type.
func stored(t *testing.T, e *intakeEnv, typ string) []map[string]any {
	t.Helper()
	var out []map[string]any
	err := e.store.Resources(context.Background(), vitalgate.ResourceFilter{Type: typ}, func(r vitalgate.SealedResource) error {
		b, err := e.vault.Open(context.Background(), r)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// byCode finds the stored Observation with a LOINC code.
func byCode(obs []map[string]any, code string) map[string]any {
	for _, o := range obs {
		b, _ := json.Marshal(o["code"])
		if strings.Contains(string(b), `"code":"`+code+`"`) {
			return o
		}
	}
	return nil
}

func version(r map[string]any) string {
	m, _ := r["meta"].(map[string]any)
	v, _ := m["versionId"].(string)
	return v
}

// TestLabMessages sends the real lab samples (lab/testdata, times moved to now) and mutated
// copies to the intake: each gets its ACK code, ERR location and condition, and what is
// stored is exactly what the accepted messages hold, corrections and cancellations as new
// versions of the results they change, retransmissions as nothing.
func TestLabMessages(t *testing.T) {
	type send struct {
		msg       func(t *testing.T) []byte
		ack, cond string
		errLoc    string // ERR-2 segment and field, e.g. "OBX^1^3"
	}
	sample := func(name string, replace ...string) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return labSample(t, name, replace...) }
	}
	// resent is one message sent twice: the sample shifted once, so that both sends are the
	// same bytes (two shifts a second apart are two messages).
	resent := func(f func(t *testing.T) []byte) func(t *testing.T) []byte {
		var b []byte
		return func(t *testing.T) []byte {
			if b == nil {
				b = f(t)
			}
			return b
		}
	}
	bloodGasTwice := resent(sample("10_spec_poc_blood_gas_oru_r01.hl7"))
	tests := []struct {
		name    string
		device  string
		binding vitalgate.Binding
		unknown bool // serve --lab-accept-unknown-codes
		sends   []send
		// stored counts after the sends: Observations, DiagnosticReports, Specimens
		obs, reports, specimens int
		check                   func(t *testing.T, e *intakeEnv)
	}{
		{name: "blood gas, identified", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7"), ack: "AA"}}, obs: 14, reports: 1, specimens: 1,
			check: func(t *testing.T, e *intakeEnv) {
				obs := stored(t, e, "Observation")
				k := byCode(obs, "6298-4")
				cat, _ := json.Marshal(k["category"])
				spec, _ := k["specimen"].(map[string]any)
				if !strings.Contains(string(cat), `"laboratory"`) || !strings.HasPrefix(spec["reference"].(string), "Specimen/") {
					t.Errorf("potassium stored as %v", k)
				}
				r := stored(t, e, "DiagnosticReport")[0]
				res, _ := r["result"].([]any)
				if len(res) != 14 || !strings.HasPrefix(res[0].(map[string]any)["reference"].(string), "Observation/") {
					t.Errorf("report results %v", r["result"])
				}
			}},
		{name: "correction and cancellation are new versions", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{
				{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7"), ack: "AA"},
				{msg: sample("13_spec_correction_oru_r01.hl7"), ack: "AA"},
				{msg: sample("14_spec_cancellation_oru_r01.hl7"), ack: "AA"},
			}, obs: 14, reports: 1, specimens: 1,
			check: func(t *testing.T, e *intakeEnv) {
				obs := stored(t, e, "Observation")
				for _, c := range []struct{ code, status, version string }{
					{"6298-4", "corrected", "2"}, {"2947-0", "final", "2"}, {"32693-4", "cancelled", "2"},
					{"2339-0", "entered-in-error", "2"}, {"2744-1", "final", "1"},
				} {
					o := byCode(obs, c.code)
					if o == nil || o["status"] != c.status || version(o) != c.version {
						t.Errorf("%s: status %v version %v, want %s %s", c.code, o["status"], version(o), c.status, c.version)
					}
				}
				if k := byCode(obs, "6298-4"); !strings.Contains(mustJSONString(k["valueQuantity"]), "5.4") {
					t.Errorf("corrected potassium %v", k["valueQuantity"])
				}
			}},
		{name: "retransmission stored once", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: bloodGasTwice, ack: "AA"}, {msg: bloodGasTwice, ack: "AA"}},
			obs:   14, reports: 1, specimens: 1,
			check: func(t *testing.T, e *intakeEnv) {
				for _, o := range stored(t, e, "Observation") {
					if version(o) != "1" {
						t.Errorf("a retransmitted result has version %s", version(o))
					}
				}
			}},
		{name: "glucose meter v2.6", device: "gm-ward5-0421", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("11_spec_glucose_meter_oru_r01.hl7"), ack: "AA"}}, obs: 1, reports: 1, specimens: 1},
		{name: "LAW OUL^R22", device: "analyzer-c3", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("12_spec_law_oul_r22_spm.hl7"), ack: "AA"}}, obs: 3, reports: 3, specimens: 1},
		{name: "unknown analyte", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7", "2744-1^pH", "99999-9^pH"), ack: "AE", cond: "103", errLoc: "OBX^1^3"}}},
		{name: "unknown analyte, accepted as configured", device: "bga-icu-01", binding: vitalgate.BindingIdentified, unknown: true,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7", "2019-8^Carbon", "99999-9^Carbon"), ack: "AA"}}, obs: 14, reports: 1, specimens: 1},
		{name: "bad unit", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7", "52|mm[Hg]^mmHg^UCUM", "52|mL^mL^UCUM"), ack: "AE", cond: "103", errLoc: "OBX^2^6"}}},
		{name: "implausible value", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7", "||7.31||", "||9.31||"), ack: "AE", cond: "102", errLoc: "OBX^1^5"}}},
		{name: "measured more than a week ago", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: func(t *testing.T) []byte {
				return simulator.ShiftHL7Times(labSample(t, "10_spec_poc_blood_gas_oru_r01.hl7"), time.Now().Add(-8*24*time.Hour))
			}, ack: "AE", errLoc: "OBX^1^14"}}},
		{name: "patient not of the site", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7", "MRN-40021", "MRN-99999"), ack: "AR", cond: "204", errLoc: "PID^1^3"}}},
		{name: "assigned device, another patient", device: "bga-icu-01", binding: vitalgate.BindingAssigned,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7"), ack: "AR", cond: "204"}}},
		{name: "assigned device, its patient", device: "bga-icu-01", binding: vitalgate.BindingAssigned,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7", "MRN-40021^^^General Hospital&2.16.840.1.113883.19.5&ISO^MR", "pat-1^^^VITALGATE^PI"), ack: "AA"}},
			obs:   14, reports: 1, specimens: 1},
		{name: "another sending device", device: "bga-icu-02", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7"), ack: "AR", cond: "204", errLoc: "MSH^1^3"}}},
		{name: "processing id T", device: "bga-icu-01", binding: vitalgate.BindingIdentified,
			sends: []send{{msg: sample("10_spec_poc_blood_gas_oru_r01.hl7", "|BG-0001|P|", "|BG-0001|T|"), ack: "AR", cond: "202"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustIntakeFor(t, tt.device)
			e.reg.binding = tt.binding
			e.intake.Ingest.LabAcceptUnknownCodes = tt.unknown
			for _, mrn := range []string{"MRN-40021"} {
				labPatient(t, e, generalHospitalOID, mrn)
			}
			labPatient(t, e, hl7v2.HD{Namespace: "General Hospital"}, "MRN-40022")
			labPatient(t, e, hl7v2.HD{Namespace: "General Hospital"}, "MRN-40023")
			for i, s := range tt.sends {
				ack := e.intake.HandleMLLP(context.Background(), e.conn, s.msg(t))
				code, cond := ackOf(t, ack)
				if code != s.ack || (s.cond != "" && cond != s.cond) {
					t.Fatalf("send %d: ACK %s %s, want %s %s\n%s", i+1, code, cond, s.ack, s.cond, strings.ReplaceAll(string(ack), "\r", "\n"))
				}
				if s.errLoc != "" {
					m, _ := hl7v2.Parse(ack, hl7v2.Limits{})
					r := m.Segment("ERR").Field(2).Rep(1)
					if got := r.Comp(1).Value() + "^" + r.Comp(2).Value() + "^" + r.Comp(3).Value(); got != s.errLoc {
						t.Errorf("send %d: ERR-2 %s, want %s", i+1, got, s.errLoc)
					}
				}
			}
			for _, c := range []struct {
				typ  string
				want int
			}{{"Observation", tt.obs}, {"DiagnosticReport", tt.reports}, {"Specimen", tt.specimens}} {
				if n := len(stored(t, e, c.typ)); n != c.want {
					t.Errorf("%d %s stored, want %d", n, c.typ, c.want)
				}
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func mustJSONString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// FuzzLabIntake feeds mutated lab messages (seeds: the lab/testdata samples, times moved to
// now) through the whole intake over a real store, as an identified analyzer: every message
// gets an ACK that parses, AA, AE or AR, for the message's own control id, with an ERR
// segment unless it is AA.
func FuzzLabIntake(f *testing.F) {
	names, err := filepath.Glob(filepath.Join("..", "lab", "testdata", "*.hl7"))
	if err != nil || len(names) == 0 {
		f.Fatalf("no lab samples: %v", err)
	}
	for _, n := range names {
		raw, err := os.ReadFile(n) // #nosec G304 -- a test sample
		if err != nil {
			f.Fatal(err)
		}
		f.Add(simulator.ShiftHL7Times(raw, time.Now().Add(-time.Minute)))
	}
	e := mustIntakeFor(f, "bga-icu-01")
	e.reg.binding = vitalgate.BindingIdentified
	labPatient(f, e, generalHospitalOID, "MRN-40021")
	f.Fuzz(func(t *testing.T, msg []byte) {
		ack := e.intake.HandleMLLP(context.Background(), e.conn, msg)
		m, err := hl7v2.Parse(ack, hl7v2.Limits{})
		if err != nil {
			t.Fatalf("ACK does not parse: %v\n%q", err, ack)
		}
		code := m.Segment("MSA").Field(1).Value()
		switch code {
		case "AA":
		case "AE", "AR":
			if m.Segment("ERR") == nil {
				t.Fatalf("%s without an ERR segment", code)
			}
		default:
			t.Fatalf("ACK code %q", code)
		}
		if in, err := hl7v2.Parse(msg, hl7v2.Limits{}); err == nil && in.Segment("MSH") != nil {
			if got, want := m.Segment("MSA").Field(2).Value(), in.Segment("MSH").Field(10).Value(); got != want {
				t.Fatalf("MSA-2 %q, want the message's MSH-10 %q", got, want)
			}
		}
	})
}
