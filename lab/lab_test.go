package lab_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func mustRead(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func mustParse(tb testing.TB, b []byte) *hl7v2.Message {
	tb.Helper()
	m, err := hl7v2.Parse(b, hl7v2.Limits{})
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return m
}

// options returns Options that resolve every patient to "pat-1" and accept test messages.
func options() lab.Options {
	return lab.Options{
		DeviceID: "dev-1",
		ResolvePatient: func(p lab.PatientIdentifier) (string, error) {
			if p.Value == "" {
				return "", errors.New("empty id")
			}
			return "pat-1", nil
		},
		Now:           func() time.Time { return now },
		ProcessingIDs: []string{"P", "T"},
	}
}

// golden is what a golden file holds: the whole mapping of one message.
type golden struct {
	MessageType      string
	Version          string
	MessageControlID string
	Profiles         []string
	Patient          lab.PatientIdentifier
	Results          []goldenEntry
	Reports          []json.RawMessage
	Specimens        []json.RawMessage
	Skipped          []string
}

type goldenEntry struct {
	At          string
	Key         string
	Change      string
	Report      int
	Equipment   []string `json:",omitempty"`
	Observation json.RawMessage
}

func mustJSON(tb testing.TB, v interface{ Marshal() ([]byte, error) }) json.RawMessage {
	tb.Helper()
	b, err := v.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func toGolden(tb testing.TB, r *lab.Result) []byte {
	tb.Helper()
	g := golden{MessageType: r.MessageType, Version: r.Version, MessageControlID: r.MessageControlID,
		Profiles: r.Profiles, Patient: r.Patient}
	for _, e := range r.Results {
		ge := goldenEntry{At: e.Loc.String(), Key: e.Key.System + "|" + e.Key.Value, Change: e.Change.String(),
			Report: e.Report, Observation: mustJSON(tb, e.Observation)}
		for _, q := range e.Equipment {
			ge.Equipment = append(ge.Equipment, q.System+"|"+q.Value)
		}
		g.Results = append(g.Results, ge)
	}
	for _, d := range r.Reports {
		g.Reports = append(g.Reports, mustJSON(tb, d))
	}
	for _, s := range r.Specimens {
		g.Specimens = append(g.Specimens, mustJSON(tb, s))
	}
	for _, s := range r.Skipped {
		g.Skipped = append(g.Skipped, s.Loc.String()+": "+s.Reason)
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	return append(b, '\n')
}

// checkResources checks the FHIR properties every success must have: each resource is
// valid, decodes strictly (Observations through fhir's strict decoder) and re-encodes to the
// same bytes.
func checkResources(tb testing.TB, r *lab.Result) {
	tb.Helper()
	for _, e := range r.Results {
		o := e.Observation
		if err := lab.ValidateObservation(o, now); err != nil {
			tb.Fatalf("%s: ValidateObservation: %v", e.Loc, err)
		}
		b, err := o.Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		back, err := fhir.DecodeObservation(b)
		if err != nil {
			tb.Fatalf("%s: strict decode of %s: %v", e.Loc, b, err)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(b, again) {
			tb.Fatalf("%s: round trip\n%s\n%s", e.Loc, b, again)
		}
		if len(o.Identifier) == 0 || o.Identifier[0] != e.Key {
			tb.Fatalf("%s: identifier[0] %+v is not the key %+v", e.Loc, o.Identifier, e.Key)
		}
	}
	for _, d := range r.Reports {
		if err := d.Validate(); err != nil {
			tb.Fatalf("report: %v", err)
		}
		roundTrip(tb, d, &lab.DiagnosticReport{})
	}
	for _, s := range r.Specimens {
		if err := s.Validate(); err != nil {
			tb.Fatalf("specimen: %v", err)
		}
		roundTrip(tb, s, &lab.Specimen{})
	}
}

// roundTrip checks that v marshals to JSON that decodes (unknown fields refused, apart from
// resourceType) into into and marshals again to the same bytes.
func roundTrip(tb testing.TB, v, into interface{ Marshal() ([]byte, error) }) {
	tb.Helper()
	b, err := v.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		tb.Fatal(err)
	}
	delete(top, "resourceType")
	body, _ := json.Marshal(top)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	again, _ := into.Marshal()
	if !bytes.Equal(b, again) {
		tb.Fatalf("round trip\n%s\n%s", b, again)
	}
}

// samples are the messages of testdata with what Map makes of them.
var samples = []struct {
	file                          string
	acceptUnknown                 bool
	results, reports, specs, skip int
}{
	{"01_nist_lri_gu_ru_005_hepatitis_panel.hl7", true, 10, 2, 1, 0},
	{"02_nist_lri_gu_001_esr_corrected.hl7", true, 1, 1, 1, 0},
	{"03_ihe_ltw_oul_r22_glucose_tolerance.hl7", true, 5, 1, 5, 1},
	{"10_spec_poc_blood_gas_oru_r01.hl7", false, 14, 1, 1, 0},
	{"11_spec_glucose_meter_oru_r01.hl7", false, 1, 1, 1, 0},
	{"12_spec_law_oul_r22_spm.hl7", false, 3, 3, 1, 0},
	{"13_spec_correction_oru_r01.hl7", false, 2, 1, 1, 0},
	{"14_spec_cancellation_oru_r01.hl7", false, 2, 1, 1, 0},
}

func TestMapGolden(t *testing.T) {
	for _, tt := range samples {
		t.Run(tt.file, func(t *testing.T) {
			opt := options()
			opt.AcceptUnknownCodes = tt.acceptUnknown
			msg := mustParse(t, mustRead(t, tt.file))
			if !lab.Recognize(msg) {
				t.Errorf("Recognize = false")
			}
			res, err := lab.Map(msg, opt)
			if err != nil {
				t.Fatalf("Map: %v (at %s)", err, vitalgate.ErrorField(err))
			}
			checkResources(t, res)
			if len(res.Results) != tt.results || len(res.Reports) != tt.reports || len(res.Specimens) != tt.specs || len(res.Skipped) != tt.skip {
				t.Errorf("results %d reports %d specimens %d skipped %d, want %d %d %d %d",
					len(res.Results), len(res.Reports), len(res.Specimens), len(res.Skipped), tt.results, tt.reports, tt.specs, tt.skip)
			}
			got := toGolden(t, res)
			path := filepath.Join("testdata", "golden", strings.TrimSuffix(tt.file, ".hl7")+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil { // #nosec G306 -- test golden file
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./lab -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("mapping differs from %s (go test ./lab -update rewrites it):\n%s", path, got)
			}
		})
	}
}

// TestUnknownCodesRefusedByDefault: the public LRI and LTW samples use analytes outside the
// point-of-care table; without AcceptUnknownCodes they are refused at OBX-3.
func TestUnknownCodesRefusedByDefault(t *testing.T) {
	for _, tt := range samples {
		if !tt.acceptUnknown {
			continue
		}
		t.Run(tt.file, func(t *testing.T) {
			_, err := lab.Map(mustParse(t, mustRead(t, tt.file)), options())
			if vitalgate.ErrorCode(err) != vitalgate.EUNPROCESSABLE || hl7v2.ErrorCondition(err) != hl7v2.CondTableValue ||
				!strings.HasPrefix(vitalgate.ErrorField(err), "OBX") || !strings.Contains(vitalgate.ErrorField(err), "-3") {
				t.Fatalf("err = %v (%s, %s, %s)", err, vitalgate.ErrorCode(err), hl7v2.ErrorCondition(err), vitalgate.ErrorField(err))
			}
		})
	}
}

// TestCorrectionIsNewVersionOfSameKey: the corrected potassium and the deleted glucose keep
// the key of the first report's results, so a store replaces them instead of adding
// duplicates; the message-position identifiers differ.
func TestCorrectionIsNewVersionOfSameKey(t *testing.T) {
	mapFile := func(name string) *lab.Result {
		res, err := lab.Map(mustParse(t, mustRead(t, name)), options())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	first := mapFile("10_spec_poc_blood_gas_oru_r01.hl7")
	keys := map[string]lab.Entry{}
	for _, e := range first.Results {
		if _, dup := keys[e.Key.Value]; dup {
			t.Fatalf("key %s twice in one message", e.Key.Value)
		}
		keys[e.Key.Value] = e
	}
	tests := []struct {
		file   string
		code   string
		change lab.Change
		status string
	}{
		{"13_spec_correction_oru_r01.hl7", "6298-4", lab.Correct, "corrected"},
		{"13_spec_correction_oru_r01.hl7", "2947-0", lab.Record, "final"},
		{"14_spec_cancellation_oru_r01.hl7", "32693-4", lab.Cancel, "cancelled"},
		{"14_spec_cancellation_oru_r01.hl7", "2339-0", lab.Delete, "entered-in-error"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.code, func(t *testing.T) {
			var found *lab.Entry
			res := mapFile(tt.file)
			for i, e := range res.Results {
				if e.Observation.Code.Coding[0].Code == tt.code {
					found = &res.Results[i]
				}
			}
			if found == nil {
				t.Fatalf("no result %s", tt.code)
			}
			orig, ok := keys[found.Key.Value]
			if !ok || orig.Key != found.Key {
				t.Fatalf("key %+v is not a key of the first report", found.Key)
			}
			if found.Change != tt.change || found.Observation.Status != tt.status {
				t.Errorf("change %s status %s, want %s %s", found.Change, found.Observation.Status, tt.change, tt.status)
			}
			if found.Observation.Identifier[1] == orig.Observation.Identifier[1] {
				t.Errorf("message-position identifiers are equal: %+v", found.Observation.Identifier[1])
			}
			if tt.change == lab.Cancel || tt.change == lab.Delete {
				if found.Observation.HasValue() || found.Observation.DataAbsentReason == nil {
					t.Errorf("a cancelled or deleted result has a value or no dataAbsentReason")
				}
			}
		})
	}
}

// TestPatientIdentifierAsPCD01: PID-3 comes out as pcd01 exposes it, so that ingest resolves
// it with hl7v2.IdentifierSystem and the same table.
func TestPatientIdentifierAsPCD01(t *testing.T) {
	var seen lab.PatientIdentifier
	opt := options()
	opt.ResolvePatient = func(p lab.PatientIdentifier) (string, error) { seen = p; return "pat-9", nil }
	res, err := lab.Map(mustParse(t, mustRead(t, "10_spec_poc_blood_gas_oru_r01.hl7")), opt)
	if err != nil {
		t.Fatal(err)
	}
	want := lab.PatientIdentifier{Value: "MRN-40021", Authority: "General Hospital", Type: "MR",
		Assigner: lab.HD{Namespace: "General Hospital", UniversalID: "2.16.840.1.113883.19.5", UniversalIDType: "ISO"}}
	if seen != want || res.Patient != want || res.PatientID != "pat-9" || res.PatientLoc.String() != "PID-3" {
		t.Fatalf("patient %+v (%+v) %q at %s", seen, res.Patient, res.PatientID, res.PatientLoc)
	}
	if sys := hl7v2.IdentifierSystem(seen.Assigner, nil); sys != "urn:oid:2.16.840.1.113883.19.5" {
		t.Errorf("system %q", sys)
	}
	for _, o := range res.Observations() {
		if id, _ := o.SubjectID(); id != "pat-9" {
			t.Errorf("subject %q", id)
		}
	}
	// A resolver's refusal keeps its code and is located at PID-3.
	opt.ResolvePatient = func(lab.PatientIdentifier) (string, error) {
		return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no such patient")
	}
	_, err = lab.Map(mustParse(t, mustRead(t, "10_spec_poc_blood_gas_oru_r01.hl7")), opt)
	if vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND || vitalgate.ErrorField(err) != "PID-3" || hl7v2.ErrorCondition(err) != hl7v2.CondUnknownKey {
		t.Errorf("err = %v at %s", err, vitalgate.ErrorField(err))
	}
}

func TestRecognize(t *testing.T) {
	pcd, err := os.ReadFile(filepath.Join("..", "pcd01", "testdata", "02_ipf_pcd01_nibp.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		msg  string
		want bool
	}{
		{"IHE PCD-01 sample", string(pcd), false},
		{"OUL^R22", "MSH|^~\\&|A|B|||20260101||OUL^R22^OUL_R22|1|P|2.5.1\r", true},
		{"LRI profile", "MSH|^~\\&|A|B|||20260101||ORU^R01^ORU_R01|1|P|2.6|||||||||LRI_NG_RN_Profile^^2.16.840.1.113883.9.20^ISO\r", true},
		{"v2.5.1 ORU", "MSH|^~\\&|A|B|||20260101||ORU^R01|1|P|2.5.1\r", true},
		{"v2.6 ORU with a lab analyte", "MSH|^~\\&|A|B|||20260101||ORU^R01|1|P|2.6\rOBR|1\rOBX|1|NM|2823-3^K^LN||4|mmol/L|||||F\r", true},
		{"v2.6 ORU with a vital sign in LOINC", "MSH|^~\\&|A|B|||20260101||ORU^R01|1|P|2.6\rOBR|1\rOBX|1|NM|8867-4^HR^LN||60|/min|||||F\r", false},
		{"v2.6 ORU with MDC codes", "MSH|^~\\&|A|B|||20260101||ORU^R01|1|P|2.6\rOBR|1\rOBX|1|NM|2823-3^K^LN||4|mmol/L|||||F\rOBX|2|NM|147842^HR^MDC||60|/min|||||F\r", false},
		{"ADT", "MSH|^~\\&|A|B|||20260101||ADT^A01|1|P|2.5.1\r", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lab.Recognize(mustParse(t, []byte(tt.msg))); got != tt.want {
				t.Errorf("Recognize = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChangeString(t *testing.T) {
	got := []string{lab.Record.String(), lab.Correct.String(), lab.Cancel.String(), lab.Delete.String(), lab.Change(0).String()}
	if want := []string{"record", "correct", "cancel", "delete", "unknown"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v", got)
	}
}
