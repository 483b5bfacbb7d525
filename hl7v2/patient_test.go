package hl7v2_test

import (
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
)

func TestResolvePID3(t *testing.T) {
	const msh = "MSH|^~\\&|MON|WARD|VG|HOSP|20261202080000||ORU^R01^ORU_R01|42|P|2.6\r"
	found := func(hl7v2.PatientIdentifier) (string, error) { return "patient-1", nil }
	tests := []struct {
		name     string
		msg      string
		resolve  func(hl7v2.PatientIdentifier) (string, error)
		wantCond string // "" for success
		wantID   hl7v2.PatientIdentifier
		wantRep  int
	}{
		{"first repetition with a value", msh + "PID|1||\"\"~MRN7^^^HOSP^MR~OTHER^^^X\r", found, "",
			hl7v2.PatientIdentifier{Value: "MRN7", Authority: "HOSP", Assigner: hl7v2.HD{Namespace: "HOSP"}, Type: "MR"}, 2},
		{"universal id when no namespace", msh + "PID|1||MRN7^^^&1.2.3&ISO\r", found, "",
			hl7v2.PatientIdentifier{Value: "MRN7", Authority: "1.2.3", Assigner: hl7v2.HD{UniversalID: "1.2.3", UniversalIDType: "ISO"}}, 1},
		{"no PID segment", msh, found, hl7v2.CondSegmentSequence, hl7v2.PatientIdentifier{}, 0},
		{"empty PID-3", msh + "PID|1||\r", found, hl7v2.CondRequiredMissing, hl7v2.PatientIdentifier{}, 0},
		{"unknown patient", msh + "PID|1||MRN7\r", func(hl7v2.PatientIdentifier) (string, error) {
			return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no such patient")
		}, hl7v2.CondUnknownKey, hl7v2.PatientIdentifier{Value: "MRN7"}, 1},
		{"store unavailable", msh + "PID|1||MRN7\r", func(hl7v2.PatientIdentifier) (string, error) {
			return "", vitalgate.Errorf(vitalgate.EUNAVAILABLE, "database busy")
		}, hl7v2.CondInternal, hl7v2.PatientIdentifier{Value: "MRN7"}, 1},
		{"resolver returns no patient id", msh + "PID|1||MRN7\r", func(hl7v2.PatientIdentifier) (string, error) {
			return "not an id!", nil
		}, hl7v2.CondInternal, hl7v2.PatientIdentifier{Value: "MRN7"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := hl7v2.Parse([]byte(tt.msg), hl7v2.Limits{})
			if err != nil {
				t.Fatal(err)
			}
			p, l, id, err := hl7v2.ResolvePID3(m, "", tt.resolve)
			if got := hl7v2.ErrorCondition(err); got != tt.wantCond {
				t.Fatalf("condition = %q (%v), want %q", got, err, tt.wantCond)
			}
			if p != tt.wantID || l.Rep != tt.wantRep {
				t.Errorf("identifier = %+v at rep %d, want %+v at rep %d", p, l.Rep, tt.wantID, tt.wantRep)
			}
			if tt.wantCond == "" && id != "patient-1" {
				t.Errorf("id = %q", id)
			}
		})
	}
}
