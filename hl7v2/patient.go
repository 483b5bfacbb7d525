package hl7v2

import (
	"errors"
	"regexp"
	"strings"

	"github.com/vitalgate/vitalgate"
)

// PatientIdentifier is the patient identifier a message names in PID-3.
type PatientIdentifier struct {
	Value     string // CX.1
	Authority string // CX.4.1 namespace, else CX.4.2 universal id
	Assigner  HD     // CX.4 in full
	Type      string // CX.5, e.g. MR or PI
}

// patientIDRE is the form of a stored Patient's id.
var patientIDRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// ResolvePID3 reads the patient identifier of msg, the first repetition of PID-3 with a
// value (the one rule every HL7 mapping uses: PCD-01 vitals, lab results), and resolves it
// with resolve to a stored Patient's id. It returns the identifier, where it stands, and the
// id. Errors are *Error: EINVALID 100 when the PID segment is missing (missing names what
// the message is, for the message text), 101 when PID-3 is empty; resolve's error with
// condition 204 (unknown key), or 207 for an internal or transient fault; 207 when resolve
// returns something that is not a Patient id.
func ResolvePID3(msg *Message, missing string, resolve func(PatientIdentifier) (string, error)) (PatientIdentifier, Location, string, error) {
	pid := msg.Segment("PID")
	if pid == nil {
		return PatientIdentifier{}, Location{}, "", NewError(vitalgate.EINVALID, CondSegmentSequence, Location{Segment: "PID", Seq: 1}, "a PID segment is required%s", missing)
	}
	f := pid.Field(3)
	rep := 0
	for i := 1; i <= len(f); i++ {
		if v := strings.TrimSpace(f.Rep(i).Value()); v != "" && v != `""` {
			rep = i
			break
		}
	}
	if rep == 0 {
		return PatientIdentifier{}, Location{}, "", NewError(vitalgate.EINVALID, CondRequiredMissing, Location{Segment: "PID", Seq: 1, Field: 3, Component: 1}, "patient identifier (PID-3) is required")
	}
	cx := f.Rep(rep)
	p := PatientIdentifier{
		Value:    strings.TrimSpace(cx.Comp(1).Value()),
		Assigner: HD{Namespace: cx.Comp(4).Sub(1), UniversalID: cx.Comp(4).Sub(2), UniversalIDType: cx.Comp(4).Sub(3)},
		Type:     strings.TrimSpace(cx.Comp(5).Value()),
	}
	p.Authority = p.Assigner.Namespace
	if p.Authority == "" {
		p.Authority = p.Assigner.UniversalID
	}
	l := Location{Segment: "PID", Seq: 1, Field: 3, Rep: rep}
	id, err := resolve(p)
	if err != nil {
		cond := CondUnknownKey
		switch vitalgate.ErrorCode(err) {
		case vitalgate.EINTERNAL, vitalgate.EUNAVAILABLE, vitalgate.ETHROTTLED:
			cond = CondInternal
		}
		return p, l, "", WrapError(err, cond, l)
	}
	if !patientIDRE.MatchString(id) {
		return p, l, "", WrapError(vitalgate.Internal(errors.New("resolver returned an invalid patient id"), "hl7v2"), CondInternal, l)
	}
	return p, l, id, nil
}
