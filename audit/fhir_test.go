package audit_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/audit"
)

// auditEvent is the part of a FHIR AuditEvent the tests look at.
type auditEvent struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Type         struct {
		System  string `json:"system"`
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"type"`
	Entity []struct {
		Description string `json:"description"`
		Detail      []struct {
			Type        string `json:"type"`
			ValueString string `json:"valueString"`
		} `json:"detail"`
	} `json:"entity"`
}

func mustEvent(t *testing.T, e audit.Entry, index uint64) auditEvent {
	t.Helper()
	b, err := e.FHIR(index)
	if err != nil {
		t.Fatal(err)
	}
	var ev auditEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	return ev
}

// TestFHIREventType: each entry type maps to its DCM / audit-event-type code; HL7 v2 ingest
// (data coming in) is DCM 110107 Import, not 110106 Export.
func TestFHIREventType(t *testing.T) {
	const dcm = "http://dicom.nema.org/resources/ontology/DCM"
	tests := []struct {
		name, typ, system, code, display string
	}{
		{"rest", "rest", "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation"},
		{"hl7 ingest is an import", "hl7", dcm, "110107", "Import"},
		{"authentication", "authn", dcm, "110114", "User Authentication"},
		{"enrollment", "enroll", dcm, "110113", "Security Alert"},
		{"administration", "admin", dcm, "110113", "Security Alert"},
		{"system", "system", dcm, "110100", "Application Activity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mustEvent(t, audit.Entry{Time: time.Unix(0, 0), Action: "C", Type: tt.typ, AgentType: "device", AgentID: "d"}, 3)
			if ev.ResourceType != "AuditEvent" || ev.ID != "3" {
				t.Errorf("resourceType %q id %q", ev.ResourceType, ev.ID)
			}
			if ev.Type.System != tt.system || ev.Type.Code != tt.code || ev.Type.Display != tt.display {
				t.Errorf("type = %+v, want %s|%s %q", ev.Type, tt.system, tt.code, tt.display)
			}
		})
	}
}

// TestFHIROccurrences: an aggregated entry shows how many refusals it stands for.
func TestFHIROccurrences(t *testing.T) {
	tests := []struct {
		name        string
		occurrences int
		want        string // "" for no occurrences entity
	}{
		{"single", 0, ""},
		{"aggregated", 299, "299"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := mustEvent(t, audit.Entry{Time: time.Unix(0, 0), Action: "E", Type: "authn", Outcome: "4",
				AgentType: "client", AgentID: "x", Occurrences: tt.occurrences}, 0)
			got := ""
			for _, en := range ev.Entity {
				for _, d := range en.Detail {
					if d.Type == "occurrences" {
						got = d.ValueString
					}
				}
			}
			if got != tt.want {
				t.Errorf("occurrences detail = %q, want %q", got, tt.want)
			}
		})
	}
}
