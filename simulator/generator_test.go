package simulator_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/simulator"
)

// parsedObservation is what the range tests read back from generated JSON.
type parsedObservation struct {
	ResourceType string `json:"resourceType"`
	Meta         struct {
		Profile []string `json:"profile"`
	} `json:"meta"`
	Status   string `json:"status"`
	Category []struct {
		Coding []struct{ System, Code string } `json:"coding"`
	} `json:"category"`
	Code struct {
		Coding []struct{ System, Code string } `json:"coding"`
	} `json:"code"`
	Subject           struct{ Reference string } `json:"subject"`
	Device            struct{ Reference string } `json:"device"`
	EffectiveDateTime string                     `json:"effectiveDateTime"`
	ValueQuantity     *quantity                  `json:"valueQuantity"`
	Component         []struct {
		Code struct {
			Coding []struct{ System, Code string } `json:"coding"`
		} `json:"code"`
		ValueQuantity quantity `json:"valueQuantity"`
	} `json:"component"`
}

type quantity struct {
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	System string  `json:"system"`
	Code   string  `json:"code"`
}

// valueRange is the plausible range, UCUM unit, precision and per-reading drift of one code.
type valueRange struct {
	lo, hi   float64
	unit     string
	decimals int
	maxStep  float64
}

var ranges = map[string]valueRange{
	"8867-4":  {60, 90, "/min", 0, 2},
	"8889-8":  {60, 90, "/min", 0, 2},
	"59408-5": {95, 99, "%", 0, 1},
	"9279-1":  {12, 20, "/min", 0, 1},
	"8480-6":  {110, 130, "mm[Hg]", 0, 3},
	"8462-4":  {70, 85, "mm[Hg]", 0, 2},
	"8310-5":  {36.4, 37.4, "Cel", 1, 0.1},
	"29463-7": {40, 150, "kg", 1, 0.1},
}

func mustParse(tb testing.TB, doc []byte) parsedObservation {
	tb.Helper()
	var o parsedObservation
	dec := json.NewDecoder(bytes.NewReader(doc))
	if err := dec.Decode(&o); err != nil {
		tb.Fatalf("observation does not parse: %v\n%s", err, doc)
	}
	return o
}

func TestGeneratorRanges(t *testing.T) {
	const samples = 10000
	at := time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		kind  string
		codes []string // the primary code of each observation of a round, in order
	}{
		{simulator.KindMonitor, []string{"8867-4", "59408-5", "9279-1", "85354-9"}},
		{simulator.KindThermometer, []string{"8310-5"}},
		{simulator.KindScale, []string{"29463-7"}},
		{simulator.KindPulseOximeter, []string{"59408-5", "8889-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			g, err := simulator.NewGenerator(tt.kind, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if g.Kind() != tt.kind || len(g.Vitals()) != len(tt.codes) {
				t.Fatalf("Kind %q Vitals %v", g.Kind(), g.Vitals())
			}
			prev := map[string]float64{}
			for i := range samples {
				docs, err := g.Observations("dev-1", "pat-1", at)
				if err != nil {
					t.Fatal(err)
				}
				if len(docs) != len(tt.codes) {
					t.Fatalf("round has %d observations, want %d", len(docs), len(tt.codes))
				}
				for j, doc := range docs {
					o := mustParse(t, doc)
					if j == 0 && i == 0 {
						checkEnvelope(t, o, at)
					}
					if got := o.Code.Coding[0].Code; got != tt.codes[j] {
						t.Fatalf("observation %d has code %s, want %s", j, got, tt.codes[j])
					}
					values := map[string]quantity{}
					if o.ValueQuantity != nil {
						values[o.Code.Coding[0].Code] = *o.ValueQuantity
					}
					for _, c := range o.Component {
						values[c.Code.Coding[0].Code] = c.ValueQuantity
					}
					if len(values) == 0 {
						t.Fatalf("observation has no value: %s", doc)
					}
					for code, q := range values {
						r, ok := ranges[code]
						if !ok {
							t.Fatalf("no range for code %s", code)
						}
						if q.Value < r.lo || q.Value > r.hi {
							t.Fatalf("sample %d: %s = %v outside [%v, %v]", i, code, q.Value, r.lo, r.hi)
						}
						if q.System != simulator.UCUMSystem || q.Code != r.unit {
							t.Fatalf("%s unit %s|%s, want %s|%s", code, q.System, q.Code, simulator.UCUMSystem, r.unit)
						}
						p := math.Pow10(r.decimals)
						if math.Abs(q.Value*p-math.Round(q.Value*p)) > 1e-9 {
							t.Fatalf("%s = %v has more than %d decimals", code, q.Value, r.decimals)
						}
						if last, ok := prev[code]; ok && math.Abs(q.Value-last) > r.maxStep+1e-9 {
							t.Fatalf("%s jumped from %v to %v (max drift %v)", code, last, q.Value, r.maxStep)
						}
						prev[code] = q.Value
					}
				}
			}
		})
	}
}

var rfc3339Seconds = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$`)

func checkEnvelope(t *testing.T, o parsedObservation, at time.Time) {
	t.Helper()
	if o.ResourceType != "Observation" || o.Status != "final" {
		t.Errorf("resourceType %q status %q", o.ResourceType, o.Status)
	}
	if !slices.Equal(o.Meta.Profile, []string{simulator.VitalSignsProfile}) {
		t.Errorf("meta.profile %v", o.Meta.Profile)
	}
	if len(o.Category) != 1 || o.Category[0].Coding[0].Code != "vital-signs" || o.Category[0].Coding[0].System != simulator.CategorySystem {
		t.Errorf("category %+v", o.Category)
	}
	if o.Subject.Reference != "Patient/pat-1" || o.Device.Reference != "Device/dev-1" {
		t.Errorf("subject %q device %q", o.Subject.Reference, o.Device.Reference)
	}
	if !rfc3339Seconds.MatchString(o.EffectiveDateTime) {
		t.Errorf("effectiveDateTime %q is not RFC 3339 with seconds and zone", o.EffectiveDateTime)
	}
	got, err := time.Parse(time.RFC3339, o.EffectiveDateTime)
	if err != nil || !got.Equal(at.Truncate(time.Second)) {
		t.Errorf("effectiveDateTime %q, want %v", o.EffectiveDateTime, at)
	}
}

func TestNewObservationCodes(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		reading simulator.Reading
		codings []string // system|code
	}{
		{"heart rate", simulator.Reading{Vital: simulator.HeartRate, Value: 72}, []string{"http://loinc.org|8867-4"}},
		{"spo2", simulator.Reading{Vital: simulator.OxygenSaturation, Value: 97},
			[]string{"http://loinc.org|59408-5", "http://loinc.org|2708-6", "urn:iso:std:iso:11073:10101|150456"}},
		{"respiratory rate", simulator.Reading{Vital: simulator.RespiratoryRate, Value: 14}, []string{"http://loinc.org|9279-1"}},
		{"blood pressure", simulator.Reading{Vital: simulator.BloodPressure, Value: 120, Diastolic: 80}, []string{"http://loinc.org|85354-9"}},
		{"temperature", simulator.Reading{Vital: simulator.BodyTemperature, Value: 36.8}, []string{"http://loinc.org|8310-5"}},
		{"weight", simulator.Reading{Vital: simulator.BodyWeight, Value: 70.2}, []string{"http://loinc.org|29463-7"}},
		{"pulse rate", simulator.Reading{Vital: simulator.PulseRate, Value: 70}, []string{"http://loinc.org|8889-8", "urn:iso:std:iso:11073:10101|149530"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := simulator.NewObservation(tt.reading, "d", "p", at)
			if err != nil {
				t.Fatal(err)
			}
			o := mustParse(t, doc)
			var got []string
			for _, c := range o.Code.Coding {
				got = append(got, c.System+"|"+c.Code)
			}
			if !slices.Equal(got, tt.codings) {
				t.Errorf("codings %v, want %v", got, tt.codings)
			}
			if o.EffectiveDateTime != "2026-01-02T03:04:05Z" {
				t.Errorf("effectiveDateTime %q", o.EffectiveDateTime)
			}
			if tt.reading.Vital == simulator.BloodPressure {
				if o.ValueQuantity != nil || len(o.Component) != 2 ||
					o.Component[0].Code.Coding[0].Code != "8480-6" || o.Component[0].ValueQuantity.Value != 120 ||
					o.Component[1].Code.Coding[0].Code != "8462-4" || o.Component[1].ValueQuantity.Value != 80 {
					t.Errorf("blood pressure components: %s", doc)
				}
			} else if o.ValueQuantity == nil || o.ValueQuantity.Value != tt.reading.Value {
				t.Errorf("valueQuantity: %s", doc)
			}
		})
	}
	if _, err := simulator.NewObservation(simulator.Reading{Vital: "nonsense"}, "d", "p", at); err == nil {
		t.Error("unknown vital: no error")
	}
	if _, err := simulator.NewObservation(simulator.Reading{Vital: simulator.HeartRate}, "", "p", at); err == nil {
		t.Error("no device id: no error")
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	seed := bytes.Repeat([]byte{7}, 64)
	a, err := simulator.NewGenerator(simulator.KindMonitor, bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	b, err := simulator.NewGenerator(simulator.KindMonitor, bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if ra, rb := a.Next(), b.Next(); !slices.Equal(ra, rb) {
			t.Fatalf("same seed, different readings: %v %v", ra, rb)
		}
	}
	if _, err := simulator.NewGenerator("toaster", rand.Reader); err == nil {
		t.Error("unknown kind: no error")
	}
}

func TestNewBundle(t *testing.T) {
	g, err := simulator.NewGenerator(simulator.KindMonitor, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := g.Observations("d", "p", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"batch", "transaction"} {
		raw, err := simulator.NewBundle(typ, docs, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			ResourceType, Type string
			Entry              []struct {
				FullURL  string          `json:"fullUrl"`
				Resource json.RawMessage `json:"resource"`
				Request  struct{ Method, URL string }
			}
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatal(err)
		}
		uuid := regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
		if b.ResourceType != "Bundle" || b.Type != typ || len(b.Entry) != len(docs) {
			t.Fatalf("bundle %s", raw)
		}
		for i, e := range b.Entry {
			if !uuid.MatchString(e.FullURL) || e.Request.Method != "POST" || e.Request.URL != "Observation" {
				t.Errorf("entry %d: %+v", i, e)
			}
			if mustParse(t, e.Resource).ResourceType != "Observation" {
				t.Errorf("entry %d resource", i)
			}
		}
	}
	if _, err := simulator.NewBundle("history", docs, rand.Reader); err == nil {
		t.Error("bundle type history: no error")
	}
}

// TestNewIdentifiedObservation checks that an identified Observation passes Vitalgate's strict
// decoding with its identifier (what the resend check looks up), and that a half identifier
// is refused.
func TestNewIdentifiedObservation(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := simulator.Reading{Vital: simulator.HeartRate, Value: 72}
	tests := []struct {
		name  string
		ident simulator.Identifier
		want  int // identifiers decoded
	}{
		{"none", simulator.Identifier{}, 0},
		{"identified", simulator.Identifier{System: "urn:example:device-1", Value: "000000000000002a"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := simulator.NewIdentifiedObservation(r, "d", "p", at, tt.ident)
			if err != nil {
				t.Fatal(err)
			}
			o, err := fhir.DecodeObservation(doc)
			if err != nil {
				t.Fatalf("strict decode: %v\n%s", err, doc)
			}
			if len(o.Identifier) != tt.want {
				t.Fatalf("identifiers %+v, want %d", o.Identifier, tt.want)
			}
			if tt.want == 1 && (o.Identifier[0].System != tt.ident.System || o.Identifier[0].Value != tt.ident.Value || o.Identifier[0].Use != "official") {
				t.Errorf("identifier %+v, want %+v (official)", o.Identifier[0], tt.ident)
			}
		})
	}
	if _, err := simulator.NewIdentifiedObservation(r, "d", "p", at, simulator.Identifier{Value: "1"}); err == nil {
		t.Error("identifier without a system: no error")
	}
}
