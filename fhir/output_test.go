package fhir_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

func TestDeviceMarshal(t *testing.T) {
	tests := []struct {
		name string
		dev  fhir.Device
		want string
	}{
		{"minimal", fhir.Device{ID: "d1", Status: fhir.DeviceStatusActive},
			`{"resourceType":"Device","id":"d1","status":"active"}`},
		{"full", fhir.Device{
			ID:           "pulse-ox-7",
			Meta:         &fhir.Meta{VersionID: "2", LastUpdated: "2026-01-02T03:04:05Z"},
			Identifier:   []fhir.Identifier{{System: "urn:ietf:rfc:3986", Value: "urn:uuid:0b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f60"}},
			Status:       fhir.DeviceStatusInactive,
			Manufacturer: "Acme Medical",
			ModelNumber:  "PX-100",
			Patient:      &fhir.Reference{Reference: "Patient/example"},
		}, `{"resourceType":"Device","id":"pulse-ox-7","meta":{"versionId":"2","lastUpdated":"2026-01-02T03:04:05Z"},` +
			`"identifier":[{"system":"urn:ietf:rfc:3986","value":"urn:uuid:0b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f60"}],` +
			`"status":"inactive","manufacturer":"Acme Medical","modelNumber":"PX-100","patient":{"reference":"Patient/example"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.dev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got  %s\nwant %s", out, tt.want)
			}
			if rt, err := fhir.DecodeResourceType(out); err != nil || rt != "Device" {
				t.Errorf("DecodeResourceType = %q, %v", rt, err)
			}
		})
	}
	var d fhir.Device
	d.SetMeta("d2", "1", now)
	if d.ID != "d2" || d.Meta.VersionID != "1" || d.Meta.LastUpdated != "2026-01-02T03:04:05Z" {
		t.Errorf("SetMeta: %+v %+v", d, d.Meta)
	}
}

func TestNewSearchSet(t *testing.T) {
	obs := json.RawMessage(`{"resourceType":"Observation","id":"o1","status":"final"}`)
	pat := json.RawMessage(`{"resourceType":"Patient", "id":"example"}`)
	total := 2
	tests := []struct {
		name      string
		base      string
		self      string
		next      string
		resources []json.RawMessage
		total     *int
		want      string
		wantErr   bool
	}{
		{"empty", "https://h.example/fhir", "https://h.example/fhir/Observation?patient=p1", "", nil, nil,
			`{"resourceType":"Bundle","type":"searchset","link":[{"relation":"self","url":"https://h.example/fhir/Observation?patient=p1"}]}`, false},
		{"empty with total", "https://h.example/fhir", "https://h.example/fhir/Observation?patient=p1", "", []json.RawMessage{}, new(int),
			`{"resourceType":"Bundle","type":"searchset","total":0,"link":[{"relation":"self","url":"https://h.example/fhir/Observation?patient=p1"}]}`, false},
		{"two with next", "https://h.example/fhir/", "https://h.example/fhir/Observation?patient=p1&_count=2",
			"https://h.example/fhir/Observation?patient=p1&_count=2&_cursor=abc", []json.RawMessage{obs, pat}, &total,
			`{"resourceType":"Bundle","type":"searchset","total":2,"link":[` +
				`{"relation":"self","url":"https://h.example/fhir/Observation?patient=p1\u0026_count=2"},` +
				`{"relation":"next","url":"https://h.example/fhir/Observation?patient=p1\u0026_count=2\u0026_cursor=abc"}],` +
				`"entry":[{"fullUrl":"https://h.example/fhir/Observation/o1","resource":{"resourceType":"Observation","id":"o1","status":"final"},"search":{"mode":"match"}},` +
				`{"fullUrl":"https://h.example/fhir/Patient/example","resource":{"resourceType":"Patient","id":"example"},"search":{"mode":"match"}}]}`, false},
		{"no base", "", "/fhir/Observation?patient=p1", "", []json.RawMessage{obs}, nil,
			`{"resourceType":"Bundle","type":"searchset","link":[{"relation":"self","url":"/fhir/Observation?patient=p1"}],` +
				`"entry":[{"resource":{"resourceType":"Observation","id":"o1","status":"final"},"search":{"mode":"match"}}]}`, false},
		{"resource without id", "https://h.example/fhir", "s", "", []json.RawMessage{json.RawMessage(`{"resourceType":"Observation"}`)}, nil, "", true},
		{"resource not an object", "https://h.example/fhir", "s", "", []json.RawMessage{json.RawMessage(`[1]`)}, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := fhir.NewSearchSet(tt.base, tt.self, tt.next, tt.resources)
			if tt.wantErr {
				if vitalgate.ErrorCode(err) != vitalgate.EINTERNAL {
					t.Fatalf("err = %v, want EINTERNAL", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s.Total = tt.total
			out, err := s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
}

func TestNewCapabilityStatement(t *testing.T) {
	tests := []struct {
		name string
		opt  fhir.CapabilityOptions
		want string
	}{
		{"full", fhir.CapabilityOptions{
			SoftwareName:    "Vitalgate",
			SoftwareVersion: "1.2.3",
			Date:            time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("", 3600)),
			BaseURL:         "https://h.example/fhir",
			TokenURL:        "https://h.example/oauth2/token",
			Resources: []fhir.ResourceCapability{
				{Type: "Patient", Interactions: []string{"read", "create", "search-type"},
					SearchParams: []fhir.CapabilitySearchParam{{Name: "identifier", Type: "token"}}},
				{Type: "Device", Interactions: []string{"read"}},
				{Type: "Observation", Interactions: []string{"read", "create", "search-type"},
					SearchParams: []fhir.CapabilitySearchParam{{Name: "patient", Type: "reference"}, {Name: "code", Type: "token"}, {Name: "date", Type: "date"}}},
			},
			SystemInteractions: []string{"batch", "transaction"},
		}, `{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-02T03:04:05Z","kind":"instance",` +
			`"software":{"name":"Vitalgate","version":"1.2.3"},"implementation":{"description":"Vitalgate","url":"https://h.example/fhir"},` +
			`"fhirVersion":"4.0.1","format":["json"],"rest":[{"mode":"server","security":{` +
			`"extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris","extension":[{"url":"token","valueUri":"https://h.example/oauth2/token"}]}],` +
			`"service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR","display":"SMART-on-FHIR"}],"text":"OAuth2 bearer tokens with SMART v2 scopes"}]},` +
			`"resource":[{"type":"Device","interaction":[{"code":"read"}]},` +
			`{"type":"Observation","interaction":[{"code":"read"},{"code":"create"},{"code":"search-type"}],"searchParam":[{"name":"patient","type":"reference"},{"name":"code","type":"token"},{"name":"date","type":"date"}]},` +
			`{"type":"Patient","interaction":[{"code":"read"},{"code":"create"},{"code":"search-type"}],"searchParam":[{"name":"identifier","type":"token"}]}],` +
			`"interaction":[{"code":"batch"},{"code":"transaction"}]}]}`},
		{"minimal", fhir.CapabilityOptions{SoftwareName: "Vitalgate", Date: now, Description: "test instance"},
			`{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-02T03:04:05Z","kind":"instance",` +
				`"software":{"name":"Vitalgate"},"implementation":{"description":"test instance"},"fhirVersion":"4.0.1","format":["json"],` +
				`"rest":[{"mode":"server","security":{"service":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/restful-security-service","code":"SMART-on-FHIR","display":"SMART-on-FHIR"}],"text":"OAuth2 bearer tokens with SMART v2 scopes"}]}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := fhir.NewCapabilityStatement(tt.opt).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
}
