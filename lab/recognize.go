package lab

import (
	"strings"

	"github.com/vitalgate/vitalgate/hl7v2"
	"github.com/vitalgate/vitalgate/lab/analyte"
	"github.com/vitalgate/vitalgate/vitals"
)

// Recognize reports whether msg is a laboratory result message for Map rather than an IHE
// PCD-01 message for package pcd01 (both use ORU^R01), so that a receiver can route it:
//   - OUL^R22 is always laboratory;
//   - an ORU^R01 whose MSH-21 names an LRI, LAB or LAW profile (LRI_..., LAB-..., LAW...)
//     is laboratory; one that names an IHE PCD profile is not;
//   - otherwise an ORU^R01 of version 2.5.1 is laboratory (PCD-01 requires 2.6), and so is
//     one with an SPM segment or an OBX-3 coded in LOINC with an analyte of package analyte
//     that is not a vital sign, unless an OBX-3 is coded in MDC (IEEE 11073).
//
// Anything else, including messages that are neither ORU^R01 nor OUL^R22, is not.
func Recognize(msg *hl7v2.Message) bool {
	h := msg.Segment("MSH")
	if h == nil {
		return false
	}
	mt := h.Field(9).Rep(1)
	switch typ, ev := mt.Comp(1).Value(), mt.Comp(2).Value(); {
	case typ == "OUL" && ev == "R22":
		return true
	case typ != "ORU" || ev != "R01":
		return false
	}
	f21 := h.Field(21)
	for r := 1; r <= len(f21); r++ {
		p := strings.ToUpper(f21.Rep(r).Comp(1).Value() + " " + f21.Rep(r).Comp(2).Value())
		switch {
		case strings.HasPrefix(p, "LRI_"), strings.HasPrefix(p, "LAB-"), strings.HasPrefix(p, "LAB_"), strings.HasPrefix(p, "LAW"):
			return true
		case strings.Contains(p, "PCD"):
			return false
		}
	}
	if h.Field(12).Value() == "2.5.1" {
		return true
	}
	lab := msg.Segment("SPM") != nil
	for _, obx := range msg.All("OBX") {
		r := obx.Field(3).Rep(1)
		for _, t := range []int{1, 4} {
			code, sys := strings.TrimSpace(r.Comp(t).Value()), strings.TrimSpace(r.Comp(t+2).Value())
			switch sys {
			case "MDC":
				return false
			case "LN":
				if _, ok := analyte.Lookup(code); ok {
					if _, vital := vitals.Lookup(vitals.SystemLOINC, code); !vital {
						lab = true
					}
				}
			}
		}
	}
	return lab
}
