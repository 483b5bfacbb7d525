package deid_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/deid"
)

var now = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

func mustTransform(tb testing.TB, tr *deid.Transformer, in []byte) []byte {
	tb.Helper()
	out, err := tr.Resource(in)
	if err != nil {
		tb.Fatalf("Resource: %v\n%s", err, in)
	}
	if !json.Valid(out) {
		tb.Fatalf("output is not valid JSON: %s", out)
	}
	return out
}

// checkClean fails tb for every identifier kind the scan finds in out and every
// identifying string of in that out still holds.
func checkClean(tb testing.TB, name string, in, out []byte, o scanOptions) {
	tb.Helper()
	found, err := scan(out, o)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	for _, k := range kinds {
		if f := found[k.name]; len(f) > 0 {
			tb.Errorf("%s: %s left in the output:\n  %s\noutput: %s", name, k.name, strings.Join(f, "\n  "), out)
		}
	}
	if bad := leaked(in, out); len(bad) > 0 {
		tb.Errorf("%s: input identifiers in the output: %s\noutput: %s", name, strings.Join(bad, ", "), out)
	}
}

// TestOfficialExamples runs the transform over the official FHIR R4 examples in
// testdata/r4 (SOURCES.txt), cutting dates to years and shifting them, and scans every
// output for each Safe Harbor identifier kind.
func TestOfficialExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/r4/*.json")
	if err != nil || len(files) < 30 {
		t.Fatalf("testdata/r4: %d files, %v", len(files), err)
	}
	for _, shift := range []bool{false, true} {
		tr := deid.New(deid.NewPseudonyms(), deid.Options{Now: now, ShiftDates: shift})
		for _, f := range files {
			t.Run(fmt.Sprintf("%s/shift=%v", filepath.Base(f), shift), func(t *testing.T) {
				in, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if found, _ := scan(in, scanOptions{shifted: shift, nowYear: now.Year()}); len(found) == 0 {
					t.Fatalf("the scan finds no identifier in the input: it could not fail")
				}
				out := mustTransform(t, tr, in)
				checkClean(t, filepath.Base(f), in, out, scanOptions{shifted: shift, nowYear: now.Year()})
				var in0, out0 map[string]any
				_ = json.Unmarshal(in, &in0)
				_ = json.Unmarshal(out, &out0)
				if out0["resourceType"] != in0["resourceType"] {
					t.Fatalf("resourceType %v, want %v", out0["resourceType"], in0["resourceType"])
				}
			})
		}
	}
}

// TestScanDetectsEachKind plants one identifier of each kind in a resource and checks
// that the scan reports that kind: the scan of the other tests can fail.
func TestScanDetectsEachKind(t *testing.T) {
	planted := map[string]string{
		"(A) names": `{"resourceType":"Patient","name":[{"family":"Chalmers"}]}`,
		"(B) geographic subdivisions smaller than a state":                                 `{"resourceType":"Patient","address":[{"city":"Pleasantville","state":"Vic"}]}`,
		"(C) dates other than years, ages over 89":                                         `{"resourceType":"Patient","birthDate":"1974-12-25"}`,
		"(D, E) telephone and fax numbers":                                                 `{"resourceType":"Patient","extension":[{"url":"x","valueString":"(03) 5555 6473"}]}`,
		"(F) e-mail addresses":                                                             `{"resourceType":"Patient","extension":[{"url":"x","valueString":"p.heuvel@gmail.com"}]}`,
		"(G) social security numbers":                                                      `{"resourceType":"Patient","extension":[{"url":"x","valueString":"123-45-6789"}]}`,
		"(H-L) record, plan, account, licence, vehicle numbers and (M) device identifiers": `{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.36.146.595.217.0.1","value":"12345"}]}`,
		"(N) URLs":         `{"resourceType":"Patient","extension":[{"url":"x","valueUri":"https://example.org/~peter"}]}`,
		"(O) IP addresses": `{"resourceType":"Device","extension":[{"url":"x","valueString":"10.1.2.3"}]}`,
		"(P, Q) biometric identifiers and photographs": `{"resourceType":"Patient","photo":[{"contentType":"image/gif"}]}`,
		"(R) free text that can carry any of them":     `{"resourceType":"Observation","note":[{"text":"Peter says hi"}]}`,
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			in, ok := planted[k.name]
			if !ok {
				t.Fatal("no planted example for this kind")
			}
			found, err := scan([]byte(in), scanOptions{nowYear: now.Year()})
			if err != nil {
				t.Fatal(err)
			}
			if len(found[k.name]) == 0 {
				t.Fatalf("the scan does not see %s in %s", k.name, in)
			}
			out := mustTransform(t, deid.New(deid.NewPseudonyms(), deid.Options{Now: now}), []byte(in))
			if found, _ := scan(out, scanOptions{nowYear: now.Year()}); len(found[k.name]) > 0 {
				t.Fatalf("after the transform: %v", found[k.name])
			}
		})
	}
}

// synthetic is a made-up population: patients with every kind of identifier, their
// devices and their observations.
type synthetic struct {
	patients, devices, observations [][]byte
	birth                           map[string]string // patient id → birth date
}

func makePopulation(n int, seed uint64) synthetic {
	r := rand.New(rand.NewPCG(seed, seed+1))
	given := []string{"Amelia", "Bartholomew", "Chidinma", "Dmitri", "Eleanor", "Farouk", "Giselle", "Hiroshi", "Ingrid", "Joaquin"}
	family := []string{"Abernathy", "Bräunlich", "Castellanos", "Delacroix-Smythe", "Eriksdottir", "Fitzwilliam", "Gonçalves", "Hakimi"}
	streets := []string{"Elm Street", "Rue de la Paix", "Kurfürstendamm", "Calle Mayor"}
	cities := []string{"Springfield", "Pleasantville", "Rivendell", "Smallville"}
	s := synthetic{birth: map[string]string{}}
	for i := range n {
		pid := fmt.Sprintf("pat-%04d", i)
		g, f := given[r.IntN(len(given))], family[r.IntN(len(family))]
		year := 1925 + r.IntN(95) // some over 89
		birth := fmt.Sprintf("%04d-%02d-%02d", year, 1+r.IntN(12), 1+r.IntN(28))
		s.birth[pid] = birth
		ssn := fmt.Sprintf("%03d-%02d-%04d", 100+r.IntN(800), 10+r.IntN(89), 1000+r.IntN(8999))
		p := map[string]any{
			"resourceType": "Patient", "id": pid,
			"meta": map[string]any{"versionId": "3", "lastUpdated": "2026-11-30T10:00:00Z", "source": "http://ehr.example.org/" + pid},
			"text": map[string]any{"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">" + g + " " + f + ", SSN " + ssn + "</div>"},
			"identifier": []any{
				map[string]any{"system": "http://hospital.example.org/mrn", "value": fmt.Sprintf("MRN%07d", r.IntN(9999999)),
					"type": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}}}},
				map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn},
				map[string]any{"system": "http://plan.example.org/member", "value": fmt.Sprintf("HP-%08d", r.IntN(99999999))},
				map[string]any{"system": "http://bank.example.org/account", "value": fmt.Sprintf("ACCT-%06d", r.IntN(999999))},
				map[string]any{"system": "http://dmv.example.org/licence", "value": fmt.Sprintf("DL%c%07d", 'A'+r.IntN(26), r.IntN(9999999))},
				map[string]any{"system": "http://dmv.example.org/vehicle", "value": fmt.Sprintf("1HGCM82633A%06d", r.IntN(999999))},
			},
			"name": []any{map[string]any{"use": "official", "family": f, "given": []any{g}, "text": g + " " + f}},
			"telecom": []any{
				map[string]any{"system": "phone", "value": fmt.Sprintf("+1 (555) %03d-%04d", r.IntN(999), r.IntN(9999))},
				map[string]any{"system": "fax", "value": fmt.Sprintf("555-%03d-%04d", r.IntN(999), r.IntN(9999))},
				map[string]any{"system": "email", "value": strings.ToLower(g) + "." + fmt.Sprint(i) + "@mail.example.com"},
				map[string]any{"system": "url", "value": "https://home.example.net/~" + strings.ToLower(g) + fmt.Sprint(i)},
			},
			"gender":    []string{"female", "male", "other", "unknown"}[r.IntN(4)],
			"birthDate": birth,
			"address": []any{map[string]any{"use": "home", "line": []any{fmt.Sprintf("%d %s", 1+r.IntN(999), streets[r.IntN(len(streets))])},
				"city": cities[r.IntN(len(cities))], "district": "North County", "state": "MA", "postalCode": fmt.Sprintf("%05d", r.IntN(99999)), "country": "US",
				"text": "somewhere"}},
			"photo": []any{map[string]any{"contentType": "image/jpeg", "data": "R0lGODlhEwARAPcAAAAAAAAA", "url": "https://photos.example.org/" + pid}},
			"contact": []any{map[string]any{"name": map[string]any{"family": family[r.IntN(len(family))], "given": []any{"Relative"}},
				"telecom": []any{map[string]any{"system": "phone", "value": "+44 20 7946 0958"}}}},
			"generalPractitioner":  []any{map[string]any{"reference": "Practitioner/dr-who", "display": "Dr. Quentin Zylberstein"}},
			"managingOrganization": map[string]any{"reference": "Organization/acme-hospital", "display": "Acme Hospital of Springfield"},
			"extension": []any{
				map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": map[string]any{"city": "Gotham", "state": "NJ"}},
				map[string]any{"url": "http://example.org/fhir/StructureDefinition/biometric", "valueString": "fingerprint-hash-" + pid},
			},
		}
		s.patients = append(s.patients, mustJSON(p))
		did := fmt.Sprintf("dev-%04d", i)
		d := map[string]any{
			"resourceType": "Device", "id": did,
			"identifier":   []any{map[string]any{"system": "urn:ietf:rfc:3986", "value": fmt.Sprintf("urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.%d", 2000+i)}},
			"udiCarrier":   []any{map[string]any{"deviceIdentifier": fmt.Sprintf("0884838%06d", i), "carrierHRF": fmt.Sprintf("(01)0884838%06d(21)SN%05d", i, i)}},
			"serialNumber": fmt.Sprintf("SN%05d", i), "lotNumber": fmt.Sprintf("LOT-%04d", i), "modelNumber": "IV-MX500",
			"deviceName":      []any{map[string]any{"name": g + "'s monitor", "type": "user-friendly-name"}},
			"url":             fmt.Sprintf("http://10.20.%d.%d:8080/", i/250, i%250),
			"note":            []any{map[string]any{"text": "Bedside of " + g + " " + f + ", IP 10.20.0.1", "time": "2026-11-01T08:00:00Z"}},
			"patient":         map[string]any{"reference": "Patient/" + pid},
			"manufactureDate": "2024-03-15",
		}
		s.devices = append(s.devices, mustJSON(d))
		for j := range 3 {
			eff := fmt.Sprintf("2026-%02d-%02dT%02d:%02d:00+01:00", 1+r.IntN(11), 1+r.IntN(28), r.IntN(24), r.IntN(60))
			o := map[string]any{
				"resourceType": "Observation", "id": fmt.Sprintf("obs-%04d-%d", i, j), "status": "final",
				"category":          []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs", "display": "Vital Signs"}}}},
				"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}}, "text": "HR of " + g},
				"subject":           map[string]any{"reference": "Patient/" + pid, "display": g + " " + f},
				"device":            map[string]any{"reference": "Device/" + did},
				"effectiveDateTime": eff,
				"issued":            "2026-11-30T10:00:00.123Z",
				"valueQuantity":     map[string]any{"value": 50 + r.IntN(80), "unit": "beats/minute", "system": "http://unitsofmeasure.org", "code": "/min"},
				"note":              []any{map[string]any{"text": "Called " + g + " at home"}},
				"performer":         []any{map[string]any{"reference": "Practitioner/dr-who", "display": "Dr. Quentin Zylberstein"}},
			}
			if j == 0 {
				o["component"] = []any{map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "30525-0", "display": "Age"}}},
					"valueQuantity": map[string]any{"value": now.Year() - year, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}}}
			}
			s.observations = append(s.observations, mustJSON(o))
		}
	}
	return s
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestSyntheticPopulation de-identifies a made-up population of 150 patients with every
// kind of identifier, their devices and observations, and scans each output for every
// Safe Harbor identifier kind; references must still join, ages over 89 be grouped, and
// shifted dates move by one offset per patient.
func TestSyntheticPopulation(t *testing.T) {
	pop := makePopulation(150, 17)
	all := append(append(append([][]byte{}, pop.patients...), pop.devices...), pop.observations...)
	for _, shift := range []bool{false, true} {
		t.Run(fmt.Sprintf("shift=%v", shift), func(t *testing.T) {
			tr := deid.New(deid.NewPseudonyms(), deid.Options{Now: now, ShiftDates: shift})
			outs := map[string]map[string]any{} // new Type/id → output
			patientOf := map[string]string{}    // original patient id → new id
			for i, in := range all {
				out := mustTransform(t, tr, in)
				checkClean(t, fmt.Sprintf("resource %d", i), in, out, scanOptions{shifted: shift, nowYear: now.Year()})
				var o map[string]any
				_ = json.Unmarshal(out, &o)
				outs[o["resourceType"].(string)+"/"+o["id"].(string)] = o
				if i < len(pop.patients) {
					var p map[string]any
					_ = json.Unmarshal(in, &p)
					patientOf[p["id"].(string)] = o["id"].(string)
				}
			}
			old, young := 0, 0
			offsets := map[string]map[int]bool{}
			for key, o := range outs {
				if o["resourceType"] != "Observation" {
					continue
				}
				subj := o["subject"].(map[string]any)["reference"].(string)
				p, ok := outs[subj]
				if !ok {
					t.Fatalf("%s: subject %s is not an exported patient: references do not join", key, subj)
				}
				if dev, ok := outs[o["device"].(map[string]any)["reference"].(string)]; !ok || dev["patient"].(map[string]any)["reference"] != subj {
					t.Fatalf("%s: device reference does not join to the device of the same patient", key)
				}
				if shift {
					eff, _ := time.Parse(time.RFC3339, o["effectiveDateTime"].(string))
					iss, _ := time.Parse(time.RFC3339, o["issued"].(string))
					orig, _ := time.Parse(time.RFC3339, "2026-11-30T10:00:00.123Z")
					if eff.IsZero() {
						t.Fatalf("%s: shifted effectiveDateTime %v is not a dateTime", key, o["effectiveDateTime"])
					}
					days := int(iss.Sub(orig).Hours() / 24)
					if offsets[subj] == nil {
						offsets[subj] = map[int]bool{}
					}
					offsets[subj][days] = true
				}
				_ = p
				if cs, ok := o["component"].([]any); ok {
					q := cs[0].(map[string]any)["valueQuantity"].(map[string]any)
					if v := q["value"].(float64); v > 90 || v == 90 && q["comparator"] != ">=" {
						t.Fatalf("%s: age %v %v left ungrouped", key, q["comparator"], v)
					}
				}
			}
			for pid, nid := range patientOf {
				p := outs["Patient/"+nid]
				_, hasBirth := p["birthDate"]
				over := now.Year()-mustYear(pop.birth[pid]) >= 90
				if shift && !over && !hasBirth {
					continue // shifted across the 90-year line: grouped, which is what the scan asks
				}
				if over {
					old++
					if hasBirth || !strings.Contains(string(mustJSON(p)), deid.AgeOver89URL) {
						t.Fatalf("patient aged 90+ (born %s): birthDate %v, want the 90-or-older extension", pop.birth[pid], p["birthDate"])
					}
				} else {
					young++
					if !hasBirth {
						t.Fatalf("patient born %s lost the birth date", pop.birth[pid])
					}
					if !shift && p["birthDate"] != pop.birth[pid][:4] {
						t.Fatalf("birthDate %v, want the year %s", p["birthDate"], pop.birth[pid][:4])
					}
				}
			}
			if old == 0 || young == 0 {
				t.Fatalf("population has %d patients over 89 and %d younger: both kinds are needed", old, young)
			}
			if shift {
				distinct := map[int]bool{}
				for subj, ds := range offsets {
					if len(ds) != 1 {
						t.Fatalf("%s: dates shifted by %v days: want one offset per patient", subj, ds)
					}
					for d := range ds {
						if d == 0 || d < -365 || d > 365 {
							t.Fatalf("offset %d days out of range", d)
						}
						distinct[d] = true
					}
				}
				if len(distinct) < 10 {
					t.Fatalf("only %d distinct offsets over %d patients: not per patient", len(distinct), len(offsets))
				}
			}
		})
	}
}

func mustYear(date string) int {
	var y int
	_, _ = fmt.Sscanf(date[:4], "%d", &y)
	return y
}

// TestPseudonymsStableAndRandom: a mapping carried from one export to the next gives the
// same codes to the same identifiers and new codes to new ones; two fresh mappings give
// unrelated codes (the codes are random, not derived from the identifiers).
func TestPseudonymsStableAndRandom(t *testing.T) {
	in := []byte(`{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
		"subject":{"reference":"Patient/p1"},"identifier":[{"system":"urn:x","value":"A-1"}],"effectiveDateTime":"2026-05-04T10:00:00Z"}`)
	p := deid.NewPseudonyms()
	first := mustTransform(t, deid.New(p, deid.Options{Now: now, ShiftDates: true}), in)
	saved, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() != 3 {
		t.Fatalf("mapping holds %d codes, want 3 (Observation id, Patient id, identifier)", p.Len())
	}
	q := deid.NewPseudonyms()
	if err := json.Unmarshal(saved, q); err != nil {
		t.Fatal(err)
	}
	second := mustTransform(t, deid.New(q, deid.Options{Now: now, ShiftDates: true}), in)
	if string(first) != string(second) {
		t.Fatalf("the same mapping gave different exports:\n%s\n%s", first, second)
	}
	other := mustTransform(t, deid.New(q, deid.Options{Now: now, ShiftDates: true}), []byte(strings.Replace(string(in), `"o1"`, `"o2"`, 1)))
	if q.Len() != 4 || strings.Contains(string(other), codeOf(t, first, "id")) {
		t.Fatalf("a new resource reused a code or added none: %d codes", q.Len())
	}
	fresh := mustTransform(t, deid.New(deid.NewPseudonyms(), deid.Options{Now: now, ShiftDates: true}), in)
	if codeOf(t, fresh, "id") == codeOf(t, first, "id") {
		t.Fatal("two fresh mappings gave the same code: codes are derived, not random")
	}
	for _, bad := range []string{`{}`, `{"format":"other"}`, `{"format":"vitalgate-deid-pseudonyms-1","resources":{"a":"x","b":"x"}}`,
		`{"format":"vitalgate-deid-pseudonyms-1","date_offsets_days":{"Patient/p":999}}`} {
		if err := json.Unmarshal([]byte(bad), deid.NewPseudonyms()); err == nil {
			t.Errorf("mapping %s accepted", bad)
		}
	}
}

func codeOf(t *testing.T, out []byte, key string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m[key].(string)
	if s == "" {
		t.Fatalf("no %s in %s", key, out)
	}
	return s
}

// TestDates: dates become years, or move by the patient's offset keeping their precision
// and zone; invalid dates are removed.
func TestDates(t *testing.T) {
	tests := []struct {
		name, in      string
		year, shiftRe string // expected without shifting; pattern with shifting ("" = removed)
	}{
		{"year", "1974", "1974", `^1974$`},
		{"year-month", "1974-12", "1974", `^\d{4}-\d{2}$`},
		{"date", "1974-12-25", "1974", `^\d{4}-\d{2}-\d{2}$`},
		{"dateTime", "2012-09-17T14:35:45-05:00", "2012", `^\d{4}-\d{2}-\d{2}T14:35:45-05:00$`},
		{"instant", "2026-11-30T10:00:00.123Z", "2026", `^\d{4}-\d{2}-\d{2}T10:00:00\.123Z$`},
		{"not a date", "Christmas 1974", "", ""},
		{"impossible day", "2023-02-30", "2023", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(`{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p"},"effectiveDateTime":"` + tt.in + `"}`)
			for _, shift := range []bool{false, true} {
				out := mustTransform(t, deid.New(deid.NewPseudonyms(), deid.Options{Now: now, ShiftDates: shift}), in)
				var m map[string]any
				_ = json.Unmarshal(out, &m)
				got, _ := m["effectiveDateTime"].(string)
				want := tt.year
				if shift {
					if tt.shiftRe == "" {
						want = ""
					} else if !regexp.MustCompile(tt.shiftRe).MatchString(got) {
						t.Fatalf("shifted %q = %q, want %s", tt.in, got, tt.shiftRe)
					} else {
						if len(tt.in) >= 10 && got == tt.in {
							t.Fatalf("shifted %q unchanged", tt.in)
						}
						continue
					}
				}
				if got != want {
					t.Fatalf("%q (shift=%v) = %q, want %q", tt.in, shift, got, want)
				}
			}
		})
	}
}

// TestAges: ages over 89 are grouped as "90 or older", younger ones kept.
func TestAges(t *testing.T) {
	tr := deid.New(deid.NewPseudonyms(), deid.Options{Now: now})
	out := mustTransform(t, tr, []byte(`{"resourceType":"Patient","id":"old","birthDate":"1930-05-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1930-05-01T10:00:00Z"}]}}`))
	if strings.Contains(string(out), "1930") || !strings.Contains(string(out), deid.AgeOver89URL) {
		t.Fatalf("patient born 1930: %s", out)
	}
	out = mustTransform(t, tr, []byte(`{"resourceType":"Patient","id":"young","birthDate":"1937-05-01"}`))
	if !strings.Contains(string(out), `"birthDate":"1937"`) {
		t.Fatalf("patient born 1937 (89 by year): %s", out)
	}
	// 89 by year, shifted back 365 days into the year that makes 90: grouped too. The
	// source gives 0x02d9 = 729, the offset -365.
	shifted := deid.New(deid.NewPseudonyms(), deid.Options{Now: now, ShiftDates: true, Rand: bytes.NewReader([]byte{0x02, 0xd9})})
	out = mustTransform(t, shifted, []byte(`{"resourceType":"Patient","birthDate":"1937-01-05"}`))
	if strings.Contains(string(out), "193") || !strings.Contains(string(out), deid.AgeOver89URL) {
		t.Fatalf("patient born 1937 shifted back a year: %s", out)
	}
	if _, err := deid.New(deid.NewPseudonyms(), deid.Options{Now: now, Rand: bytes.NewReader(bytes.Repeat([]byte{7}, 1000))}).
		Resource([]byte(`{"resourceType":"Patient","id":"a","identifier":[{"value":"x"},{"value":"y"}]}`)); err == nil {
		t.Fatal("a repeating randomness source was accepted")
	}
	out = mustTransform(t, tr, []byte(`{"resourceType":"FamilyMemberHistory","id":"f","patient":{"reference":"Patient/young"},"ageAge":{"value":97,"unit":"a","system":"http://unitsofmeasure.org","code":"a"},"status":"completed"}`))
	if !strings.Contains(string(out), `"ageAge":{"code":"a","comparator":">=","system":"http://unitsofmeasure.org","unit":"a","value":90}`) {
		t.Fatalf("age 97: %s", out)
	}
	out = mustTransform(t, tr, []byte(`{"resourceType":"FamilyMemberHistory","id":"g","ageAge":{"value":45,"unit":"a"}}`))
	if !strings.Contains(string(out), `"value":45`) {
		t.Fatalf("age 45: %s", out)
	}
}

// TestNotAResource: input that is not a resource is refused with ErrNotResource.
func TestNotAResource(t *testing.T) {
	tr := deid.New(deid.NewPseudonyms(), deid.Options{Now: now})
	for _, in := range []string{``, `[]`, `"x"`, `{}`, `{"resourceType":1}`, `{"resourceType":"x"}`, `{"resourceType":"Patient"} {}`} {
		if _, err := tr.Resource([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if _, err := deid.New(deid.NewPseudonyms(), deid.Options{}).Resource([]byte(`{"resourceType":"Patient"}`)); err == nil {
		t.Error("no Now accepted")
	}
}
