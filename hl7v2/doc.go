// Package hl7v2 reads and writes HL7 version 2 messages in the traditional "ER7" (pipe and
// hat) encoding and builds original-mode acknowledgements (ACK) for them.
//
// # Parsing
//
// Parse takes the delimiters from the message itself: MSH-1 is the field separator and MSH-2
// gives the component, repetition, escape and subcomponent separators, optionally followed by
// the truncation character of HL7 v2.7 (which is recorded but is not a separator). Segments
// end with CR; LF and CRLF are tolerated, and empty lines are skipped. The first segment must
// be MSH. Every field is split into repetitions, components and subcomponents and every
// value is unescaped:
//
//	\F\ \S\ \T\ \R\ \E\   field, component, subcomponent, repetition separator, escape character
//	\P\                   the truncation character (when MSH-2 declares one)
//	\Xhh...\              the bytes given in hexadecimal (an even number of hex digits)
//	\.br\                 a line break ("\n")
//
// Parsing is lenient about escapes it does not interpret: any other escape sequence (\H\,
// \N\, \.sp\, \Cxxyy\, \Zxx\, a malformed \X\ ...) and a lone escape character without a
// closing one are kept literally in the value. A literal value therefore always survives a
// round trip through Encode and Parse. The HL7 null value "" is kept as the two-character
// string `""`; callers decide what it means.
//
// Limits (message size, number of segments, field size) are enforced with ETOOLARGE errors;
// malformed structure is EINVALID. Every error is an *Error that wraps a *vitalgate.Error
// (so vitalgate.ErrorCode works on it) and carries the HL7 location (Location, reported in
// ERR-2 of an ACK) and the HL7 table 0357 condition code (reported in ERR-3).
//
// # Model
//
// A Message is a list of Segments; a Segment is a list of Fields numbered from 1 as in HL7
// (for MSH, field 1 is the field separator itself and field 2 the encoding characters); a
// Field is a list of repetitions (Rep), a Rep a list of components (Comp), a Comp a list of
// subcomponent strings. All accessors are 1-based and return the zero value for elements
// that are absent, so m.Segment("PID").Field(3).Rep(1).Comp(4).Sub(1) never panics. An
// empty element is stored as nil.
//
// # Encoding
//
// Encode writes a Message with its delimiters, escaping every value and ending every segment
// with CR. For every message m returned by Parse, Parse(Encode(m)) equals m, and
// Encode(Parse(x)) is a fixed point after one round.
//
// The package is pure: no I/O, no clock (callers pass times in), no global mutable state.
package hl7v2
