package fhir_test

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
)

func addFiles(f *testing.F, pattern string) {
	for _, name := range exampleFiles(f, pattern) {
		f.Add(mustRead(f, name))
	}
}

// FuzzDecodeObservation checks that decoding never panics and that whatever decodes
// re-marshals to bytes that decode again to the same JSON, and validate again if the
// original validated.
func FuzzDecodeObservation(f *testing.F) {
	addFiles(f, "Observation-*.json")
	for _, tt := range observationCases {
		f.Add([]byte(tt.input(f)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := fhir.DecodeObservation(data)
		if err != nil {
			return
		}
		valid := fhir.ValidateObservation(o, now) == nil
		_, _ = o.SubjectID()
		_, _ = o.EffectiveTime()
		out, err := o.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		o2, err := fhir.DecodeObservation(out)
		if err != nil {
			t.Fatalf("decode re-marshalled: %v\n%s", err, out)
		}
		if err := fhir.ValidateObservation(o2, now); valid && err != nil {
			t.Fatalf("re-marshalled no longer validates: %v\n%s", err, out)
		}
		out2, err := o2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if a, b := mustGeneric(t, out), mustGeneric(t, out2); !reflect.DeepEqual(a, b) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzDecodeBundle checks the same round trip for Bundles and their entries.
func FuzzDecodeBundle(f *testing.F) {
	addFiles(f, "Bundle-*.json")
	f.Add([]byte(`{"resourceType":"Bundle","type":"batch","entry":[{"resource":` + base + `,"request":{"method":"POST","url":"Observation"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fhir.Limits{MaxDepth: 16, MaxEntries: 8}
		b, err := fhir.DecodeBundle(data, lim)
		if err != nil {
			return
		}
		valid := make([]bool, len(b.Entry))
		for i := range b.Entry {
			valid[i] = fhir.ValidateEntry(b, i, now) == nil
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		b2, err := fhir.DecodeBundle(out, lim)
		if err != nil {
			t.Fatalf("decode re-marshalled: %v\n%s", err, out)
		}
		for i := range b2.Entry {
			if err := fhir.ValidateEntry(b2, i, now); valid[i] && err != nil {
				t.Fatalf("entry %d no longer validates: %v", i, err)
			}
		}
		out2, _ := b2.Marshal()
		if a, b := mustGeneric(t, out), mustGeneric(t, out2); !reflect.DeepEqual(a, b) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzCheckNarrative checks that CheckNarrative never panics and never accepts markup that
// an HTML parser could run or load.
func FuzzCheckNarrative(f *testing.F) {
	for _, name := range exampleFiles(f, "Observation-*.json") {
		var o struct{ Text struct{ Div string } }
		if err := json.Unmarshal(mustRead(f, name), &o); err != nil {
			f.Fatal(err)
		}
		f.Add(o.Text.Div)
	}
	f.Add(`<div ` + ns + `><p style="color:red">x</p><img src="#a"/><a href="#b">y</a></div>`)
	f.Add(`<div ` + ns + `><script>alert(1)</script></div>`)
	f.Add(`<div ` + ns + `><![CDATA[<script>]]>x</div>`)
	f.Fuzz(func(t *testing.T, div string) {
		if fhir.CheckNarrative(div) != nil {
			return
		}
		l := strings.ToLower(div)
		// Raw '<' in accepted XHTML is always markup, so these may not appear at all.
		for _, bad := range []string{"<script", "<iframe", "<object", "<embed", "<style", "<form", "<!--", "<?", "<![", "<!doctype"} {
			if strings.Contains(l, bad) {
				t.Fatalf("accepted %q containing %q", div, bad)
			}
		}
		// Links and images only point inside the narrative or inline.
		for _, attr := range []string{`href="`, `src="`, `href='`, `src='`} {
			for off := 0; ; {
				i := strings.Index(l[off:], attr)
				if i < 0 {
					break
				}
				off += i + len(attr)
				if inTag(l, l[off-len(attr):off]) && !strings.HasPrefix(l[off:], "#") && !strings.HasPrefix(l[off:], "data:image/") {
					t.Fatalf("accepted %q with an external %s", div, attr)
				}
			}
		}
	})
}

// inTag reports whether s occurs inside a tag of l (after a '<' not yet closed by '>').
func inTag(l, s string) bool {
	for off := 0; ; {
		i := strings.Index(l[off:], s)
		if i < 0 {
			return false
		}
		i += off
		if strings.LastIndex(l[:i], "<") > strings.LastIndex(l[:i], ">") {
			return true
		}
		off = i + 1
	}
}

// FuzzDecodePatient checks that decoding never panics and that whatever decodes re-marshals
// to bytes that decode again to the same JSON, and validate again if the original validated.
func FuzzDecodePatient(f *testing.F) {
	addFiles(f, "Patient-*.json")
	for _, tt := range patientCases {
		f.Add([]byte(tt.input(f)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := fhir.DecodePatient(data)
		if err != nil {
			return
		}
		valid := fhir.ValidatePatient(p, now) == nil
		for _, id := range p.Identifiers() {
			if id.System == "" || id.Value == "" {
				t.Fatalf("Identifiers returned %+v", id)
			}
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		p2, err := fhir.DecodePatient(out)
		if err != nil {
			t.Fatalf("decode re-marshalled: %v\n%s", err, out)
		}
		if err := fhir.ValidatePatient(p2, now); valid && err != nil {
			t.Fatalf("re-marshalled no longer validates: %v\n%s", err, out)
		}
		out2, err := p2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if a, b := mustGeneric(t, out), mustGeneric(t, out2); !reflect.DeepEqual(a, b) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzParseObservationSearch checks that parsing a raw query string never panics, that
// errors are EINVALID and name a parameter without echoing markup, and that results stay
// within the documented limits. It parses the same query as a Patient search too.
func FuzzParseObservationSearch(f *testing.F) {
	for _, s := range []string{
		"patient=p1",
		"patient=Patient/p1&code=http://loinc.org|8867-4,9279-1&date=ge2025-01-01&date=lt2025-02-01T10:00:05.123%2B01:00&_count=10&_sort=date&_cursor=abc",
		`patient=p1&code=http://x.example|a\,b\|c&date=2025-12-31T10:00+05:30`,
		"patient=p1&date=ne2025&_format=xml&%3Cb%3E=1",
		"identifier=urn:oid:1.2.36.146.595.217.0.1|12345&_count=500",
		`identifier=https://h.example/mrn|a\|b`,
		"patient=p1&patient=p2&_count=0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		checkSearchErr := func(err error) {
			t.Helper()
			if vitalgate.ErrorCode(err) != vitalgate.EINVALID || vitalgate.ErrorField(err) == "" {
				t.Fatalf("error %v: want EINVALID with a field", err)
			}
			if f, m := vitalgate.ErrorField(err), vitalgate.ErrorMessage(err); markup.MatchString(f) || markup.MatchString(m) {
				t.Fatalf("error echoes markup: %q %q", f, m)
			}
		}
		s, err := fhir.ParseObservationSearch(q)
		if err != nil {
			checkSearchErr(err)
		} else {
			if s.PatientID == "" || strings.Contains(s.PatientID, "/") {
				t.Fatalf("PatientID %q", s.PatientID)
			}
			if s.Count < 1 || s.Count > fhir.MaxSearchCount || len(s.Codes) > fhir.MaxSearchCodes || len(s.Cursor) > fhir.MaxCursorLength {
				t.Fatalf("out of limits: %+v", s)
			}
			for _, c := range s.Codes {
				// Split at the first '|': the system has none, the code may (escaped).
				if sys, code, ok := strings.Cut(c, "|"); sys == "" || (ok && code == "") {
					t.Fatalf("bad code %q", c)
				}
			}
			if (!s.From.IsZero() && s.From.Location() != time.UTC) || (!s.To.IsZero() && s.To.Location() != time.UTC) {
				t.Fatalf("times not in UTC: %v %v", s.From, s.To)
			}
		}
		p, err := fhir.ParsePatientSearch(q)
		if err != nil {
			checkSearchErr(err)
			return
		}
		if sys, val, ok := strings.Cut(p.Key(), "|"); !ok || sys != p.System || val != p.Value || sys == "" || val == "" {
			t.Fatalf("Key %q does not split into %q and %q", p.Key(), p.System, p.Value)
		}
		if p.Count < 1 || p.Count > fhir.MaxSearchCount {
			t.Fatalf("Count %d", p.Count)
		}
	})
}
