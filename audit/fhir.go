package audit

import (
	"encoding/json"
	"strconv"
	"time"
)

// FHIR returns the entry at index as a FHIR R4 AuditEvent, shaped after the IHE Basic Audit
// Log Patterns: the agent who acted (with its network address), the source node, and the
// entities concerned (resources, and the patient by blind index: entries never hold a
// plaintext patient id).
func (e Entry) FHIR(index uint64) ([]byte, error) {
	typ := map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"}
	switch e.Type {
	case "authn":
		typ = map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"}
	case "hl7":
		typ = map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110107", "display": "Import"}
	case "admin", "enroll":
		typ = map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110113", "display": "Security Alert"}
	case "system":
		typ = map[string]any{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110100", "display": "Application Activity"}
	}
	agent := map[string]any{
		"type":      map[string]any{"text": e.AgentType},
		"who":       map[string]any{"identifier": map[string]any{"system": "urn:vitalgate:" + e.AgentType, "value": e.AgentID}},
		"requestor": true,
	}
	if e.AgentRole != "" {
		agent["role"] = []any{map[string]any{"text": e.AgentRole}}
	}
	if e.SourceIP != "" {
		agent["network"] = map[string]any{"address": e.SourceIP, "type": "2"}
	}
	if e.Emergency {
		agent["purposeOfUse"] = []any{map[string]any{"coding": []any{map[string]any{
			"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT", "display": "Emergency Treatment"}}}}
	}
	var entities []any
	for _, r := range e.Resources {
		entities = append(entities, map[string]any{"what": map[string]any{"reference": r},
			"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}})
	}
	if e.PatientIndex != "" {
		entities = append(entities, map[string]any{
			"what": map[string]any{"identifier": map[string]any{"system": "urn:vitalgate:patient-index", "value": e.PatientIndex}},
			"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
			"role": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}})
	}
	if e.Count > 0 {
		entities = append(entities, map[string]any{"description": strconv.Itoa(e.Count) + " results",
			"type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"}})
	}
	if e.Occurrences > 1 {
		entities = append(entities, map[string]any{"description": strconv.Itoa(e.Occurrences) + " occurrences",
			"type":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
			"detail": []any{map[string]any{"type": "occurrences", "valueString": strconv.Itoa(e.Occurrences)}}})
	}
	ev := map[string]any{
		"resourceType": "AuditEvent",
		"id":           strconv.FormatUint(index, 10),
		"type":         typ,
		"action":       e.Action,
		"recorded":     e.Time.UTC().Format(time.RFC3339Nano),
		"outcome":      e.Outcome,
		"agent":        []any{agent},
		"source":       map[string]any{"observer": map[string]any{"display": "vitalgate " + e.Node}},
	}
	if e.Subtype != "" {
		ev["subtype"] = []any{map[string]any{"system": "urn:vitalgate:audit-subtype", "code": e.Subtype}}
	}
	if e.OutcomeDesc != "" {
		ev["outcomeDesc"] = e.OutcomeDesc
	}
	if len(entities) > 0 {
		ev["entity"] = entities
	}
	if e.Site != "" { // the site, as every stored resource carries it (package ingest)
		ev["meta"] = map[string]any{"tag": []any{map[string]any{"system": "urn:vitalgate:site", "code": e.Site}}}
	}
	return json.Marshal(ev)
}
