package audit

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// SyslogSDID is the SD-ID of the structured-data element Syslog writes. 32473 is the private
// enterprise number IANA reserves for documentation (RFC 5612); replace it with Vitalgate's
// own number if one is assigned.
const SyslogSDID = "vitalgate@32473"

// syslogFacility is facility 10, security/authorization messages, as IHE ATNA uses.
const syslogFacility = 10

// Syslog returns e as one RFC 5424 syslog message (without a trailing newline, and without
// the octet-count framing of RFC 5425/6587, which the transport adds):
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID [vitalgate@32473 action="R" ...] MSG
//
// The facility is 10 (security/authorization); the severity follows the outcome: notice for
// success, warning for a minor failure, error for a serious one, critical for a major one.
// MSGID is "type.subtype". Every non-empty field of e appears as a parameter of the
// structured-data element (each resource as its own "resource" parameter), with '"', '\' and
// ']' escaped as RFC 5424 §6.3.3 requires. Header fields are restricted to printable ASCII
// and their maximum lengths ("-" when empty). Control characters and invalid UTF-8, which a
// line-oriented collector could mistake for a new message, become U+FFFD everywhere. MSG is
// a short human-readable summary, preceded by a byte-order mark only if it is not ASCII.
func Syslog(e Entry, hostname, app string) string {
	var b strings.Builder
	b.Grow(512)
	b.WriteByte('<')
	b.WriteString(strconv.Itoa(syslogFacility*8 + syslogSeverity(e.Outcome)))
	b.WriteString(">1 ")
	if e.Time.IsZero() {
		b.WriteByte('-')
	} else {
		b.WriteString(e.Time.UTC().Format("2006-01-02T15:04:05.999999Z07:00"))
	}
	b.WriteByte(' ')
	b.WriteString(headerField(hostname, 255))
	b.WriteByte(' ')
	b.WriteString(headerField(app, 48))
	b.WriteString(" - ")
	msgid := e.Type
	if e.Subtype != "" {
		msgid += "." + e.Subtype
	}
	b.WriteString(headerField(msgid, 32))
	b.WriteString(" [")
	b.WriteString(SyslogSDID)
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteByte(' ')
		b.WriteString(name)
		b.WriteString(`="`)
		writeParamValue(&b, value)
		b.WriteByte('"')
	}
	param("action", e.Action)
	param("type", e.Type)
	param("subtype", e.Subtype)
	param("outcome", e.Outcome)
	param("outcomeDesc", e.OutcomeDesc)
	param("agentType", e.AgentType)
	param("agentId", e.AgentID)
	param("agentRole", e.AgentRole)
	if e.Emergency {
		param("emergency", "true")
	}
	param("sourceIp", e.SourceIP)
	param("patientIndex", e.PatientIndex)
	for _, r := range e.Resources {
		param("resource", r)
	}
	if e.Count != 0 {
		param("count", strconv.Itoa(e.Count))
	}
	if e.Occurrences != 0 {
		param("occurrences", strconv.Itoa(e.Occurrences))
	}
	param("requestId", e.RequestID)
	param("node", e.Node)
	b.WriteByte(']')

	var words []string
	for _, w := range []string{e.Action, msgid} {
		if w != "" {
			words = append(words, w)
		}
	}
	if agent := strings.TrimSpace(e.AgentType + " " + e.AgentID); agent != "" {
		words = append(words, "by "+agent)
	}
	if e.Outcome != "" {
		words = append(words, "outcome "+e.Outcome)
	}
	if e.Occurrences > 1 {
		words = append(words, "x"+strconv.Itoa(e.Occurrences))
	}
	msg := strings.Join(words, " ")
	if e.OutcomeDesc != "" {
		msg += ": " + e.OutcomeDesc
	}
	msg = sanitize(msg)
	b.WriteByte(' ')
	if !isASCII(msg) {
		b.WriteString("\uFEFF")
	}
	b.WriteString(msg)
	return b.String()
}

// syslogSeverity maps an entry outcome to an RFC 5424 severity.
func syslogSeverity(outcome string) int {
	switch outcome {
	case OutcomeSuccess:
		return 5 // notice
	case OutcomeMinorFailure:
		return 4 // warning
	case OutcomeSeriousFailure:
		return 3 // error
	case OutcomeMajorFailure:
		return 2 // critical
	}
	return 4
}

// headerField returns s restricted to printable ASCII other than space (PRINTUSASCII, which
// header fields allow), each other byte replaced by '_', cut to max bytes, or "-" (NILVALUE)
// if empty.
func headerField(s string, max int) string {
	if s == "" {
		return "-"
	}
	if len(s) > max {
		s = s[:max]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 33 || c > 126 {
			b[i] = '_'
		}
	}
	return string(b)
}

// writeParamValue writes s as an RFC 5424 PARAM-VALUE: '"', '\' and ']' escaped with a
// backslash (§6.3.3), control characters and invalid UTF-8 replaced by U+FFFD.
func writeParamValue(b *strings.Builder, s string) {
	for _, r := range sanitize(s) {
		switch r {
		case '"', '\\', ']':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}

// sanitize replaces control characters (C0, DEL and C1) and invalid UTF-8 in s by U+FFFD.
func sanitize(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || (r >= 0x7f && r < 0xa0) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s { // invalid UTF-8 decodes as utf8.RuneError
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// SyslogIndexed is Syslog with the entry's index in the log as the structured-data
// parameter index, so that a collector can tell a resent line from a new one.
func SyslogIndexed(index uint64, e Entry, hostname, app string) string {
	return strings.Replace(Syslog(e, hostname, app), "["+SyslogSDID, "["+SyslogSDID+` index="`+strconv.FormatUint(index, 10)+`"`, 1)
}

// SyslogFrame returns the entry at index as one RFC 5425 frame: the octet count of the
// SyslogIndexed message, a space, and the message.
func SyslogFrame(index uint64, e Entry, hostname, app string) []byte {
	msg := SyslogIndexed(index, e, hostname, app)
	b := make([]byte, 0, len(msg)+8)
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, ' ')
	return append(b, msg...)
}
