package fhir

import (
	"encoding/json"
	"errors"

	"github.com/vitalgate/vitalgate"
)

// Issue severities (OperationOutcome.issue.severity).
const (
	SeverityFatal       = "fatal"
	SeverityError       = "error"
	SeverityWarning     = "warning"
	SeverityInformation = "information"
)

// IssueCode is a FHIR issue type (OperationOutcome.issue.code, value set issue-type).
type IssueCode = string

// The issue types Vitalgate uses.
const (
	IssueInvalid       IssueCode = "invalid"
	IssueStructure     IssueCode = "structure"
	IssueRequired      IssueCode = "required"
	IssueValue         IssueCode = "value"
	IssueInvariant     IssueCode = "invariant"
	IssueSecurity      IssueCode = "security"
	IssueLogin         IssueCode = "login"
	IssueForbidden     IssueCode = "forbidden"
	IssueNotFound      IssueCode = "not-found"
	IssueTooLong       IssueCode = "too-long"
	IssueNotSupported  IssueCode = "not-supported"
	IssueConflict      IssueCode = "conflict"
	IssueThrottled     IssueCode = "throttled"
	IssueTransient     IssueCode = "transient"
	IssueException     IssueCode = "exception"
	IssueProcessing    IssueCode = "processing"
	IssueBusinessRule  IssueCode = "business-rule"
	IssueTooCostly     IssueCode = "too-costly"
	IssueCodeInvalid   IssueCode = "code-invalid"
	IssueInformational IssueCode = "informational"
)

// OperationOutcome is a FHIR R4 OperationOutcome: the errors and warnings of an operation.
type OperationOutcome struct {
	ID    string                  `json:"id,omitempty"`
	Meta  *Meta                   `json:"meta,omitempty"`
	Text  *Narrative              `json:"text,omitempty"`
	Issue []OperationOutcomeIssue `json:"issue"`
}

// OperationOutcomeIssue is one issue of an OperationOutcome.
type OperationOutcomeIssue struct {
	Severity    string           `json:"severity"`
	Code        IssueCode        `json:"code"`
	Details     *CodeableConcept `json:"details,omitempty"`
	Diagnostics string           `json:"diagnostics,omitempty"`
	Expression  []string         `json:"expression,omitempty"`
}

// NewOperationOutcome returns an OperationOutcome with one issue. diagnostics must be a
// user-safe message; expression names the offending elements, if any.
func NewOperationOutcome(severity string, code IssueCode, diagnostics string, expression ...string) *OperationOutcome {
	iss := OperationOutcomeIssue{Severity: severity, Code: code, Diagnostics: diagnostics}
	for _, e := range expression {
		if e != "" {
			iss.Expression = append(iss.Expression, e)
		}
	}
	return &OperationOutcome{Issue: []OperationOutcomeIssue{iss}}
}

// IssueCodeFor returns the FHIR issue type for a vitalgate error code.
func IssueCodeFor(code string) IssueCode {
	switch code {
	case vitalgate.EINVALID:
		return IssueInvalid
	case vitalgate.EUNPROCESSABLE:
		return IssueBusinessRule
	case vitalgate.EUNAUTHORIZED:
		return IssueLogin
	case vitalgate.EFORBIDDEN:
		return IssueForbidden
	case vitalgate.ENOTFOUND:
		return IssueNotFound
	case vitalgate.ECONFLICT:
		return IssueConflict
	case vitalgate.ETOOLARGE:
		return IssueTooLong
	case vitalgate.EUNSUPPORTED:
		return IssueNotSupported
	case vitalgate.ETHROTTLED:
		return IssueThrottled
	case vitalgate.EUNAVAILABLE:
		return IssueTransient
	}
	return IssueException
}

// OperationOutcomeFromError returns an OperationOutcome describing err with its user-safe
// message (vitalgate.ErrorMessage) and Field as the expression. Internal errors carry only
// the generic message; errorID, if not empty, is appended so that the caller can quote it.
func OperationOutcomeFromError(err error, errorID string) *OperationOutcome {
	code := vitalgate.ErrorCode(err)
	msg := vitalgate.ErrorMessage(err)
	var field string
	var e *vitalgate.Error
	if errors.As(err, &e) && code != vitalgate.EINTERNAL {
		field = e.Field
	}
	if errorID != "" {
		msg += " (error id " + errorID + ")"
	}
	sev := SeverityError
	if code == vitalgate.EINTERNAL {
		sev = SeverityFatal
	}
	return NewOperationOutcome(sev, IssueCodeFor(code), msg, field)
}

// MarshalJSON encodes oo with its resourceType.
func (oo OperationOutcome) MarshalJSON() ([]byte, error) {
	type plain OperationOutcome
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"OperationOutcome", plain(oo)})
}

// Marshal returns oo as compact FHIR JSON.
func (oo *OperationOutcome) Marshal() ([]byte, error) { return json.Marshal(oo) }

// NewBatchResponse returns a Bundle of type batch-response with one entry per response, in
// the order of the request's entries.
func NewBatchResponse(responses []BundleResponse) *Bundle {
	return newResponse("batch-response", responses)
}

// NewTransactionResponse returns a Bundle of type transaction-response with one entry per
// response, in the order of the request's entries.
func NewTransactionResponse(responses []BundleResponse) *Bundle {
	return newResponse("transaction-response", responses)
}

func newResponse(typ string, responses []BundleResponse) *Bundle {
	b := &Bundle{Type: typ, Entry: make([]BundleEntry, len(responses))}
	for i := range responses {
		r := responses[i]
		b.Entry[i].Response = &r
	}
	return b
}

// MarshalJSON encodes b with its resourceType.
func (b Bundle) MarshalJSON() ([]byte, error) {
	type plain Bundle
	return json.Marshal(struct {
		ResourceType string `json:"resourceType"`
		plain
	}{"Bundle", plain(b)})
}

// Marshal returns b as compact FHIR JSON.
func (b *Bundle) Marshal() ([]byte, error) { return json.Marshal(b) }
