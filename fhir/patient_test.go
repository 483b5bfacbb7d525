package fhir_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

func fromPatient(pairs ...string) func(testing.TB) string {
	return fromFile("Patient-example.json", pairs...)
}

const mrnSystem = `"system": "urn:oid:1.2.36.146.595.217.0.1",`

var patientCases = []errCase{
	{"valid example", fromPatient(), "", ""},
	{"birth year only", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "1974"`), "", ""},
	{"birth month only", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "1974-12"`), "", ""},
	{"born today", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "2026-01-02"`), "", ""},
	{"no gender", fromPatient(`"gender": "male",`, ``), "", ""},
	{"gender unknown", fromPatient(`"gender": "male"`, `"gender": "unknown"`), "", ""},
	{"minimal", raw(`{"resourceType":"Patient","identifier":[{"system":"https://hospital.example/mrn","value":"A|1"}]}`), "", ""},
	{"second identifier without system", fromPatient(`"identifier": [`, `"identifier": [{"value": "local-7"},`), "", ""},

	// Strict decoding: EINVALID.
	{"unknown element", fromPatient(`"gender"`, `"gendre"`), vitalgate.EINVALID, "Patient.gendre"},
	{"unsupported deceasedBoolean", fromPatient(`"active": true,`, `"active": true, "deceasedBoolean": false,`), vitalgate.EINVALID, "Patient.deceasedBoolean"},
	{"unsupported address", fromPatient(`"active": true,`, `"active": true, "address": [{"city": "PleasantVille"}],`), vitalgate.EINVALID, "Patient.address"},
	{"birthTime extension", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "1974-12-25", "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]}`), vitalgate.EINVALID, "Patient._birthDate"},
	{"extension", fromPatient(`"active": true,`, `"active": true, "extension": [{"url": "http://x"}],`), vitalgate.EINVALID, "Patient.extension"},
	{"modifierExtension in name", fromPatient(`"use": "official",`, `"use": "official", "modifierExtension": [{"url": "http://x"}],`), vitalgate.EINVALID, "Patient.name[0].modifierExtension"},
	{"resourceType Observation", fromPatient(`"resourceType": "Patient"`, `"resourceType": "Observation"`), vitalgate.EINVALID, "Patient.resourceType"},
	{"resourceType missing", fromPatient(`"resourceType": "Patient",`, ``), vitalgate.EINVALID, "Patient.resourceType"},
	{"observation is not a patient", raw(base), vitalgate.EINVALID, "Patient.resourceType"},
	{"active as string", fromPatient(`"active": true`, `"active": "true"`), vitalgate.EINVALID, "Patient.active"},
	{"given not an array", fromPatient(`"given": [
        "Jim"
      ]`, `"given": "Jim"`), vitalgate.EINVALID, "Patient.name[1].given"},
	{"given empty array", fromPatient(`"given": [
        "Jim"
      ]`, `"given": []`), vitalgate.EINVALID, "Patient.name[1].given"},
	{"given empty string", fromPatient(`"Jim"`, `""`), vitalgate.EINVALID, "Patient.name[1].given[0]"},
	{"rank not integer", fromPatient(`"rank": 1`, `"rank": 1.5`), vitalgate.EINVALID, "Patient.telecom[1].rank"},
	{"duplicate gender", fromPatient(`"gender": "male",`, `"gender": "male", "gender": "female",`), vitalgate.EINVALID, "Patient.gender"},
	{"null birthDate", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": null`), vitalgate.EINVALID, "Patient.birthDate"},
	{"trailing data", func(tb testing.TB) string { return fromPatient()(tb) + "[]" }, vitalgate.EINVALID, ""},

	// Validation.
	{"gender M", fromPatient(`"gender": "male"`, `"gender": "M"`), vitalgate.EUNPROCESSABLE, "Patient.gender"},
	{"birthDate with time", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "1974-12-25T14:35:45-05:00"`), vitalgate.EINVALID, "Patient.birthDate"},
	{"birthDate impossible", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "1974-02-30"`), vitalgate.EINVALID, "Patient.birthDate"},
	{"birthDate slashes", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "25/12/1974"`), vitalgate.EINVALID, "Patient.birthDate"},
	{"birthDate future", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "2026-01-04"`), vitalgate.EUNPROCESSABLE, "Patient.birthDate"},
	{"birth year future", fromPatient(`"birthDate": "1974-12-25"`, `"birthDate": "2027"`), vitalgate.EUNPROCESSABLE, "Patient.birthDate"},
	{"misspelt identifier", fromPatient(`"identifier": [`, `"identifier_": [`), vitalgate.EINVALID, "Patient.identifier_"},
	{"no identifier", raw(`{"resourceType":"Patient","gender":"male","birthDate":"1974"}`), vitalgate.EUNPROCESSABLE, "Patient.identifier"},
	{"identifier without system", fromPatient(mrnSystem, ``), vitalgate.EUNPROCESSABLE, "Patient.identifier"},
	{"identifier without value", fromPatient(`"value": "12345",`, ``), vitalgate.EUNPROCESSABLE, "Patient.identifier"},
	{"identifier system with bar", fromPatient(`urn:oid:1.2.36.146.595.217.0.1`, `urn:oid:1|2`), vitalgate.EINVALID, "Patient.identifier[0].system"},
	{"identifier system relative", fromPatient(`urn:oid:1.2.36.146.595.217.0.1`, `mrn`), vitalgate.EINVALID, "Patient.identifier[0].system"},
	{"identifier use primary", fromPatient(`"use": "usual",
      "type"`, `"use": "primary",
      "type"`), vitalgate.EUNPROCESSABLE, "Patient.identifier[0].use"},
	{"identifier period bad", fromPatient(`"start": "2001-05-06"`, `"start": "2001-5-6"`), vitalgate.EINVALID, "Patient.identifier[0].period.start"},
	{"assigner urn uuid", fromPatient(`"display": "Acme Healthcare"`, `"reference": "urn:uuid:0b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f60"`), vitalgate.EINVALID, "Patient.identifier[0].assigner.reference"},
	{"name use legal", fromPatient(`"use": "official"`, `"use": "legal"`), vitalgate.EUNPROCESSABLE, "Patient.name[0].use"},
	{"maiden name period bad", fromPatient(`"end": "2002"`, `"end": "02"`), vitalgate.EINVALID, "Patient.name[2].period.end"},
	{"telecom system telegram", fromPatient(`"system": "phone",
      "value": "(03) 5555 6473"`, `"system": "telegram",
      "value": "(03) 5555 6473"`), vitalgate.EUNPROCESSABLE, "Patient.telecom[1].system"},
	{"telecom value without system", fromPatient(`"use": "home"`, `"use": "home", "value": "555"`), vitalgate.EUNPROCESSABLE, "Patient.telecom[0].system"},
	{"telecom use cell", fromPatient(`"use": "mobile"`, `"use": "cell"`), vitalgate.EUNPROCESSABLE, "Patient.telecom[2].use"},
	{"telecom rank 0", fromPatient(`"rank": 1`, `"rank": 0`), vitalgate.EUNPROCESSABLE, "Patient.telecom[1].rank"},
	{"bad id", fromPatient(`"id": "example"`, `"id": "ex ample"`), vitalgate.EINVALID, "Patient.id"},
	{"bad lastUpdated", fromPatient(`"2025-11-03T08:15:00Z"`, `"2025-11-03"`), vitalgate.EINVALID, "Patient.meta.lastUpdated"},
	{"narrative script", fromPatient(`<b>Chalmers</b>`, `<script>alert(1)</script>`), vitalgate.EUNPROCESSABLE, "Patient.text.div"},
	{"narrative status", fromPatient(`"status": "generated"`, `"status": "auto"`), vitalgate.EUNPROCESSABLE, "Patient.text.status"},
}

func TestDecodeAndValidatePatient(t *testing.T) {
	for _, tt := range patientCases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := fhir.DecodePatient([]byte(tt.input(t)))
			if err == nil {
				err = fhir.ValidatePatient(p, now)
			}
			checkErr(t, err, tt.code, tt.field)
		})
	}
}

func TestValidatePatientNil(t *testing.T) {
	checkErr(t, fhir.ValidatePatient(nil, now), vitalgate.EUNPROCESSABLE, "Patient")
}

// TestPatientExample decodes, validates and re-marshals the example and checks that the
// result is the same JSON, resourceType first.
func TestPatientExample(t *testing.T) {
	data := mustRead(t, "Patient-example.json")
	if rt, err := fhir.DecodeResourceType(data); err != nil || rt != "Patient" {
		t.Fatalf("DecodeResourceType = %q, %v", rt, err)
	}
	p, err := fhir.DecodePatient(data)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := fhir.ValidatePatient(p, now); err != nil {
		t.Fatalf("validate: %v", err)
	}
	out, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"resourceType":"Patient","id":"example",`; string(out[:len(want)]) != want {
		t.Errorf("marshalled JSON starts %.60s", out)
	}
	if a, b := mustGeneric(t, data), mustGeneric(t, out); !reflect.DeepEqual(a, b) {
		t.Fatalf("re-marshalled JSON differs:\n%s", out)
	}
	p2, err := fhir.DecodePatient(out)
	if err != nil {
		t.Fatalf("decode re-marshalled: %v", err)
	}
	if err := fhir.ValidatePatient(p2, now); err != nil {
		t.Fatalf("validate re-marshalled: %v", err)
	}
}

func TestPatientIdentifiers(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // IdentifierKey of each
	}{
		{"example", string(mustRead(t, "Patient-example.json")), []string{"urn:oid:1.2.36.146.595.217.0.1|12345"}},
		{"skips incomplete", `{"resourceType":"Patient","identifier":[{"value":"x"},{"system":"urn:oid:1.2","value":"7"},{"system":"urn:oid:1.3"},{"system":"https://h.example/mrn","value":"a|b"}]}`,
			[]string{"urn:oid:1.2|7", "https://h.example/mrn|a|b"}},
		{"none", `{"resourceType":"Patient","gender":"other"}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := fhir.DecodePatient([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, id := range p.Identifiers() {
				got = append(got, fhir.IdentifierKey(id.System, id.Value))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Identifiers = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPatientSetMeta(t *testing.T) {
	p, err := fhir.DecodePatient(mustRead(t, "Patient-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	p.Meta.Profile = []string{"http://hl7.org/fhir/StructureDefinition/Patient"}
	p.SetMeta("p-42", "3", time.Date(2026, 1, 2, 4, 5, 6, 7000000, time.FixedZone("", 3600)))
	if p.ID != "p-42" || p.Meta.VersionID != "3" || p.Meta.LastUpdated != "2026-01-02T03:05:06.007Z" || len(p.Meta.Profile) != 1 {
		t.Fatalf("after SetMeta: id %q meta %+v", p.ID, p.Meta)
	}
	var bare fhir.Patient
	bare.SetMeta("x", "1", now)
	if bare.Meta == nil || bare.Meta.LastUpdated != "2026-01-02T03:04:05Z" {
		t.Fatalf("SetMeta on a Patient without meta: %+v", bare.Meta)
	}
	if err := fhir.ValidatePatient(p, now); err != nil {
		t.Fatalf("validate after SetMeta: %v", err)
	}
}
