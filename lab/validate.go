package lab

import (
	"errors"
	"strconv"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/lab/analyte"
	"github.com/vitalgate/vitalgate/vitals"
)

// ValidateObservation checks a laboratory Observation with the rules of
// fhir.ValidateObservation, except that a valueQuantity whose LOINC code is an analyte of
// package analyte (and not a vital sign) is checked against that table: the unit must be
// accepted for the analyte and the value, converted to the canonical unit, plausible. A
// valueQuantity with a LOINC code neither table lists gets only the structural checks (a
// decimal, a UCUM system and code). An Observation whose code is a vital sign is validated
// by fhir.ValidateObservation alone (package vitals and package analyte agree on the codes
// they share). Errors are *vitalgate.Error naming the element, as fhir's.
//
// fhir.ValidateObservation by itself refuses a valueQuantity coded with a LOINC code that is
// not a vital sign, so the caller of Map must validate laboratory Observations with this
// function, not with fhir.ValidateObservation.
func ValidateObservation(o *fhir.Observation, now time.Time) error {
	if o == nil {
		return unproc("Observation", "a resource is required")
	}
	var an *analyte.Analyte
	for i, c := range o.Codes() {
		if c.System != LOINCSystem {
			continue
		}
		if _, ok := vitals.Lookup(vitals.SystemLOINC, c.Code); ok {
			return fhir.ValidateObservation(o, now)
		}
		if a, ok := analyte.Lookup(c.Code); ok {
			if an != nil && an.Name != a.Name {
				return unproc("Observation.code.coding["+strconv.Itoa(i)+"].code", "codings name different analytes (%s and %s)", an.Name, a.Name)
			}
			an = &a
		}
	}
	if q := o.ValueQuantity; q != nil {
		const p = "Observation.valueQuantity"
		f, err := strconv.ParseFloat(q.Value.String(), 64)
		switch {
		case q.Value == "":
			return unproc(p+".value", "a quantity needs a value")
		case err != nil:
			return vitalgate.FieldErrorf(vitalgate.EINVALID, p+".value", "value is not a valid decimal")
		case q.System != UCUMSystem:
			return unproc(p+".system", "the unit system must be UCUM (%s)", UCUMSystem)
		case q.Code == "":
			return unproc(p+".code", "a UCUM unit code is required")
		case q.Comparator != "" && !contains([]string{"<", "<=", ">=", ">"}, q.Comparator):
			return unproc(p+".comparator", "comparator must be <, <=, >= or >")
		}
		if an != nil {
			if _, ok := an.Unit(q.Code); !ok {
				_, err := an.Convert(f, q.Code)
				return at(err, p+".code")
			}
			if err := an.Check(f, q.Code); err != nil {
				return at(err, p+".value")
			}
		}
		// The rest is fhir's: validate a copy with the quantity (checked above) as text.
		shadow := *o
		shadow.ValueQuantity, shadow.ValueString = nil, "quantity"
		return fhir.ValidateObservation(&shadow, now)
	}
	return fhir.ValidateObservation(o, now)
}

// at returns err with Field set to field.
func at(err error, field string) error {
	var e *vitalgate.Error
	if errors.As(err, &e) {
		c := *e
		c.Field = field
		return &c
	}
	return err
}
