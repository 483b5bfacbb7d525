package vitals_test

import (
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/vitals"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name, system, code, want string
		ok                       bool
	}{
		{"loinc heart rate", vitals.SystemLOINC, "8867-4", "heart rate", true},
		{"mdc heart rate", vitals.SystemMDC, "147842", "heart rate", true},
		{"mdc spo2", vitals.SystemMDC, "150456", "oxygen saturation", true},
		{"loinc spo2 pulse ox", vitals.SystemLOINC, "59408-5", "oxygen saturation", true},
		{"mdc nibp sys", vitals.SystemMDC, "150021", "systolic blood pressure", true},
		{"mdc nibp dia", vitals.SystemMDC, "150022", "diastolic blood pressure", true},
		{"mdc abp mean", vitals.SystemMDC, "150303", "mean blood pressure", true},
		{"bp panel", vitals.SystemLOINC, "85354-9", "blood pressure panel", true},
		{"glucose", vitals.SystemMDC, "160184", "blood glucose", true},
		{"unknown code", vitals.SystemLOINC, "1234-5", "", false},
		{"wrong system", "http://snomed.info/sct", "8867-4", "", false},
		{"loinc code under mdc", vitals.SystemMDC, "8867-4", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := vitals.Lookup(tt.system, tt.code)
			if ok != tt.ok || v.Name != tt.want {
				t.Fatalf("Lookup(%q, %q) = %q, %v; want %q, %v", tt.system, tt.code, v.Name, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestCheckQuantity(t *testing.T) {
	tests := []struct {
		name, code string
		value      float64
		unit       string
		wantErr    string // substring of the message; "" for no error
	}{
		{"heart rate ok", "8867-4", 44, "/min", ""},
		{"heart rate beats annotation", "8867-4", 60, "{beats}/min", ""},
		{"heart rate in mmHg", "8867-4", 60, "mm[Hg]", "unit \"mm[Hg]\" is not allowed for heart rate"},
		{"heart rate too high", "8867-4", 400, "/min", "outside the plausible range 20 to 300 /min"},
		{"spo2 120", "2708-6", 120, "%", "outside the plausible range 50 to 100 %"},
		{"spo2 100", "59408-5", 100, "%", ""},
		{"temperature fahrenheit", "8310-5", 98.6, "[degF]", ""},
		{"temperature fahrenheit too low", "8310-5", 60, "[degF]", "outside"},
		{"temperature celsius", "8310-5", 36.5, "Cel", ""},
		{"weight pounds", "29463-7", 185, "[lb_av]", ""},
		{"weight grams newborn", "29463-7", 3200, "g", ""},
		{"weight 600 kg", "29463-7", 600, "kg", "outside"},
		{"height inches", "8302-2", 66.9, "[in_i]", ""},
		{"glucose mmol", "15074-8", 5.5, "mmol/L", ""},
		{"glucose mg/dL too high", "2339-0", 1200, "mg/dL", "outside"},
		{"systolic low", "8480-6", 30, "mm[Hg]", "outside"},
		{"panel has no value", "85354-9", 120, "mm[Hg]", "panel"},
		{"respiratory rate ok", "9279-1", 26, "/min", ""},
		{"bmi ok", "39156-5", 16.2, "kg/m2", ""},
		{"long unit elided", "8867-4", 60, strings.Repeat("x", 100), "not shown"},
		{"markup unit elided", "8867-4", 60, "<b>", "unit (not shown)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := vitals.Lookup(vitals.SystemLOINC, tt.code)
			if !ok {
				t.Fatalf("no vital for %s", tt.code)
			}
			err := v.CheckQuantity(tt.value, tt.unit)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckQuantity: %v", err)
				}
				return
			}
			if vitalgate.ErrorCode(err) != vitalgate.EUNPROCESSABLE {
				t.Fatalf("code = %q (%v), want %q", vitalgate.ErrorCode(err), err, vitalgate.EUNPROCESSABLE)
			}
			if msg := vitalgate.ErrorMessage(err); !strings.Contains(msg, tt.wantErr) {
				t.Fatalf("message %q does not contain %q", msg, tt.wantErr)
			}
		})
	}
}

func TestUCUMFromMDCUnit(t *testing.T) {
	tests := []struct{ name, code, want string }{
		{"percent", "262688", "%"},
		{"beats per minute", "264864", "/min"},
		{"breaths per minute", "264928", "/min"},
		{"mmHg", "266016", "mm[Hg]"},
		{"degrees Celsius", "268192", "Cel"},
		{"kilogram", "263875", "kg"},
		{"mg/dL", "264274", "mg/dL"},
		{"unknown", "1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := vitals.UCUMFromMDCUnit(tt.code)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("UCUMFromMDCUnit(%q) = %q, %v; want %q", tt.code, got, ok, tt.want)
			}
		})
	}
}

func TestLOINCForMDC(t *testing.T) {
	tests := []struct{ name, code, want string }{
		{"spo2", "150456", "2708-6"},
		{"ecg heart rate", "147842", "8867-4"},
		{"pulse ox rate", "149530", "8889-8"},
		{"resp rate", "151562", "9279-1"},
		{"temp body", "150364", "8310-5"},
		{"temp oral", "188424", "8310-5"},
		{"temp axilla", "188452", "8310-5"},
		{"temp ear", "188428", "8310-5"},
		{"temp tympanic", "150392", "8310-5"},
		{"nibp sys", "150021", "8480-6"},
		{"weight", "188736", "29463-7"},
		{"glucose", "160184", "2339-0"},
		{"unknown", "999999", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := vitals.LOINCForMDC(tt.code)
			if got != tt.want || ok != (tt.want != "") {
				t.Fatalf("LOINCForMDC(%q) = %q, %v; want %q", tt.code, got, ok, tt.want)
			}
		})
	}
}

// TestTableConsistent checks every unit of every vital: the canonical unit comes first with
// factor 1, every MDC unit code maps to the unit's UCUM code, and codes are unique.
func TestTableConsistent(t *testing.T) {
	seen := map[string]string{}
	for _, v := range vitals.All() {
		t.Run(v.Name, func(t *testing.T) {
			for _, c := range v.LOINC {
				if prev, dup := seen["L"+c]; dup {
					t.Errorf("LOINC %s in %s and %s", c, prev, v.Name)
				}
				seen["L"+c] = v.Name
			}
			for _, c := range v.MDC {
				if prev, dup := seen["M"+c]; dup {
					t.Errorf("MDC %s in %s and %s", c, prev, v.Name)
				}
				seen["M"+c] = v.Name
			}
			if v.Panel {
				if len(v.Units) != 0 {
					t.Errorf("panel with units")
				}
				return
			}
			if len(v.Units) == 0 || v.Units[0].Factor != 1 || v.Units[0].Offset != 0 || v.Units[0].UCUM != v.Range.Unit {
				t.Errorf("first unit must be the canonical unit %q", v.Range.Unit)
			}
			if !(v.Range.Low < v.Range.High) {
				t.Errorf("bad range %v", v.Range)
			}
			for _, u := range v.Units {
				if u.MDC == "" {
					continue
				}
				if got, ok := vitals.UCUMFromMDCUnit(u.MDC); !ok || got != u.UCUM {
					t.Errorf("MDC unit %s maps to %q, want %q", u.MDC, got, u.UCUM)
				}
			}
		})
	}
}
