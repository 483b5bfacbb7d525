package hl7v2

import (
	"time"

	"github.com/vitalgate/vitalgate"
)

// AppName is the sending application Vitalgate names in an acknowledgement when it cannot
// take one from the acknowledged message (MSH-5 empty, or the message unparseable).
const AppName = "VITALGATE"

// Acknowledgement codes (HL7 table 0008, original mode).
const (
	AckAA = "AA" // application accept
	AckAE = "AE" // application error: accepted with a data problem the sender should correct
	AckAR = "AR" // application reject: rejected: unsupported message type, event, processing id or version, or unparseable
)

// AckError is one error reported in an ERR segment.
type AckError struct {
	Loc       Location // ERR-2; omitted when Loc.Segment is ""
	Condition string   // ERR-3, HL7 table 0357 code; CondInternal if empty
	Severity  string   // ERR-4: E (error, the default), W (warning) or I (information)
	Message   string   // ERR-8, user message; escaped
}

// AckErrorFrom describes err for an ERR segment: its location and condition if it is (or
// wraps) an *Error, and its user-safe message (vitalgate.ErrorMessage).
func AckErrorFrom(err error) AckError {
	ae := AckError{Condition: ErrorCondition(err), Severity: "E", Message: vitalgate.ErrorMessage(err)}
	if loc, ok := ErrorLocation(err); ok {
		ae.Loc = loc
	}
	return ae
}

// BuildACK returns an HL7 v2 original-mode ACK for msg, ER7-encoded with CR segment
// terminators (not MLLP-framed). code is AA, AE or AR; controlID becomes MSH-10 and now
// MSH-7. The MSH swaps the sending and receiving application and facility of msg (using
// AppName when msg names no receiving application), MSH-9 is ACK^<trigger of msg>^ACK,
// MSH-11 and MSH-12 are copied from msg; MSA carries code and msg's MSH-10; each error
// becomes an ERR segment (ERR-2 location, ERR-3 table 0357 code, ERR-4 severity, ERR-8
// message). With msg nil (the message could not be parsed) the MSH names only AppName,
// MSH-11 is P, MSH-12 2.6 and MSA-2 is empty.
func BuildACK(msg *Message, code string, errs []AckError, now time.Time, controlID string) []byte {
	d := DefaultDelimiters
	v := func(s string) Field {
		if s == "" {
			return nil
		}
		return Field{Rep{Comp{s}}}
	}
	var sendApp, sendFac, recvApp, recvFac, procID, version, origID Field
	msgType := Field{Rep{Comp{"ACK"}}}
	procID, version = v("P"), v("2.6")
	if h := msg.Segment("MSH"); h != nil {
		d = msg.Delims
		if d.Field == 0 {
			d = DefaultDelimiters
		}
		sendApp, sendFac, recvApp, recvFac = h.Field(5), h.Field(6), h.Field(3), h.Field(4)
		if trig := h.Field(9).Rep(1).Comp(2).Value(); trig != "" {
			msgType = Field{Rep{Comp{"ACK"}, Comp{trig}, Comp{"ACK"}}}
		}
		if f := h.Field(11); !f.IsEmpty() {
			procID = f
		}
		if f := h.Field(12); !f.IsEmpty() {
			version = f
		}
		origID = h.Field(10)
	}
	if sendApp.IsEmpty() {
		sendApp = v(AppName)
	}
	msh := Segment{ID: "MSH", Fields: []Field{
		v(string(d.Field)), v(d.EncodingCharacters()),
		sendApp, sendFac, recvApp, recvFac, v(FormatTS(now)), nil, msgType, v(controlID), procID, version,
	}}
	msa := Segment{ID: "MSA", Fields: []Field{v(code), origID}}
	m := &Message{Delims: d, Segments: []Segment{msh, msa}}
	for _, e := range errs {
		var loc Field
		if e.Loc.Segment != "" {
			var r Rep
			for _, p := range e.Loc.erl() {
				r = append(r, Comp{p})
			}
			loc = Field{r}
		}
		cond := e.Condition
		if cond == "" {
			cond = CondInternal
		}
		cc := Rep{Comp{cond}}
		if t := ConditionText(cond); t != "" {
			cc = append(cc, Comp{t}, Comp{"HL70357"})
		}
		sev := e.Severity
		if sev == "" {
			sev = "E"
		}
		m.Segments = append(m.Segments, Segment{ID: "ERR", Fields: []Field{
			nil, loc, {cc}, v(sev), nil, nil, nil, v(e.Message),
		}})
	}
	for i := range m.Segments {
		f := m.Segments[i].Fields
		for len(f) > 0 && f[len(f)-1].IsEmpty() {
			f = f[:len(f)-1]
		}
		m.Segments[i].Fields = f
	}
	return Encode(m)
}
