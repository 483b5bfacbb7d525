// Package analyte is Vitalgate's vocabulary for the common point-of-care and laboratory
// analytes: which LOINC codes name each analyte, the dimension (LOINC property) its value
// has, the UCUM units it may be reported in with the factor to one canonical unit, the
// common non-UCUM spellings of those units that analyzers send, and a plausible
// physiological range used to refuse values that cannot be real.
//
// It is the laboratory counterpart of package vitals. A LOINC code that both packages list
// (blood glucose 2339-0, arterial oxygen saturation 2708-6 ...) has the same units, factors
// and range in both, so that a result is judged the same way whichever path it took.
//
// The package is pure data and lookups: no I/O, no global mutable state. Every table is
// built once at package initialisation and never changed.
package analyte

import (
	"strconv"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// SystemLOINC is the LOINC code system URI.
const SystemLOINC = "http://loinc.org"

// Unit is one UCUM unit an analyte may be reported in, with the factor to the analyte's
// canonical unit: canonical = value * Factor.
type Unit struct {
	UCUM   string
	Factor float64
}

// Analyte is one analyte (or a family of LOINC codes measuring the same thing in different
// specimens or by different methods) and its vocabulary.
type Analyte struct {
	Name  string   // plain English name, e.g. "potassium"
	LOINC []string // LOINC codes, preferred first
	// Dimension is what the value measures (the LOINC property), e.g. "substance
	// concentration"; every unit in Units is a unit of it, or of a dimension the analyte's
	// molar mass converts to it (glucose mg/dL and mmol/L).
	Dimension string
	// Units lists the accepted UCUM units; the first is the canonical unit (Factor 1).
	Units []Unit
	// Unitless is true when a value without a unit means the canonical unit (pH and INR
	// are often sent without one); otherwise a unit is required.
	Unitless bool
	Low      float64 // plausible range, in the canonical unit
	High     float64
}

// Canonical returns the canonical unit's UCUM code.
func (a Analyte) Canonical() string { return a.Units[0].UCUM }

// Unit returns the accepted unit with the UCUM code ucum.
func (a Analyte) Unit(ucum string) (Unit, bool) {
	for _, u := range a.Units {
		if u.UCUM == ucum {
			return u, true
		}
	}
	return Unit{}, false
}

// Convert returns value, in the UCUM unit ucum, in a's canonical unit. It returns an
// EUNPROCESSABLE *vitalgate.Error (without Field: the caller names the element) if ucum is
// not accepted for a.
func (a Analyte) Convert(value float64, ucum string) (float64, error) {
	u, ok := a.Unit(ucum)
	if !ok {
		return 0, vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "unit %s is not accepted for %s (%s); use %s",
			quote(ucum), a.Name, a.Dimension, a.unitList())
	}
	return value * u.Factor, nil
}

// Check checks that value, in the UCUM unit ucum, is a plausible measurement of a: the
// unit is accepted and the value, converted to the canonical unit, is within the plausible
// range. It returns an EUNPROCESSABLE *vitalgate.Error (without Field) otherwise.
func (a Analyte) Check(value float64, ucum string) error {
	c, err := a.Convert(value, ucum)
	if err != nil {
		return err
	}
	if !(c >= a.Low && c <= a.High) { // also rejects NaN
		return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "%s of %s %s is outside the plausible range %s to %s %s",
			a.Name, fmtNum(value), ucum, fmtNum(a.Low), fmtNum(a.High), a.Canonical())
	}
	return nil
}

func (a Analyte) unitList() string {
	s := make([]string, len(a.Units))
	for i, u := range a.Units {
		s[i] = u.UCUM
	}
	return strings.Join(s, ", ")
}

// Lookup returns the analyte a LOINC code names.
func Lookup(loinc string) (Analyte, bool) {
	i, ok := byLOINC[loinc]
	if !ok {
		return Analyte{}, false
	}
	return table[i], true
}

// NormalizeUnit returns the UCUM code for a unit as analyzers write it in OBX-6: a UCUM
// code is returned as it is; a common non-UCUM spelling ("mmHg", "mEq/L", "sec", "µmol/L",
// "pH" ...) is translated; ok is false for anything else.
func NormalizeUnit(s string) (ucum string, ok bool) {
	if u, ok := aliases[s]; ok {
		return u, true
	}
	if knownUCUM[s] {
		return s, true
	}
	return "", false
}

// All returns a copy of the analyte table.
func All() []Analyte {
	out := make([]Analyte, len(table))
	for i, a := range table {
		out[i] = a
		out[i].LOINC = append([]string(nil), a.LOINC...)
		out[i].Units = append([]Unit(nil), a.Units...)
	}
	return out
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// quote quotes a short, plain unit for a message, or elides it, so that messages never
// echo arbitrary input.
func quote(s string) string {
	if len(s) > 32 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/[]%{}*", r))
	}) >= 0 {
		return "(not shown)"
	}
	return strconv.Quote(s)
}
