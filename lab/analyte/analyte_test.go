package analyte_test

import (
	"math"
	"regexp"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/lab/analyte"
	"github.com/vitalgate/vitalgate/vitals"
)

var loincRE = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)

// loincCheck reports whether the LOINC check digit (mod 10, as LOINC defines it) is right.
func loincCheck(code string) bool {
	num, check := code[:len(code)-2], int(code[len(code)-1]-'0')
	// Double every other digit from the right (starting with the rightmost), sum digits.
	sum := 0
	for i := 0; i < len(num); i++ {
		d := int(num[len(num)-1-i] - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return (10-sum%10)%10 == check
}

func TestTableWellFormed(t *testing.T) {
	seen := map[string]string{}
	for _, a := range analyte.All() {
		if a.Name == "" || a.Dimension == "" || len(a.LOINC) == 0 || len(a.Units) == 0 {
			t.Errorf("%+v: incomplete", a)
		}
		if a.Units[0].Factor != 1 {
			t.Errorf("%s: canonical unit %s has factor %v", a.Name, a.Units[0].UCUM, a.Units[0].Factor)
		}
		if !(a.Low < a.High) {
			t.Errorf("%s: range %v..%v", a.Name, a.Low, a.High)
		}
		for _, c := range a.LOINC {
			if !loincRE.MatchString(c) || !loincCheck(c) {
				t.Errorf("%s: %s is not a LOINC code (check digit)", a.Name, c)
			}
			if other, dup := seen[c]; dup {
				t.Errorf("%s listed for %s and %s", c, other, a.Name)
			}
			seen[c] = a.Name
			if got, ok := analyte.Lookup(c); !ok || got.Name != a.Name {
				t.Errorf("Lookup(%s) = %v %v", c, got.Name, ok)
			}
		}
		for _, u := range a.Units {
			if n, ok := analyte.NormalizeUnit(u.UCUM); !ok || n != u.UCUM {
				t.Errorf("%s: NormalizeUnit(%s) = %q %v", a.Name, u.UCUM, n, ok)
			}
		}
	}
}

// TestAgreesWithVitals: a LOINC code both tables list is judged the same way: every unit lab
// accepts is a vitals unit with the same factor relative to the canonical, and the ranges
// are the same.
func TestAgreesWithVitals(t *testing.T) {
	shared := 0
	for _, a := range analyte.All() {
		for _, c := range a.LOINC {
			v, ok := vitals.Lookup(vitals.SystemLOINC, c)
			if !ok {
				continue
			}
			shared++
			for _, u := range a.Units {
				vu, ok := v.Unit(u.UCUM)
				if !ok {
					t.Errorf("%s: unit %s accepted here but not by vitals (%s)", c, u.UCUM, v.Name)
					continue
				}
				if math.Abs(vu.Factor-u.Factor) > 1e-9 || vu.Offset != 0 {
					t.Errorf("%s: unit %s factor %v here, %v+%v in vitals", c, u.UCUM, u.Factor, vu.Factor, vu.Offset)
				}
			}
			if v.Range.Low != a.Low || v.Range.High != a.High || v.Range.Unit != a.Canonical() {
				t.Errorf("%s: range %v..%v %s here, %v..%v %s in vitals", c, a.Low, a.High, a.Canonical(), v.Range.Low, v.Range.High, v.Range.Unit)
			}
		}
	}
	if shared == 0 {
		t.Fatal("no shared code: the test checks nothing")
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		loinc string
		value float64
		unit  string
		code  string // "" for no error
	}{
		{"2339-0", 5.5, "mmol/L", ""},             // 99 mg/dL
		{"2339-0", 99, "mg/dL", ""},               //
		{"2339-0", 60, "mmol/L", "unprocessable"}, // 1081 mg/dL
		{"2339-0", 99, "mg/kg", "unprocessable"},
		{"2703-7", 13.3, "kPa", ""},             // 99.8 mm[Hg]
		{"2703-7", 120, "kPa", "unprocessable"}, // 900 mm[Hg]
		{"2160-0", 88, "umol/L", ""},            // 0.995 mg/dL
		{"2160-0", 8800, "umol/L", "unprocessable"},
		{"1994-3", 4.8, "mg/dL", ""},   // 1.2 mmol/L
		{"1994-3", 2.4, "meq/L", ""},   // 1.2 mmol/L
		{"3094-0", 5, "mmol/L", ""},    // 14 mg/dL
		{"89579-7", 0.05, "ng/mL", ""}, // 50 ng/L
		{"6298-4", math.NaN(), "mmol/L", "unprocessable"},
		{"11555-0", -12, "mmol/L", ""},
		{"2744-1", 7.4, "[pH]", ""},
		{"2744-1", 5, "[pH]", "unprocessable"},
	}
	for _, tt := range tests {
		a, ok := analyte.Lookup(tt.loinc)
		if !ok {
			t.Fatalf("no analyte %s", tt.loinc)
		}
		err := a.Check(tt.value, tt.unit)
		if got := vitalgate.ErrorCode(err); got != tt.code {
			t.Errorf("%s %v %s: %v", tt.loinc, tt.value, tt.unit, err)
		}
	}
}

func TestNormalizeUnit(t *testing.T) {
	tests := map[string]string{"mmHg": "mm[Hg]", "mEq/L": "meq/L", "µmol/L": "umol/L", "sec": "s", "pH": "[pH]", "mmol/L": "mmol/L", "kPa": "kPa", "mg/dl": "mg/dL"}
	for in, want := range tests {
		if got, ok := analyte.NormalizeUnit(in); !ok || got != want {
			t.Errorf("NormalizeUnit(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "mg/kg", "furlongs", "mmol/L; DROP"} {
		if got, ok := analyte.NormalizeUnit(bad); ok {
			t.Errorf("NormalizeUnit(%q) = %q", bad, got)
		}
	}
}
