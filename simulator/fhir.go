package simulator

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// FHIR systems and profiles used in generated resources.
const (
	LOINCSystem       = "http://loinc.org"
	UCUMSystem        = "http://unitsofmeasure.org"
	MDCSystem         = "urn:iso:std:iso:11073:10101"
	CategorySystem    = "http://terminology.hl7.org/CodeSystem/observation-category"
	VitalSignsProfile = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
)

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display,omitempty"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text,omitempty"`
}

type quantity struct {
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	System string  `json:"system"`
	Code   string  `json:"code"`
}

type reference struct {
	Reference string `json:"reference"`
}

type component struct {
	Code          codeableConcept `json:"code"`
	ValueQuantity quantity        `json:"valueQuantity"`
}

type meta struct {
	Profile []string `json:"profile"`
}

// Identifier is a business identifier of a generated Observation: the system (a URI) and the
// value that name one observation, as a device sets it so that a retry of the same reading
// is recognised and not stored twice.
type Identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type identifier struct {
	Use    string `json:"use"`
	System string `json:"system"`
	Value  string `json:"value"`
}

type observation struct {
	ResourceType      string            `json:"resourceType"`
	Meta              meta              `json:"meta"`
	Identifier        []identifier      `json:"identifier,omitempty"`
	Status            string            `json:"status"`
	Category          []codeableConcept `json:"category"`
	Code              codeableConcept   `json:"code"`
	Subject           reference         `json:"subject"`
	Device            reference         `json:"device"`
	EffectiveDateTime string            `json:"effectiveDateTime"`
	ValueQuantity     *quantity         `json:"valueQuantity,omitempty"`
	Component         []component       `json:"component,omitempty"`
}

func loinc(code, display string) coding { return coding{LOINCSystem, code, display} }

func ucum(v float64, code string) quantity {
	return quantity{Value: v, Unit: code, System: UCUMSystem, Code: code}
}

var vitalSignsCategory = []codeableConcept{{
	Coding: []coding{{CategorySystem, "vital-signs", "Vital Signs"}},
	Text:   "Vital Signs",
}}

// vitalCode returns the code and the UCUM unit of a vital.
func vitalCode(v Vital) (codeableConcept, string, error) {
	switch v {
	case HeartRate:
		return codeableConcept{Coding: []coding{loinc("8867-4", "Heart rate")}, Text: "Heart rate"}, "/min", nil
	case OxygenSaturation:
		return codeableConcept{Coding: []coding{
			loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
			loinc("2708-6", "Oxygen saturation in Arterial blood"),
			{MDCSystem, "150456", "MDC_PULS_OXIM_SAT_O2"},
		}, Text: "SpO2"}, "%", nil
	case RespiratoryRate:
		return codeableConcept{Coding: []coding{loinc("9279-1", "Respiratory rate")}, Text: "Respiratory rate"}, "/min", nil
	case BloodPressure:
		return codeableConcept{Coding: []coding{loinc("85354-9", "Blood pressure panel with all children optional")}, Text: "Blood pressure"}, "mm[Hg]", nil
	case BodyTemperature:
		return codeableConcept{Coding: []coding{loinc("8310-5", "Body temperature")}, Text: "Body temperature"}, "Cel", nil
	case BodyWeight:
		return codeableConcept{Coding: []coding{loinc("29463-7", "Body weight")}, Text: "Body weight"}, "kg", nil
	case PulseRate:
		return codeableConcept{Coding: []coding{
			loinc("8889-8", "Heart rate by Pulse oximetry"),
			{MDCSystem, "149530", "MDC_PULS_OXIM_PULS_RATE"},
		}, Text: "Pulse rate"}, "/min", nil
	}
	return codeableConcept{}, "", fmt.Errorf("simulator: unknown vital %q", v)
}

// NewObservation returns a FHIR R4 Observation (JSON) for one reading: status final,
// category vital-signs, the vitalsigns profile, LOINC (and, for SpO2, MDC) codes, a UCUM
// quantity (blood pressure as systolic and diastolic components), subject Patient/patientID,
// device Device/deviceID and effectiveDateTime at in RFC 3339 with seconds and time zone.
func NewObservation(r Reading, deviceID, patientID string, at time.Time) ([]byte, error) {
	return NewIdentifiedObservation(r, deviceID, patientID, at, Identifier{})
}

// NewIdentifiedObservation returns NewObservation's Observation with the business identifier
// ident (use official), or none when ident is zero. It fails on an identifier with only one
// of system and value.
func NewIdentifiedObservation(r Reading, deviceID, patientID string, at time.Time, ident Identifier) ([]byte, error) {
	if (ident.System == "") != (ident.Value == "") {
		return nil, errors.New("simulator: an identifier needs both a system and a value")
	}
	if deviceID == "" || patientID == "" {
		return nil, errors.New("simulator: observation needs a device id and a patient id")
	}
	code, unit, err := vitalCode(r.Vital)
	if err != nil {
		return nil, err
	}
	obs := observation{
		ResourceType:      "Observation",
		Meta:              meta{Profile: []string{VitalSignsProfile}},
		Status:            "final",
		Category:          vitalSignsCategory,
		Code:              code,
		Subject:           reference{"Patient/" + patientID},
		Device:            reference{"Device/" + deviceID},
		EffectiveDateTime: at.Format(time.RFC3339),
	}
	if ident.System != "" {
		obs.Identifier = []identifier{{Use: "official", System: ident.System, Value: ident.Value}}
	}
	if r.Vital == BloodPressure {
		obs.Component = []component{
			{
				Code:          codeableConcept{Coding: []coding{loinc("8480-6", "Systolic blood pressure")}},
				ValueQuantity: ucum(r.Value, unit),
			},
			{
				Code:          codeableConcept{Coding: []coding{loinc("8462-4", "Diastolic blood pressure")}},
				ValueQuantity: ucum(r.Diastolic, unit),
			},
		}
	} else {
		q := ucum(r.Value, unit)
		obs.ValueQuantity = &q
	}
	return json.Marshal(obs)
}

type bundleRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  bundleRequest   `json:"request"`
}

type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Entry        []bundleEntry `json:"entry"`
}

// NewBundle returns a FHIR R4 Bundle (JSON) of type "batch" or "transaction" that creates the
// given Observations: each entry has a fresh urn:uuid fullUrl (random version 4 UUIDs read
// from rnd), the resource, and request POST Observation.
func NewBundle(bundleType string, observations [][]byte, rnd io.Reader) ([]byte, error) {
	if bundleType != "batch" && bundleType != "transaction" {
		return nil, fmt.Errorf("simulator: bundle type %q is not batch or transaction", bundleType)
	}
	b := bundle{ResourceType: "Bundle", Type: bundleType, Entry: make([]bundleEntry, 0, len(observations))}
	for _, o := range observations {
		id, err := newUUID(rnd)
		if err != nil {
			return nil, err
		}
		b.Entry = append(b.Entry, bundleEntry{
			FullURL:  "urn:uuid:" + id,
			Resource: json.RawMessage(o),
			Request:  bundleRequest{Method: "POST", URL: "Observation"},
		})
	}
	return json.Marshal(b)
}

// newUUID returns a random (version 4) UUID in its canonical text form.
func newUUID(rnd io.Reader) (string, error) {
	var u [16]byte
	if _, err := io.ReadFull(rnd, u[:]); err != nil {
		return "", fmt.Errorf("simulator: uuid: %w", err)
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// operationOutcome is the part of a FHIR OperationOutcome the simulator reads.
type operationOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
		Details     *struct {
			Text string `json:"text"`
		} `json:"details"`
	} `json:"issue"`
}

// diagnosticsOf returns issue[0].diagnostics (or details.text) of an OperationOutcome, or ""
// if raw is not one.
func diagnosticsOf(raw []byte) string {
	var oo operationOutcome
	if json.Unmarshal(raw, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return ""
	}
	if d := oo.Issue[0].Diagnostics; d != "" {
		return d
	}
	if oo.Issue[0].Details != nil {
		return oo.Issue[0].Details.Text
	}
	return oo.Issue[0].Code
}

// bundleResponse is the part of a batch-response or transaction-response Bundle the
// simulator reads.
type bundleResponse struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Response *struct {
			Status   string          `json:"status"`
			Outcome  json.RawMessage `json:"outcome"`
			Location string          `json:"location"`
		} `json:"response"`
	} `json:"entry"`
}

// entryStatus parses the leading status code of a Bundle entry response ("201 Created").
func entryStatus(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		s = s[:i]
	}
	code, err := strconv.Atoi(s)
	if err != nil || code < 100 || code > 599 {
		return 0, false
	}
	return code, true
}
