package bulk

import (
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

func TestParseTypeFilters(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		in   string
		want []vitalgate.ExportFilter // nil: EINVALID
	}{
		{"Observation?code=http://loinc.org|8867-4", []vitalgate.ExportFilter{{Type: "Observation", Code: "http://loinc.org|8867-4"}}},
		{"Observation?code=8867-4,9279-1", []vitalgate.ExportFilter{{Type: "Observation", Code: "8867-4"}, {Type: "Observation", Code: "9279-1"}}},
		{"Observation?category=vital-signs&date=ge2026-11-24", []vitalgate.ExportFilter{{Type: "Observation", Category: "vital-signs", From: day(24)}}},
		{"Observation?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", []vitalgate.ExportFilter{{Type: "Observation", Category: "laboratory"}}},
		{"Observation?date=gt2026-11-24&date=lt2026-11-27", []vitalgate.ExportFilter{{Type: "Observation", From: day(25), To: day(27)}}},
		{"Observation?date=le2026-11-27", []vitalgate.ExportFilter{{Type: "Observation", To: day(28)}}},
		{"Observation?date=2026-11", []vitalgate.ExportFilter{{Type: "Observation", From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}}},
		{"Observation?date=ge2026-11-24T10:00:00%2B01:00", []vitalgate.ExportFilter{{Type: "Observation", From: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}}},
		{"Observation", nil},
		{"Observation?", nil},
		{"Patient?gender=female", nil},
		{"Observation?subject=Patient/1", nil},
		{"Observation?date=ge2026-11-24&date=gt2026-11-25", nil},
		{"Observation?date=ap2026-11-24", nil},
		{"Observation?date=yesterday", nil},
		{"Observation?code=a|b|c", nil},
		{"Observation?code=", nil},
		{"Observation?category=a,b", nil},
		{"Observation?code=%zz", nil},
	} {
		got, err := ParseTypeFilters([]string{tc.in})
		if tc.want == nil {
			if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
				t.Errorf("%q: %v, %v; want EINVALID", tc.in, got, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			g, w := got[i], tc.want[i]
			if g.Type != w.Type || g.Code != w.Code || g.Category != w.Category || !g.From.Equal(w.From) || !g.To.Equal(w.To) {
				t.Errorf("%q [%d] = %+v, want %+v", tc.in, i, g, w)
			}
		}
	}
	many := make([]string, MaxTypeFilters+1)
	for i := range many {
		many[i] = "Observation?code=1"
	}
	if _, err := ParseTypeFilters(many); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("%d filters: %v, want EINVALID", len(many), err)
	}
}

func TestKeeps(t *testing.T) {
	fs := []vitalgate.ExportFilter{{Type: "Observation", Code: "a", From: time.Unix(100, 0)}, {Type: "Observation", Category: "laboratory"}}
	yes := func(string) bool { return true }
	no := func(string) bool { return false }
	for _, tc := range []struct {
		typ       string
		eff       int64
		code, cat func(string) bool
		want      bool
	}{
		{"Observation", 150, yes, no, true},
		{"Observation", 50, yes, no, false},
		{"Observation", 50, yes, yes, true},
		{"Observation", 150, no, no, false},
		{"Patient", 0, no, no, true},
	} {
		if got := keeps(fs, tc.typ, time.Unix(tc.eff, 0), tc.code, tc.cat); got != tc.want {
			t.Errorf("keeps(%s, %d) = %v, want %v", tc.typ, tc.eff, got, tc.want)
		}
	}
}

// FuzzParseTypeFilters: no _typeFilter value crashes the parser, and what it accepts is an
// Observation filter whose bounds are in order or open.
func FuzzParseTypeFilters(f *testing.F) {
	for _, s := range []string{
		"Observation?code=http://loinc.org|8867-4",
		"Observation?category=vital-signs&date=ge2026-11-24",
		"Observation?date=gt2026-11-24T10:00:00Z&date=lt2026-11-27",
		"Observation?code=8867-4,9279-1&date=2026",
		"MedicationRequest?status=active",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fs, err := ParseTypeFilters([]string{s})
		if err != nil {
			if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
				t.Fatalf("%q: %v, want EINVALID", s, err)
			}
			return
		}
		for _, f := range fs {
			if f.Type != "Observation" {
				t.Fatalf("%q gave a filter on %s", s, f.Type)
			}
		}
	})
}
