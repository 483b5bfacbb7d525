package fhir_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

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
