package fhir_test

import (
	"errors"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

func TestOperationOutcome(t *testing.T) {
	tests := []struct {
		name string
		oo   *fhir.OperationOutcome
		want string
	}{
		{"with expression", fhir.NewOperationOutcome(fhir.SeverityError, fhir.IssueValue, "value out of range", "Observation.valueQuantity.value"),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"value","diagnostics":"value out of range","expression":["Observation.valueQuantity.value"]}]}`},
		{"empty expression dropped", fhir.NewOperationOutcome(fhir.SeverityError, fhir.IssueInvalid, "bad", ""),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad"}]}`},
		{"from field error", fhir.OperationOutcomeFromError(vitalgate.FieldErrorf(vitalgate.EUNPROCESSABLE, "Observation.status", "status is required"), ""),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"status is required","expression":["Observation.status"]}]}`},
		{"from internal error", fhir.OperationOutcomeFromError(vitalgate.Internal(errors.New("secret detail"), "db"), "e123"),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception","diagnostics":"internal error (error id e123)"}]}`},
		{"from plain error", fhir.OperationOutcomeFromError(errors.New("secret"), ""),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception","diagnostics":"internal error"}]}`},
		{"too large", fhir.OperationOutcomeFromError(vitalgate.FieldErrorf(vitalgate.ETOOLARGE, "Bundle.entry", "too many"), ""),
			`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"too-long","diagnostics":"too many","expression":["Bundle.entry"]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.oo.Marshal()
			if err != nil || string(b) != tt.want {
				t.Fatalf("Marshal = %s, %v\nwant %s", b, err, tt.want)
			}
		})
	}
}

func TestResponseBundles(t *testing.T) {
	resp := []fhir.BundleResponse{
		{Status: "201 Created", Location: "Observation/1/_history/1", LastModified: "2026-01-02T03:04:05Z"},
		{Status: "422 Unprocessable Entity", Outcome: fhir.NewOperationOutcome(fhir.SeverityError, fhir.IssueBusinessRule, "bad", "Bundle.entry[1].resource.status")},
	}
	tests := []struct {
		name string
		b    *fhir.Bundle
		want string
	}{
		{"batch", fhir.NewBatchResponse(resp), `{"resourceType":"Bundle","type":"batch-response","entry":[{"response":{"status":"201 Created","location":"Observation/1/_history/1","lastModified":"2026-01-02T03:04:05Z"}},{"response":{"status":"422 Unprocessable Entity","outcome":{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"bad","expression":["Bundle.entry[1].resource.status"]}]}}}]}`},
		{"transaction", fhir.NewTransactionResponse(resp[:1]), `{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201 Created","location":"Observation/1/_history/1","lastModified":"2026-01-02T03:04:05Z"}}]}`},
		{"empty", fhir.NewBatchResponse(nil), `{"resourceType":"Bundle","type":"batch-response"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.b.Marshal()
			if err != nil || string(b) != tt.want {
				t.Fatalf("Marshal = %s, %v\nwant %s", b, err, tt.want)
			}
		})
	}
}
