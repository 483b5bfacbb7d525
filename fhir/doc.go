// Package fhir reads and writes the FHIR R4 JSON that Vitalgate accepts and returns:
// Observation (vital signs), Patient, Bundle (batch and transaction, and their responses),
// and OperationOutcome; on output only also Device, searchset Bundles (SearchSet) and the
// CapabilityStatement. It also parses the query strings of Observation and Patient searches
// (ParseObservationSearch, ParsePatientSearch), rejecting any parameter it does not support.
//
// Decoding is strict. DecodeObservation, DecodePatient and DecodeBundle first walk the JSON
// token stream against a per-datatype table of allowed elements (see schema.go) and reject,
// with an EINVALID *vitalgate.Error naming the element, anything FHIR R4 JSON forbids or that
// Vitalgate does not support: syntax errors, trailing data, duplicate or unknown keys
// (matched case-sensitively), wrong JSON types, empty strings, arrays or objects, null,
// excessive nesting, primitive extensions ("_status") and extensions. Only then are the
// bytes decoded into Go structs. Decimal values are kept as json.Number, so they re-encode
// exactly as they were written.
//
// ValidateObservation checks what structure alone cannot: value sets, required elements,
// the value/component/member rules, codes, units and plausible ranges (package vitals),
// dates and times, references and the XHTML narrative (CheckNarrative); ValidatePatient does
// the same for a Patient (identifiers, gender, birthDate, names, telecom). Their errors are
// EUNPROCESSABLE (or EINVALID for malformed formats) and name the element as a FHIRPath-like
// expression, e.g. "Observation.component[1].valueQuantity.value".
//
// The package is pure: no I/O, no clock (callers pass now), no HTTP status mapping.
package fhir
