package console

import (
	"strings"
	"testing"
	"time"
)

// TestCharts: readings are read from values and components, grouped by vital sign and
// unit, laid out over the range (oldest left, highest top), with the reference band when
// the Observation gives one; what cannot be read is left out.
func TestCharts(t *testing.T) {
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	obs := func(at time.Time, body string) []byte {
		return []byte(`{"resourceType":"Observation","effectiveDateTime":"` + at.Format(time.RFC3339) + `",` + body + `}`)
	}
	hr := `"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":%v,"unit":"/min"},` +
		`"referenceRange":[{"low":{"value":60},"high":{"value":100}}]`
	bp := `"code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[` +
		`{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"unit":"mm[Hg]"}},` +
		`{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"unit":"mm[Hg]"}}]`
	tests := []struct {
		name   string
		in     [][]byte
		charts []string // names, in order
		check  func(t *testing.T, cs []chart)
	}{
		{"heart rate with range", [][]byte{obs(from, strings.Replace(hr, "%v", "70", 1)), obs(to, strings.Replace(hr, "%v", "110", 1))},
			[]string{"heart rate"}, func(t *testing.T, cs []chart) {
				c := cs[0]
				if c.Points != "0.0,138.0 720.0,10.0" || !c.HasRange || c.Latest != "110" || c.Count != 2 || c.RangeLabel != "60–100" {
					t.Errorf("chart %+v", c)
				}
			}},
		{"blood pressure components", [][]byte{obs(from.Add(30*time.Minute), bp)}, []string{"diastolic blood pressure", "systolic blood pressure"}, nil},
		{"unreadable left out", [][]byte{[]byte(`{`), obs(from, `"code":{"text":"x"}`), []byte(`{"effectiveDateTime":"yesterday","valueQuantity":{"value":1}}`)}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs []reading
			for _, b := range tt.in {
				rs = append(rs, parseObservation(b)...)
			}
			cs := buildCharts(rs, from, to)
			var names []string
			for _, c := range cs {
				names = append(names, c.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.charts, ",") {
				t.Fatalf("charts %v, want %v", names, tt.charts)
			}
			if tt.check != nil {
				tt.check(t, cs)
			}
		})
	}
}

// FuzzParseObservation: stored Observations came from devices over the wire; whatever they
// hold, reading and charting them never panics and gives finite coordinates.
func FuzzParseObservation(f *testing.F) {
	f.Add([]byte(`{"effectiveDateTime":"2026-01-01T00:30:00Z","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueQuantity":{"value":72,"unit":"/min"}}`))
	f.Add([]byte(`{"effectiveDateTime":"2026-01-01T00:30:00Z","component":[{"code":{"text":"x"},"valueQuantity":{"value":1e308}}],"referenceRange":[{"low":{"value":-1e308}}]}`))
	f.Add([]byte(`{}`))
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		cs := buildCharts(parseObservation(b), from, from.Add(time.Hour))
		for _, c := range cs {
			for _, d := range c.Dots {
				if d.X != d.X || d.Y != d.Y || d.X < 0 || d.X > chartW {
					t.Fatalf("dot %+v out of the chart", d)
				}
			}
		}
	})
}
