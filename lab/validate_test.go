package lab_test

import (
	"encoding/json"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/lab"
)

func labObs(loinc, value, unit string) *fhir.Observation {
	o := &fhir.Observation{
		Status:            "final",
		Category:          []fhir.CodeableConcept{{Coding: []fhir.Coding{{System: lab.CategorySystem, Code: "laboratory"}}}},
		Code:              &fhir.CodeableConcept{Coding: []fhir.Coding{{System: lab.LOINCSystem, Code: loinc}}},
		Subject:           &fhir.Reference{Reference: "Patient/p1"},
		EffectiveDateTime: "2026-12-01T08:00:00+00:00",
	}
	if value != "" {
		o.ValueQuantity = &fhir.Quantity{Value: json.Number(value), Unit: unit, System: lab.UCUMSystem, Code: unit}
	}
	return o
}

func TestValidateObservation(t *testing.T) {
	tests := []struct {
		name  string
		o     *fhir.Observation
		code  string
		field string
	}{
		{"potassium", labObs("6298-4", "4.1", "mmol/L"), "", ""},
		{"potassium in a mass unit", labObs("6298-4", "4.1", "mg/dL"), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.code"},
		{"potassium out of range", labObs("6298-4", "41", "mmol/L"), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.value"},
		{"pO2 in kPa", labObs("2703-7", "12", "kPa"), "", ""},
		{"glucose is a vital sign too", labObs("2339-0", "90", "mg/dL"), "", ""},
		{"glucose out of range (vitals)", labObs("2339-0", "2000", "mg/dL"), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.value"},
		{"unknown LOINC: structure only", labObs("30341-2", "20", "mm/h"), "", ""},
		{"unknown LOINC without UCUM", func() *fhir.Observation {
			o := labObs("30341-2", "20", "mm/h")
			o.ValueQuantity.System = "http://example.org/units"
			return o
		}(), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.system"},
		{"not a decimal", labObs("6298-4", "4,1", "mmol/L"), vitalgate.EINVALID, "Observation.valueQuantity.value"},
		{"no subject (fhir's rule)", func() *fhir.Observation { o := labObs("6298-4", "4.1", "mmol/L"); o.Subject = nil; return o }(),
			vitalgate.EUNPROCESSABLE, "Observation.subject"},
		{"no value and no reason", labObs("6298-4", "", ""), vitalgate.EUNPROCESSABLE, "Observation.value[x]"},
		{"nil", nil, vitalgate.EUNPROCESSABLE, "Observation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := lab.ValidateObservation(tt.o, now)
			if got := vitalgate.ErrorCode(err); got != tt.code {
				t.Fatalf("code %q, want %q (%v)", got, tt.code, err)
			}
			if got := vitalgate.ErrorField(err); got != tt.field {
				t.Errorf("field %q, want %q", got, tt.field)
			}
		})
	}
}

func TestReportAndSpecimenValidate(t *testing.T) {
	good := func() *lab.DiagnosticReport {
		return &lab.DiagnosticReport{Status: "final", Code: &fhir.CodeableConcept{Text: "panel"},
			Subject: &fhir.Reference{Reference: "Patient/p1"}, Issued: "2026-12-01T08:00:00+00:00",
			Result: []fhir.Reference{{Type: "Observation", Identifier: &fhir.Identifier{System: "urn:x", Value: "1"}}}}
	}
	bad := []struct {
		field string
		edit  func(*lab.DiagnosticReport)
	}{
		{"DiagnosticReport.status", func(r *lab.DiagnosticReport) { r.Status = "done" }},
		{"DiagnosticReport.code", func(r *lab.DiagnosticReport) { r.Code = nil }},
		{"DiagnosticReport.subject.reference", func(r *lab.DiagnosticReport) { r.Subject.Reference = "Patient/a b" }},
		{"DiagnosticReport.issued", func(r *lab.DiagnosticReport) { r.Issued = "2026-12-01" }},
		{"DiagnosticReport.result[0]", func(r *lab.DiagnosticReport) { r.Result[0].Identifier.Value = "" }},
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		r := good()
		b.edit(r)
		if err := r.Validate(); vitalgate.ErrorField(err) != b.field {
			t.Errorf("%s: err = %v at %q", b.field, err, vitalgate.ErrorField(err))
		}
	}
	s := &lab.Specimen{Status: "lost", Subject: &fhir.Reference{Reference: "Patient/p1"}}
	if err := s.Validate(); vitalgate.ErrorField(err) != "Specimen.status" {
		t.Errorf("err = %v", err)
	}
	s = &lab.Specimen{Subject: &fhir.Reference{Reference: "Patient/p1"},
		Collection: &lab.SpecimenCollection{CollectedDateTime: "2026-12-01", CollectedPeriod: &fhir.Period{Start: "2026-12-01"}}}
	if err := s.Validate(); vitalgate.ErrorField(err) != "Specimen.collection.collected[x]" {
		t.Errorf("err = %v", err)
	}
}
