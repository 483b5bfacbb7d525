package fhir_test

import (
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

// TestStringElementsAreBounded: a string element longer than MaxStringBytes is refused
// naming it (security review finding 17); the narrative keeps its own bound.
func TestStringElementsAreBounded(t *testing.T) {
	obs := func(extra string) []byte {
		return []byte(`{"resourceType":"Observation","status":"final",` + extra +
			`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p"},` +
			`"effectiveDateTime":"2026-01-01T00:00:00Z","valueQuantity":{"value":70,"system":"http://unitsofmeasure.org","code":"/min"}}`)
	}
	long := strings.Repeat("x", 9<<10)
	tests := []struct {
		name  string
		body  []byte
		lim   fhir.Limits
		code  string
		field string
	}{
		{"9 KiB note", obs(`"note":[{"text":"` + long + `"}],`), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Observation.note[0].text"},
		{"9 KiB code text", obs(`"method":{"text":"` + long + `"},`), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Observation.method.text"},
		{"8 KiB note", obs(`"note":[{"text":"` + long[:8<<10] + `"}],`), fhir.Limits{}, "", ""},
		{"configured 16 KiB", obs(`"note":[{"text":"` + long + `"}],`), fhir.Limits{MaxStringBytes: 16 << 10}, "", ""},
		{"configured 1 KiB", obs(`"note":[{"text":"` + long[:2<<10] + `"}],`), fhir.Limits{MaxStringBytes: 1 << 10}, vitalgate.EUNPROCESSABLE, "Observation.note[0].text"},
		{"narrative is exempt", obs(`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">` + long + `</div>"},`), fhir.Limits{}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fhir.DecodeObservationWith(tt.body, tt.lim)
			if vitalgate.ErrorCode(err) != tt.code || vitalgate.ErrorField(err) != tt.field {
				t.Fatalf("error %v (at %q), want %q at %q", err, vitalgate.ErrorField(err), tt.code, tt.field)
			}
		})
	}
}
