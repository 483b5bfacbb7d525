package detect

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/vitalgate/vitalgate"
)

// FHIR code systems of detection (DetectedIssue.code and evidence).
const (
	// CodeSystemCategory holds the alert categories: identity, authentication, protocol,
	// clinical-value.
	CodeSystemCategory = "https://vitalgate.dev/fhir/CodeSystem/security-alert-category"
	// CodeSystemRule holds the rule ids of a rule set (detect/rules.json).
	CodeSystemRule = "https://vitalgate.dev/fhir/CodeSystem/detection-rule"
	// CodeSystemEvidence holds the evidence keys (EvidenceKeys).
	CodeSystemEvidence = "https://vitalgate.dev/fhir/CodeSystem/detection-evidence"
	// ExtensionAlertStatus carries the alert's handling status (open, acknowledged, resolved).
	ExtensionAlertStatus = "https://vitalgate.dev/fhir/StructureDefinition/alert-status"
	// ExtensionClient names the API client an alert implicates (clients are not FHIR
	// resources here).
	ExtensionClient = "https://vitalgate.dev/fhir/StructureDefinition/implicated-client"
)

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type codeable struct {
	Coding []coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

type reference struct {
	Reference string `json:"reference,omitempty"`
	Type      string `json:"type,omitempty"`
	Display   string `json:"display,omitempty"`
}

type extension struct {
	URL         string `json:"url"`
	ValueCode   string `json:"valueCode,omitempty"`
	ValueString string `json:"valueString,omitempty"`
}

type period struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

type evidence struct {
	Code   []codeable  `json:"code,omitempty"`
	Detail []reference `json:"detail,omitempty"`
}

// detectedIssue is a FHIR R4 DetectedIssue.
type detectedIssue struct {
	ResourceType     string      `json:"resourceType"`
	ID               string      `json:"id"`
	Extension        []extension `json:"extension,omitempty"`
	Status           string      `json:"status"`
	Code             codeable    `json:"code"`
	Severity         string      `json:"severity"`
	IdentifiedPeriod period      `json:"identifiedPeriod"`
	Author           reference   `json:"author"`
	Implicated       []reference `json:"implicated,omitempty"`
	Evidence         []evidence  `json:"evidence,omitempty"`
	Detail           string      `json:"detail,omitempty"`
}

// DetectedIssue renders an alert as a FHIR R4 DetectedIssue: code the alert's category and
// rule (Vitalgate code systems), severity (medium is FHIR's moderate), implicated the
// Device, identifiedPeriod the evidence window, evidence the facts the rule keeps and a
// pointer to the audit entries that name the alert. Status is preliminary until the alert
// is resolved (final); the alert's own status is in an extension.
func DetectedIssue(a vitalgate.Alert) ([]byte, error) {
	sev := a.Severity
	if sev == string(SeverityMedium) {
		sev = "moderate"
	}
	status := "preliminary"
	if a.Status == vitalgate.AlertResolved {
		status = "final"
	}
	di := detectedIssue{ResourceType: "DetectedIssue", ID: a.ID, Status: status, Severity: sev,
		Extension:        []extension{{URL: ExtensionAlertStatus, ValueCode: string(a.Status)}},
		Code:             codeable{Coding: []coding{{System: CodeSystemCategory, Code: a.Category}, {System: CodeSystemRule, Code: a.Rule}}, Text: a.Description},
		IdentifiedPeriod: period{Start: a.From.UTC().Format(time.RFC3339), End: a.To.UTC().Format(time.RFC3339)},
		Author:           reference{Display: "Vitalgate detection"}, Detail: a.Description}
	if a.Client != "" {
		di.Extension = append(di.Extension, extension{URL: ExtensionClient, ValueString: a.Client})
	}
	if a.Device != "" {
		di.Implicated = append(di.Implicated, reference{Reference: "Device/" + a.Device})
	}
	keys := make([]string, 0, len(a.Evidence))
	for k := range a.Evidence {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ev evidence
	for _, k := range keys {
		ev.Code = append(ev.Code, codeable{Coding: []coding{{System: CodeSystemEvidence, Code: k}}, Text: a.Evidence[k]})
	}
	ev.Detail = []reference{{Type: "AuditEvent", Display: "the audit entries naming DetectedIssue/" + a.ID + " (GET /fhir/AuditEvent)"}}
	di.Evidence = []evidence{ev}
	return json.Marshal(di)
}

// ReadDetectedIssue returns alert id as a DetectedIssue, if p may see it. ENOTFOUND.
func (s *Service) ReadDetectedIssue(ctx context.Context, p vitalgate.Principal, id string) ([]byte, error) {
	a, err := s.Alert(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return DetectedIssue(a)
}

// SearchDetectedIssues returns the alerts f selects that p may see, as DetectedIssues.
func (s *Service) SearchDetectedIssues(ctx context.Context, p vitalgate.Principal, f vitalgate.AlertFilter) ([][]byte, error) {
	as, err := s.Alerts(ctx, p, f)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(as))
	for _, a := range as {
		b, err := DetectedIssue(a)
		if err != nil {
			return nil, vitalgate.Internal(err, "DetectedIssue")
		}
		out = append(out, b)
	}
	return out, nil
}
