package fhir_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

func TestBundleExamples(t *testing.T) {
	for _, name := range exampleFiles(t, "Bundle-*.json") {
		t.Run(name, func(t *testing.T) {
			data := mustRead(t, name)
			if rt, err := fhir.DecodeResourceType(data); err != nil || rt != "Bundle" {
				t.Fatalf("DecodeResourceType = %q, %v", rt, err)
			}
			b, err := fhir.DecodeBundle(data, fhir.DefaultLimits())
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for i := range b.Entry {
				if err := fhir.ValidateEntry(b, i, now); err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
			}
			out, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fhir.DecodeBundle(out, fhir.DefaultLimits()); err != nil {
				t.Fatalf("decode re-marshalled: %v", err)
			}
			if a, b := mustGeneric(t, data), mustGeneric(t, out); !reflect.DeepEqual(a, b) {
				t.Fatalf("re-marshalled JSON differs:\n%s", out)
			}
		})
	}
}

func TestDecodeBundleErrors(t *testing.T) {
	tx := func(pairs ...string) func(testing.TB) string { return fromFile("Bundle-transaction.json", pairs...) }
	many := func(n int) func(testing.TB) string {
		return func(tb testing.TB) string {
			e := `{"resource":` + base + `,"request":{"method":"POST","url":"Observation"}}`
			return `{"resourceType":"Bundle","type":"batch","entry":[` + strings.Repeat(e+",", n-1) + e + `]}`
		}
	}
	tests := []struct {
		name  string
		input func(testing.TB) string
		lim   fhir.Limits
		code  string
		field string
	}{
		{"valid", tx(), fhir.Limits{}, "", ""},
		{"at the entry limit", many(3), fhir.Limits{MaxEntries: 3}, "", ""},
		{"over the entry limit", many(4), fhir.Limits{MaxEntries: 3}, vitalgate.ETOOLARGE, "Bundle.entry"},
		{"type collection", tx(`"type": "transaction"`, `"type": "collection"`), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Bundle.type"},
		{"missing type", tx(`"type": "transaction",`, ``), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Bundle.type"},
		{"resource in entry is a Patient", tx(`"resourceType": "Observation"`, `"resourceType": "Patient"`), fhir.Limits{}, vitalgate.EINVALID, "Bundle.entry[0].resource.resourceType"},
		{"unknown element in resource", tx(`"status": "final"`, `"staus": "final"`), fhir.Limits{}, vitalgate.EINVALID, "Bundle.entry[0].resource.staus"},
		{"response not accepted", tx(`"request": {`, `"response": {"status": "201"}, "request": {`), fhir.Limits{}, vitalgate.EINVALID, "Bundle.entry[0].response"},
		{"method PUT", tx(`"method": "POST"`, `"method": "PUT"`), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Bundle.entry[0].request.method"},
		{"url Patient", tx(`"url": "Observation"`, `"url": "Patient"`), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Bundle.entry[0].request.url"},
		{"missing request", tx(`"request": {
        "method": "POST",
        "url": "Observation"
      }`, `"fullUrl": "urn:uuid:9b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f69"`, `"fullUrl": "urn:uuid:0b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f60",`, ``), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Bundle.entry[0].request"},
		{"duplicate fullUrl", tx(`urn:uuid:1c2f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f61"`, `urn:uuid:0b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f60"`), fhir.Limits{}, vitalgate.EUNPROCESSABLE, "Bundle.entry[1].fullUrl"},
		{"bad fullUrl", tx(`"fullUrl": "urn:uuid:0b1f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f60"`, `"fullUrl": "urn:uuid:nope"`), fhir.Limits{}, vitalgate.EINVALID, "Bundle.entry[0].fullUrl"},
		{"deep nesting", raw(`{"resourceType":"Bundle","type":"batch","entry":[{"resource":` + edit(t, base, `"subject":{"reference":"Patient/p1"}`, `"subject":`+deepAssigner(3)) + `}]}`), fhir.Limits{MaxDepth: 8}, vitalgate.ETOOLARGE, ""},
		{"observation not bundle", raw(base), fhir.Limits{}, vitalgate.EINVALID, "Bundle.resourceType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fhir.DecodeBundle([]byte(tt.input(t)), tt.lim)
			checkErr(t, err, tt.code, tt.field)
		})
	}
}

func TestValidateEntry(t *testing.T) {
	tx := string(mustRead(t, "Bundle-transaction.json"))
	tests := []struct {
		name  string
		input string
		entry int
		code  string
		field string
	}{
		{"panel members resolve", tx, 2, "", ""},
		{"member does not resolve", edit(t, tx, `"reference": "urn:uuid:1c2f8a4e-6a55-4d8e-9a3c-1c2b3d4e5f61"`, `"reference": "urn:uuid:ffff8a4e-6a55-4d8e-9a3c-1c2b3d4e5f61"`), 2, vitalgate.EUNPROCESSABLE, "Bundle.entry[2].resource.hasMember[1].reference"},
		{"heart rate out of range", edit(t, tx, `"value": 44`, `"value": 4400`), 0, vitalgate.EUNPROCESSABLE, "Bundle.entry[0].resource.valueQuantity.value"},
		{"no such entry", tx, 7, vitalgate.EINVALID, "Bundle.entry[7]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := fhir.DecodeBundle([]byte(tt.input), fhir.DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			checkErr(t, fhir.ValidateEntry(b, tt.entry, now), tt.code, tt.field)
		})
	}
}

func TestDecodeResourceType(t *testing.T) {
	tests := []struct {
		name, input, want, code string
	}{
		{"observation", base, "Observation", ""},
		{"late resourceType", `{"id":"x","nested":{"resourceType":"Patient"},"resourceType":"Bundle"}`, "Bundle", ""},
		{"missing", `{"id":"x"}`, "", vitalgate.EINVALID},
		{"not a name", `{"resourceType":"<b>"}`, "", vitalgate.EINVALID},
		{"not a string", `{"resourceType":1}`, "", vitalgate.EINVALID},
		{"array", `[]`, "", vitalgate.EINVALID},
		{"garbage", `{"id":`, "", vitalgate.EINVALID},
		{"empty", ``, "", vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fhir.DecodeResourceType([]byte(tt.input))
			if got != tt.want || vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("DecodeResourceType = %q, %v; want %q, %q", got, err, tt.want, tt.code)
			}
		})
	}
}

func TestHelpers(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		subject   string
		device    string
		effective time.Time
	}{
		{"base", base, "p1", "", time.Date(2025, 12, 31, 10, 0, 0, 0, time.UTC)},
		{"device and offset", edit(t, base, `"2025-12-31T10:00:00Z"`, `"2025-12-31T12:00:00+02:00","device":{"reference":"Device/d-1.2"}`), "p1", "d-1.2", time.Date(2025, 12, 31, 10, 0, 0, 0, time.UTC)},
		{"date only", edit(t, base, `"2025-12-31T10:00:00Z"`, `"2025-12"`), "p1", "", time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"period start", edit(t, base, `"effectiveDateTime":"2025-12-31T10:00:00Z"`, `"effectivePeriod":{"start":"2025-12-30T10:00:00Z"}`), "p1", "", time.Date(2025, 12, 30, 10, 0, 0, 0, time.UTC)},
		{"group subject", edit(t, base, `Patient/p1`, `Group/g1`), "", "", time.Date(2025, 12, 31, 10, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := fhir.DecodeObservation([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if id, ok := o.SubjectID(); id != tt.subject || ok != (tt.subject != "") {
				t.Errorf("SubjectID = %q, %v", id, ok)
			}
			if id, ok := o.DeviceID(); id != tt.device || ok != (tt.device != "") {
				t.Errorf("DeviceID = %q, %v", id, ok)
			}
			if et, ok := o.EffectiveTime(); !ok || !et.Equal(tt.effective) {
				t.Errorf("EffectiveTime = %v, %v; want %v", et, ok, tt.effective)
			}
			if c := o.Codes(); len(c) != 1 || c[0].Code != "8867-4" {
				t.Errorf("Codes = %v", c)
			}
		})
	}
}

func TestSetMeta(t *testing.T) {
	o, err := fhir.DecodeObservation(mustRead(t, "Observation-heart-rate.json"))
	if err != nil {
		t.Fatal(err)
	}
	o.SetMeta("abc", "1", time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600)))
	if o.ID != "abc" || o.Meta.VersionID != "1" || o.Meta.LastUpdated != "2026-01-02T02:04:05.0000006Z" || len(o.Meta.Profile) != 1 {
		t.Fatalf("meta = %+v", o.Meta)
	}
	if err := fhir.ValidateObservation(o, now); err != nil {
		t.Fatal(err)
	}
}
