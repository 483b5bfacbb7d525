package hl7v2

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/vitalgate/vitalgate"
)

// HL7 table 0357 (message error condition codes), as used in ERR-3.
const (
	CondSegmentSequence    = "100" // segment sequence error
	CondRequiredMissing    = "101" // required field missing
	CondDataType           = "102" // data type error
	CondTableValue         = "103" // table value not found
	CondUnsupportedMessage = "200" // unsupported message type
	CondUnsupportedEvent   = "201" // unsupported event code
	CondUnsupportedProcID  = "202" // unsupported processing id
	CondUnsupportedVersion = "203" // unsupported version id
	CondUnknownKey         = "204" // unknown key identifier
	CondDuplicateKey       = "205" // duplicate key identifier
	CondRecordLocked       = "206" // application record locked
	CondInternal           = "207" // application internal error
)

var condText = map[string]string{
	"0":   "Message accepted",
	"100": "Segment sequence error",
	"101": "Required field missing",
	"102": "Data type error",
	"103": "Table value not found",
	"200": "Unsupported message type",
	"201": "Unsupported event code",
	"202": "Unsupported processing id",
	"203": "Unsupported version id",
	"204": "Unknown key identifier",
	"205": "Duplicate key identifier",
	"206": "Application record locked",
	"207": "Application internal error",
}

// ConditionText returns the HL7 table 0357 text for a condition code ("101" → "Required
// field missing"), or "" for a code not in the table.
func ConditionText(code string) string { return condText[code] }

// Location names an element of a message as ERR-2 (data type ERL) does. Seq is the
// occurrence of the segment among the segments with the same id (1 for the first OBX), and
// Field, Rep, Component and Sub are 1-based positions; 0 means "not specified".
type Location struct {
	Segment   string
	Seq       int
	Field     int
	Rep       int
	Component int
	Sub       int
}

// String names the location HL7-style: "MSH-9", "OBX[3]-5", "PID-3.4", "OBX[2]-18(2).3".
// The occurrence is shown only when it is greater than 1; the repetition only when it is
// greater than 1. A Location without a segment id is "".
func (l Location) String() string {
	s := l.Segment
	if s == "" {
		return ""
	}
	if l.Seq > 1 {
		s += "[" + strconv.Itoa(l.Seq) + "]"
	}
	if l.Field > 0 {
		s += "-" + strconv.Itoa(l.Field)
		if l.Rep > 1 {
			s += "(" + strconv.Itoa(l.Rep) + ")"
		}
		if l.Component > 0 {
			s += "." + strconv.Itoa(l.Component)
			if l.Sub > 0 {
				s += "." + strconv.Itoa(l.Sub)
			}
		}
	}
	return s
}

// erl returns the location as the components of an ERL (ERR-2): segment id, sequence, field
// position, field repetition, component number, subcomponent number, without trailing empty
// components.
func (l Location) erl() []string {
	seq := l.Seq
	if seq < 1 {
		seq = 1
	}
	parts := []string{l.Segment, strconv.Itoa(seq)}
	if l.Field > 0 {
		parts = append(parts, strconv.Itoa(l.Field))
		if l.Component > 0 || l.Rep > 0 {
			rep := l.Rep
			if rep < 1 {
				rep = 1
			}
			parts = append(parts, strconv.Itoa(rep))
		}
		if l.Component > 0 {
			parts = append(parts, strconv.Itoa(l.Component))
			if l.Sub > 0 {
				parts = append(parts, strconv.Itoa(l.Sub))
			}
		}
	}
	return parts
}

// Error is an error about an HL7 message: a *vitalgate.Error (whose Field is Loc.String())
// with the location and the HL7 table 0357 condition code an ACK reports. errors.As finds
// the *vitalgate.Error through Unwrap, so vitalgate.ErrorCode and friends work on it.
type Error struct {
	Loc       Location
	Condition string // HL7 table 0357 code, e.g. CondRequiredMissing
	// Syntax is true when the message could not be parsed at all (set by Parse): such a
	// message is rejected (AR) rather than accepted with errors (AE).
	Syntax bool
	Err    *vitalgate.Error
}

// Error returns the message of the wrapped *vitalgate.Error.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped *vitalgate.Error.
func (e *Error) Unwrap() error { return e.Err }

// NewError returns an *Error with the vitalgate error code code (vitalgate.EINVALID, ...),
// the table 0357 condition cond, the location loc (which also becomes the Field of the
// wrapped *vitalgate.Error) and a user-safe formatted message.
func NewError(code, cond string, loc Location, format string, args ...any) *Error {
	return &Error{Loc: loc, Condition: cond, Err: &vitalgate.Error{Code: code, Field: loc.String(), Message: fmt.Sprintf(format, args...)}}
}

// WrapError returns err located at loc with condition cond. If err already carries a
// *vitalgate.Error its code, message and cause are kept (with Field set to loc); any other
// error becomes an internal error.
func WrapError(err error, cond string, loc Location) *Error {
	var ve *vitalgate.Error
	if errors.As(err, &ve) {
		c := *ve
		c.Field = loc.String()
		return &Error{Loc: loc, Condition: cond, Err: &c}
	}
	ie := vitalgate.Internal(err, "hl7v2")
	ie.Field = loc.String()
	return &Error{Loc: loc, Condition: cond, Err: ie}
}

// ErrorLocation returns the location of the first *Error in err's chain.
func ErrorLocation(err error) (Location, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Loc, true
	}
	return Location{}, false
}

// ErrorCondition returns the HL7 table 0357 condition code of the first *Error in err's
// chain, or "" if there is none.
func ErrorCondition(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Condition
	}
	return ""
}

// IsSyntaxError reports whether err says that a message could not be parsed at all.
func IsSyntaxError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Syntax
}
