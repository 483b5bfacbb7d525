package fhir_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

// base is a small valid heart-rate Observation that the cases below mutate.
const base = `{"resourceType":"Observation","id":"hr1",` +
	`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Heart rate 44 /min</p></div>"},` +
	`"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},` +
	`"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2025-12-31T10:00:00Z",` +
	`"valueQuantity":{"value":44,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}`

// edit returns s with each old→new pair replaced once; it fails the test if old is absent.
func edit(tb testing.TB, s string, pairs ...string) string {
	tb.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			tb.Fatalf("edit: %q not found", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return s
}

// narrative returns base with the div's content replaced by inner (JSON-escaped already).
func narrative(tb testing.TB, div string) string {
	tb.Helper()
	return edit(tb, base, `<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Heart rate 44 /min</p></div>`, div)
}

func deepAssigner(n int) string {
	s := `{"display":"x"}`
	for i := 0; i < n; i++ {
		s = `{"display":"x","identifier":{"value":"v","assigner":` + s + `}}`
	}
	return s
}

type errCase struct {
	name  string
	input func(testing.TB) string
	code  string // "" for no error
	field string
}

func raw(s string) func(testing.TB) string { return func(testing.TB) string { return s } }

func fromBase(pairs ...string) func(testing.TB) string {
	return func(tb testing.TB) string { return edit(tb, base, pairs...) }
}

func fromFile(name string, pairs ...string) func(testing.TB) string {
	return func(tb testing.TB) string { return edit(tb, string(mustRead(tb, name)), pairs...) }
}

func withDiv(div string) func(testing.TB) string {
	return func(tb testing.TB) string { return narrative(tb, div) }
}

const xmlns = `xmlns=\"http://www.w3.org/1999/xhtml\"`

var observationCases = []errCase{
	{"valid base", raw(base), "", ""},
	{"effective 4 minutes ahead", fromBase("2025-12-31T10:00:00Z", "2026-01-02T03:08:05Z"), "", ""},
	{"effective date only today", fromBase("2025-12-31T10:00:00Z", "2026-01-02"), "", ""},
	{"fahrenheit temperature", fromFile("Observation-body-temperature.json", `"value": 36.5`, `"value": 98.6`, `"code": "Cel"`, `"code": "[degF]"`), "", ""},
	{"mdc code only", fromBase(`"system":"http://loinc.org","code":"8867-4"`, `"system":"urn:iso:std:iso:11073:10101","code":"147842"`), "", ""},
	{"decimal kept", fromBase(`"value":44`, `"value":44.50`), "", ""},

	// Strict decoding: EINVALID.
	{"unknown element", fromBase(`"value":44`, `"valu":44`), vitalgate.EINVALID, "Observation.valueQuantity.valu"},
	{"wrong case Status", fromBase(`,"status":"final"`, `,"Status":"final"`), vitalgate.EINVALID, "Observation.Status"},
	{"duplicate key", fromBase(`,"status":"final"`, `,"status":"final","status":"final"`), vitalgate.EINVALID, "Observation.status"},
	{"duplicate key in coding", fromBase(`"code":"8867-4"`, `"code":"8867-4","code":"8480-6"`), vitalgate.EINVALID, "Observation.code.coding[0].code"},
	{"wrong type number for string", fromBase(`,"status":"final"`, `,"status":1`), vitalgate.EINVALID, "Observation.status"},
	{"wrong type string for object", fromBase(`"subject":{"reference":"Patient/p1"}`, `"subject":"Patient/p1"`), vitalgate.EINVALID, "Observation.subject"},
	{"wrong type object for array", fromBase(`"coding":[{"system":"http://loinc.org","code":"8867-4"}]`, `"coding":{"system":"http://loinc.org","code":"8867-4"}`), vitalgate.EINVALID, "Observation.code.coding"},
	{"wrong type string for number", fromBase(`"value":44`, `"value":"44"`), vitalgate.EINVALID, "Observation.valueQuantity.value"},
	{"empty string", fromBase(`"id":"hr1"`, `"id":""`), vitalgate.EINVALID, "Observation.id"},
	{"empty array", fromBase(`"coding":[{"system":"http://loinc.org","code":"8867-4"}]`, `"coding":[]`), vitalgate.EINVALID, "Observation.code.coding"},
	{"empty object", fromBase(`"subject":{"reference":"Patient/p1"}`, `"subject":{}`), vitalgate.EINVALID, "Observation.subject"},
	{"null", fromBase(`"id":"hr1"`, `"id":null`), vitalgate.EINVALID, "Observation.id"},
	{"control character", fromBase(`"id":"hr1"`, `"id":"a\u0000b"`), vitalgate.EINVALID, "Observation.id"},
	{"primitive extension", fromBase(`,"status":"final"`, `,"status":"final","_status":{"id":"s"}`), vitalgate.EINVALID, "Observation._status"},
	{"extension", fromBase(`"id":"hr1"`, `"id":"hr1","extension":[{"url":"http://x"}]`), vitalgate.EINVALID, "Observation.extension"},
	{"resourceType Patient", fromBase(`"resourceType":"Observation"`, `"resourceType":"Patient"`), vitalgate.EINVALID, "Observation.resourceType"},
	{"resourceType missing", fromBase(`"resourceType":"Observation",`, ``), vitalgate.EINVALID, "Observation.resourceType"},
	{"resourceType nested", fromBase(`"subject":{`, `"subject":{"resourceType":"Patient",`), vitalgate.EINVALID, "Observation.subject.resourceType"},
	{"two value elements", fromBase(`"valueQuantity"`, `"valueString":"x","valueQuantity"`), vitalgate.EINVALID, "Observation.valueQuantity"},
	{"two effective elements", fromBase(`"effectiveDateTime"`, `"effectiveInstant":"2025-12-31T10:00:00Z","effectiveDateTime"`), vitalgate.EINVALID, "Observation.effectiveDateTime"},
	{"integer with fraction", fromBase(`"valueQuantity":{"value":44,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}`, `"valueInteger":1.5`), vitalgate.EINVALID, "Observation.valueInteger"},
	{"integer too big", fromBase(`"valueQuantity":{"value":44,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}`, `"valueInteger":2147483648`), vitalgate.EINVALID, "Observation.valueInteger"},
	{"decimal overflow", fromBase(`"value":44`, `"value":1e999`), vitalgate.EINVALID, "Observation.valueQuantity.value"},
	{"trailing garbage", raw(base + "x"), vitalgate.EINVALID, ""},
	{"trailing object", raw(base + "{}"), vitalgate.EINVALID, ""},
	{"truncated", raw(base[:len(base)-5]), vitalgate.EINVALID, "Observation.valueQuantity.code"},
	{"syntax error", fromBase(`"id":"hr1",`, `"id":"hr1",,`), vitalgate.EINVALID, "Observation"},
	{"not an object", raw(`["Observation"]`), vitalgate.EINVALID, "Observation"},
	{"markup key not echoed", fromBase(`"id":"hr1"`, `"<script>":"hr1"`), vitalgate.EINVALID, "Observation.(invalid name)"},
	{"deep nesting", fromBase(`"subject":{"reference":"Patient/p1"}`, `"subject":`+deepAssigner(20)), vitalgate.ETOOLARGE, ""},
	{"unknown element in component", fromFile("Observation-blood-pressure.json", `"value": 60`, `"valeu": 60`), vitalgate.EINVALID, "Observation.component[1].valueQuantity.valeu"},

	// Validation: EUNPROCESSABLE (or EINVALID for malformed formats).
	{"missing status", fromBase(`,"status":"final"`, ``), vitalgate.EUNPROCESSABLE, "Observation.status"},
	{"bad status", fromBase(`,"status":"final"`, `,"status":"done"`), vitalgate.EUNPROCESSABLE, "Observation.status"},
	{"missing code", fromBase(`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},`, ``), vitalgate.EUNPROCESSABLE, "Observation.code"},
	{"code text only", fromBase(`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]}`, `"code":{"text":"HR"}`), vitalgate.EUNPROCESSABLE, "Observation.code.coding"},
	{"code not loinc or mdc", fromBase(`"system":"http://loinc.org","code":"8867-4"`, `"system":"http://snomed.info/sct","code":"364075005"`), vitalgate.EUNPROCESSABLE, "Observation.code.coding"},
	{"unknown loinc with quantity", fromBase(`"code":"8867-4"`, `"code":"1234-5"`), vitalgate.EUNPROCESSABLE, "Observation.code.coding[0].code"},
	{"codings of different vitals", fromBase(`{"system":"http://loinc.org","code":"8867-4"}`, `{"system":"http://loinc.org","code":"8867-4"},{"system":"http://loinc.org","code":"9279-1"}`), vitalgate.EUNPROCESSABLE, "Observation.code.coding[1].code"},
	{"missing subject", fromBase(`"subject":{"reference":"Patient/p1"},`, ``), vitalgate.EUNPROCESSABLE, "Observation.subject"},
	{"missing effective", fromBase(`"effectiveDateTime":"2025-12-31T10:00:00Z",`, ``), vitalgate.EUNPROCESSABLE, "Observation.effective[x]"},
	{"effective without zone", fromBase("2025-12-31T10:00:00Z", "2025-12-31T10:00:00"), vitalgate.EINVALID, "Observation.effectiveDateTime"},
	{"effective without seconds", fromBase("2025-12-31T10:00:00Z", "2025-12-31T10:00Z"), vitalgate.EINVALID, "Observation.effectiveDateTime"},
	{"effective impossible date", fromBase("2025-12-31T10:00:00Z", "2023-02-30"), vitalgate.EINVALID, "Observation.effectiveDateTime"},
	{"effective future 10 minutes", fromBase("2025-12-31T10:00:00Z", "2026-01-02T03:14:05Z"), vitalgate.EUNPROCESSABLE, "Observation.effectiveDateTime"},
	{"effective future date", fromBase("2025-12-31T10:00:00Z", "2026-01-04"), vitalgate.EUNPROCESSABLE, "Observation.effectiveDateTime"},
	{"effective instant date only", fromBase(`"effectiveDateTime":"2025-12-31T10:00:00Z"`, `"effectiveInstant":"2025-12-31"`), vitalgate.EINVALID, "Observation.effectiveInstant"},
	{"period future end", fromBase(`"effectiveDateTime":"2025-12-31T10:00:00Z"`, `"effectivePeriod":{"start":"2025-12-31T10:00:00Z","end":"2026-02-01T00:00:00Z"}`), vitalgate.EUNPROCESSABLE, "Observation.effectivePeriod.end"},
	{"period reversed", fromBase(`"effectiveDateTime":"2025-12-31T10:00:00Z"`, `"effectivePeriod":{"start":"2025-12-31T10:00:00Z","end":"2025-12-31T09:00:00Z"}`), vitalgate.EUNPROCESSABLE, "Observation.effectivePeriod.end"},
	{"issued future", fromBase(`"effectiveDateTime"`, `"issued":"2026-01-03T00:00:00Z","effectiveDateTime"`), vitalgate.EUNPROCESSABLE, "Observation.issued"},
	{"heart rate in mmHg", fromBase(`"code":"/min"`, `"code":"mm[Hg]"`), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.code"},
	{"heart rate 400", fromBase(`"value":44`, `"value":400`), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.value"},
	{"spo2 120", fromFile("Observation-satO2.json", `"value": 95`, `"value": 120`), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.value"},
	{"non-UCUM system", fromBase(`"system":"http://unitsofmeasure.org"`, `"system":"http://example.org/units"`), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.system"},
	{"quantity without code", fromBase(`,"code":"/min"`, ``), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.code"},
	{"quantity without value", fromBase(`"value":44,`, ``), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.value"},
	{"bad comparator", fromBase(`"value":44,`, `"value":44,"comparator":"~",`), vitalgate.EUNPROCESSABLE, "Observation.valueQuantity.comparator"},
	{"value and dataAbsentReason", fromBase(`"valueQuantity"`, `"dataAbsentReason":{"text":"x"},"valueQuantity"`), vitalgate.EUNPROCESSABLE, "Observation.dataAbsentReason"},
	{"no value", fromBase(`,"valueQuantity":{"value":44,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}`, ``), vitalgate.EUNPROCESSABLE, "Observation.value[x]"},
	{"heart rate as string", fromBase(`"valueQuantity":{"value":44,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}`, `"valueString":"44"`), vitalgate.EUNPROCESSABLE, "Observation.value[x]"},
	{"bp component unit", fromFile("Observation-blood-pressure.json", `"code": "mm[Hg]"`, `"code": "/min"`), vitalgate.EUNPROCESSABLE, "Observation.component[0].valueQuantity.code"},
	{"bp diastolic out of range", fromFile("Observation-blood-pressure.json", `"value": 60`, `"value": 6000`), vitalgate.EUNPROCESSABLE, "Observation.component[1].valueQuantity.value"},
	{"bp component without value", fromFile("Observation-blood-pressure.json", `"value": 60`, `"value": 60, "comparator": "<"`), "", ""},
	{"bp panel with value", fromFile("Observation-blood-pressure.json", `"component": [`, `"valueString": "107/60", "component": [`), vitalgate.EUNPROCESSABLE, "Observation.component"},
	{"vitals panel with value", fromFile("Observation-vitals-panel.json", `"hasMember": [`, `"valueString": "ok", "hasMember": [`), vitalgate.EUNPROCESSABLE, "Observation.hasMember"},
	{"cancel component both", fromFile("Observation-blood-pressure-cancel.json", `"dataAbsentReason": {`, `"valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}, "dataAbsentReason": {`), vitalgate.EUNPROCESSABLE, "Observation.component[0].dataAbsentReason"},
	{"reference range unit", fromFile("Observation-satO2.json", `"value": 90,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%"`, `"value": 90, "system": "http://unitsofmeasure.org", "code": "/min"`), vitalgate.EUNPROCESSABLE, "Observation.referenceRange[0].low.code"},
	{"bad subject reference", fromBase(`"Patient/p1"`, `"Patient/"`), vitalgate.EINVALID, "Observation.subject.reference"},
	{"absolute subject reference", fromBase(`"Patient/p1"`, `"http://evil.example/Patient/p1"`), vitalgate.EINVALID, "Observation.subject.reference"},
	{"urn uuid outside bundle", fromBase(`"Patient/p1"`, `"urn:uuid:0b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f60"`), vitalgate.EINVALID, "Observation.subject.reference"},
	{"bad performer reference", fromBase(`"effectiveDateTime"`, `"performer":[{"reference":"Practitioner/1"},{"reference":"x y"}],"effectiveDateTime"`), vitalgate.EINVALID, "Observation.performer[1].reference"},
	{"bad id", fromBase(`"id":"hr1"`, `"id":"a b"`), vitalgate.EINVALID, "Observation.id"},
	{"bad narrative status", fromBase(`"status":"generated"`, `"status":"auto"`), vitalgate.EUNPROCESSABLE, "Observation.text.status"},

	// Narrative.
	{"narrative script", withDiv(`<div ` + xmlns + `><script>alert(1)</script></div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
	{"narrative onclick", withDiv(`<div ` + xmlns + `><p onclick=\"alert(1)\">x</p></div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
	{"narrative form", withDiv(`<div ` + xmlns + `><form><p>x</p></form></div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
	{"narrative style url", withDiv(`<div ` + xmlns + `><p style=\"background: URL (http://x)\">x</p></div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
	{"narrative external img", withDiv(`<div ` + xmlns + `><img src=\"http://evil.example/x.png\"/></div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
	{"narrative javascript href", withDiv(`<div ` + xmlns + `><a href=\"javascript:alert(1)\">x</a></div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
	{"narrative no namespace", withDiv(`<div><p>x</p></div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
	{"narrative empty", withDiv(`<div ` + xmlns + `> <p/> </div>`), vitalgate.EUNPROCESSABLE, "Observation.text.div"},
}

// markup matches anything that looks like the start of a tag.
var markup = regexp.MustCompile(`<[A-Za-z/!?]`)

func checkErr(t *testing.T, err error, code, field string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error; want %s at %q", code, field)
	}
	if got := vitalgate.ErrorCode(err); got != code {
		t.Fatalf("code = %q, want %q (%v)", got, code, err)
	}
	if field != "" || code != vitalgate.ETOOLARGE {
		if got := vitalgate.ErrorField(err); got != field {
			t.Fatalf("field = %q, want %q (%v)", got, field, err)
		}
	}
	if msg := vitalgate.ErrorMessage(err); msg == "" || markup.MatchString(msg) {
		t.Fatalf("message %q is empty or contains markup", msg)
	}
}

func TestDecodeAndValidateObservation(t *testing.T) {
	for _, tt := range observationCases {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.input(t)
			o, err := fhir.DecodeObservation([]byte(in))
			if err == nil {
				err = fhir.ValidateObservation(o, now)
			}
			checkErr(t, err, tt.code, tt.field)
		})
	}
}
