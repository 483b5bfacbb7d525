package vitalgate_test

import (
	"testing"

	"github.com/vitalgate/vitalgate"
)

// TestResourceFilterLead checks which filter leads the stores' query: an identifier before
// everything else, so that the resend check of an observation never walks the patient's
// history (security review finding 1), and what Validate refuses.
func TestResourceFilterLead(t *testing.T) {
	p, c, x := []byte("patient"), []byte("code"), []byte("identifier")
	tests := []struct {
		name    string
		f       vitalgate.ResourceFilter
		lead    vitalgate.ResourceLead
		invalid bool
	}{
		{"everything", vitalgate.ResourceFilter{}, vitalgate.LeadAll, false},
		{"type", vitalgate.ResourceFilter{Type: "Observation"}, vitalgate.LeadType, false},
		{"code", vitalgate.ResourceFilter{Type: "Observation", CodeIndex: c}, vitalgate.LeadCode, false},
		{"patient before code", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: p, CodeIndex: c}, vitalgate.LeadPatient, false},
		{"by date", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: p, ByEffective: true}, vitalgate.LeadEffectiveAsc, false},
		{"by date, newest first", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: p, ByEffective: true, Desc: true}, vitalgate.LeadEffectiveDesc, false},
		{"identifier before patient", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: p, CodeIndex: c, IdentifierIndex: x}, vitalgate.LeadPatientIdentifier, false},
		{"patient by identifier", vitalgate.ResourceFilter{Type: "Patient", IdentifierIndex: x}, vitalgate.LeadPatientsByIdentifier, false},
		{"date without patient", vitalgate.ResourceFilter{Type: "Observation", ByEffective: true}, 0, true},
		{"identifier without type", vitalgate.ResourceFilter{PatientIndex: p, IdentifierIndex: x}, 0, true},
		{"observation identifier without patient", vitalgate.ResourceFilter{Type: "Observation", IdentifierIndex: x}, 0, true},
		{"identifier by date", vitalgate.ResourceFilter{Type: "Observation", PatientIndex: p, IdentifierIndex: x, ByEffective: true}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if tt.invalid {
				if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
					t.Fatalf("Validate = %v, want EINVALID", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate = %v", err)
			}
			if got := tt.f.Lead(); got != tt.lead {
				t.Errorf("Lead = %d, want %d", got, tt.lead)
			}
		})
	}
}

// TestCheckWrite checks the input checks both stores apply to CreateResources.
func TestCheckWrite(t *testing.T) {
	ok := vitalgate.SealedResource{Type: "Observation", ID: "o", Body: []byte("x")}
	tests := []struct {
		name  string
		rs    []vitalgate.SealedResource
		audit [][]byte
		code  string
	}{
		{"valid", []vitalgate.SealedResource{ok}, [][]byte{[]byte("e")}, ""},
		{"no type", []vitalgate.SealedResource{ok, {ID: "o", Body: []byte("x")}}, nil, vitalgate.EINVALID},
		{"no id", []vitalgate.SealedResource{{Type: "Observation", Body: []byte("x")}}, nil, vitalgate.EINVALID},
		{"no body", []vitalgate.SealedResource{{Type: "Observation", ID: "o"}}, nil, vitalgate.EINVALID},
		{"empty audit entry", []vitalgate.SealedResource{ok}, [][]byte{[]byte("e"), nil}, vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := vitalgate.ErrorCode(vitalgate.CheckWrite(tt.rs, tt.audit)); got != tt.code {
				t.Errorf("CheckWrite: code %q, want %q", got, tt.code)
			}
		})
	}
}
