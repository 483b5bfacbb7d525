package pcd01

import (
	"fmt"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/hl7v2"
)

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// AckCodeFor returns the acknowledgement code (hl7v2.AckAA, AckAE or AckAR) and the HL7
// table 0357 condition for ERR-3 for the outcome err of handling a message (from hl7v2.Parse,
// Map, or the caller's own processing):
//   - nil: AA and "";
//   - a message that could not be parsed (hl7v2.IsSyntaxError): AR;
//   - unsupported message type, event, processing id or version (200 to 203): AR;
//   - EFORBIDDEN or EUNAUTHORIZED (not this device's data or patient): AR;
//   - EINTERNAL, EUNAVAILABLE, ETHROTTLED, ETOOLARGE: AR with 207 unless a condition is set;
//   - ENOTFOUND: AE with 204 unless set; ECONFLICT: AE with 205 unless set;
//   - any other error (data errors in an accepted message): AE with its condition, or 207.
func AckCodeFor(err error) (ackCode string, hl7ErrorCode string) {
	if err == nil {
		return hl7v2.AckAA, ""
	}
	cond := hl7v2.ErrorCondition(err)
	or := func(def string) string {
		if cond != "" {
			return cond
		}
		return def
	}
	if hl7v2.IsSyntaxError(err) {
		return hl7v2.AckAR, or(hl7v2.CondSegmentSequence)
	}
	switch cond {
	case hl7v2.CondUnsupportedMessage, hl7v2.CondUnsupportedEvent, hl7v2.CondUnsupportedProcID, hl7v2.CondUnsupportedVersion:
		return hl7v2.AckAR, cond
	}
	switch vitalgate.ErrorCode(err) {
	case vitalgate.EFORBIDDEN, vitalgate.EUNAUTHORIZED:
		return hl7v2.AckAR, or(hl7v2.CondUnknownKey)
	case vitalgate.EINTERNAL, vitalgate.EUNAVAILABLE, vitalgate.ETHROTTLED, vitalgate.ETOOLARGE:
		return hl7v2.AckAR, or(hl7v2.CondInternal)
	case vitalgate.ENOTFOUND:
		return hl7v2.AckAE, or(hl7v2.CondUnknownKey)
	case vitalgate.ECONFLICT:
		return hl7v2.AckAE, or(hl7v2.CondDuplicateKey)
	}
	return hl7v2.AckAE, or(hl7v2.CondInternal)
}
