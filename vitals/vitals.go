// Package vitals is Vitalgate's clinical vocabulary for vital signs: which LOINC and
// IEEE 11073-10101 (MDC) codes name each vital sign, which UCUM units it may be reported in
// (with the conversion to one canonical unit), the MDC unit codes and their UCUM equivalents,
// and a plausible physiological range used to reject values that cannot be real.
//
// The package is pure data and lookups: no I/O, no global mutable state. Every table is built
// once at package initialisation and never changed.
package vitals

import (
	"strconv"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// Code systems.
const (
	SystemLOINC = "http://loinc.org"            // LOINC
	SystemMDC   = "urn:iso:std:iso:11073:10101" // IEEE 11073-10101 nomenclature (numeric codes)
	SystemUCUM  = "http://unitsofmeasure.org"   // UCUM units of measure
)

// Unit is one UCUM unit a vital sign may be reported in, with the affine conversion to the
// vital sign's canonical unit: canonical = value*Factor + Offset.
type Unit struct {
	UCUM   string  // UCUM code, e.g. "[degF]"
	MDC    string  // IEEE 11073 unit code (MDC_DIM_*), "" when there is none
	Factor float64 // multiply by Factor ...
	Offset float64 // ... then add Offset to get the canonical unit
}

// Range is a closed interval in a canonical unit.
type Range struct {
	Low, High float64
	Unit      string // UCUM code of the canonical unit
}

// Vital is one vital sign (or panel of vital signs) and its vocabulary.
type Vital struct {
	Name  string   // plain English name, e.g. "heart rate"
	LOINC []string // LOINC codes, preferred first
	MDC   []string // IEEE 11073-10101 numeric codes, preferred first
	// Units lists the allowed units; the first is the canonical unit (Factor 1, Offset 0).
	// It is empty for panels.
	Units []Unit
	Range Range // plausible range in the canonical unit; zero for panels
	// Panel is true for codes that carry no value of their own, only components (blood
	// pressure) or members (vital signs panel).
	Panel bool
}

// IsPanel reports whether v is a panel that carries components or members, not a value.
func (v Vital) IsPanel() bool { return v.Panel }

// Unit returns the allowed unit with the UCUM code ucum.
func (v Vital) Unit(ucum string) (Unit, bool) {
	for _, u := range v.Units {
		if u.UCUM == ucum {
			return u, true
		}
	}
	return Unit{}, false
}

// Canonical converts value in the UCUM unit ucum to v's canonical unit. It returns an
// EUNPROCESSABLE *vitalgate.Error if the unit is not allowed for v.
func (v Vital) Canonical(value float64, ucum string) (float64, error) {
	if v.Panel || len(v.Units) == 0 {
		return 0, vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "%s is a panel and carries no value of its own", v.Name)
	}
	u, ok := v.Unit(ucum)
	if !ok {
		return 0, vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "unit %s is not allowed for %s; use %s", quoteShort(ucum), v.Name, v.unitList())
	}
	return value*u.Factor + u.Offset, nil
}

// CheckQuantity checks that value, in the UCUM unit ucum, is a plausible measurement of v.
// It returns an EUNPROCESSABLE *vitalgate.Error (without Field; the caller names the element)
// if the unit is wrong for v or the value is outside the plausible range.
func (v Vital) CheckQuantity(value float64, ucum string) error {
	c, err := v.Canonical(value, ucum)
	if err != nil {
		return err
	}
	if !(c >= v.Range.Low && c <= v.Range.High) { // also rejects NaN
		return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "%s of %s %s is outside the plausible range %s to %s %s",
			v.Name, fmtNum(value), ucum, fmtNum(v.Range.Low), fmtNum(v.Range.High), v.Range.Unit)
	}
	return nil
}

func (v Vital) unitList() string {
	s := ""
	for i, u := range v.Units {
		if i > 0 {
			s += ", "
		}
		s += u.UCUM
	}
	return s
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// quoteShort quotes a short, plain value (a unit code) for a message, or elides it, so that
// messages never echo arbitrary input.
func quoteShort(s string) string {
	if len(s) > 32 || strings.IndexFunc(s, func(r rune) bool { return !plainRune(r) }) >= 0 {
		return "(not shown)"
	}
	return strconv.Quote(s)
}

func plainRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/[]%{}*^", r)
}

// Lookup returns the vital sign named by code in system (SystemLOINC or SystemMDC).
func Lookup(system, code string) (Vital, bool) {
	var i int
	var ok bool
	switch system {
	case SystemLOINC:
		i, ok = byLOINC[code]
	case SystemMDC:
		i, ok = byMDC[code]
	}
	if !ok {
		return Vital{}, false
	}
	return table[i], true
}

// LOINCForMDC returns the preferred LOINC code for an IEEE 11073 MDC observation code, so
// that data arriving as HL7 v2 (OBX-3 in MDC) can be stored with a LOINC code.
func LOINCForMDC(code string) (string, bool) {
	i, ok := byMDC[code]
	if !ok || len(table[i].LOINC) == 0 {
		return "", false
	}
	return table[i].LOINC[0], true
}

// UCUMFromMDCUnit returns the UCUM code for an IEEE 11073 unit code (MDC_DIM_*, numeric,
// e.g. "264864" MDC_DIM_BEAT_PER_MIN → "/min").
func UCUMFromMDCUnit(code string) (string, bool) {
	for _, u := range mdcUnits {
		if u.code == code {
			return u.ucum, true
		}
	}
	return "", false
}

// All returns a copy of the vital-sign table.
func All() []Vital {
	out := make([]Vital, len(table))
	for i, v := range table {
		out[i] = v
		out[i].LOINC = append([]string(nil), v.LOINC...)
		out[i].MDC = append([]string(nil), v.MDC...)
		out[i].Units = append([]Unit(nil), v.Units...)
	}
	return out
}
