package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Entry actions: the FHIR AuditEvent.action codes.
const (
	ActionCreate  = "C" // create
	ActionRead    = "R" // read, view or print
	ActionUpdate  = "U" // update
	ActionDelete  = "D" // delete
	ActionExecute = "E" // execute: search, login, enrollment, administrative acts
)

// Entry outcomes: the FHIR AuditEvent.outcome codes.
const (
	OutcomeSuccess        = "0"  // success
	OutcomeMinorFailure   = "4"  // minor failure: the request was refused or invalid
	OutcomeSeriousFailure = "8"  // serious failure: the request failed
	OutcomeMajorFailure   = "12" // major failure: the service became unavailable
)

// Agent types: who acted.
const (
	AgentDevice   = "device"   // an enrolled medical device (mutual TLS)
	AgentClient   = "client"   // an API client (OAuth2)
	AgentOperator = "operator" // a person at the command line
	AgentSystem   = "system"   // Vitalgate itself
	AgentUser     = "user"     // a person signed in to the web console
)

// Entry is one audit record: who did what to which resources, when, from where and with what
// outcome. It never holds clinical values or plaintext patient identifiers; a patient is named
// only by PatientIndex, a hex blind index.
//
// The fields follow the FHIR AuditEvent (and IHE ATNA) vocabulary so that entries convert to
// AuditEvent resources and syslog lines without loss.
type Entry struct {
	Time         time.Time // when the event happened; encoded in UTC
	Action       string    // ActionCreate, ActionRead, ActionUpdate, ActionDelete or ActionExecute
	Type         string    // event type, e.g. "rest", "authn", "enroll", "admin", "system"
	Subtype      string    // event subtype, e.g. "create", "read", "search", "login", "revoke"
	Outcome      string    // OutcomeSuccess, OutcomeMinorFailure, OutcomeSeriousFailure or OutcomeMajorFailure
	OutcomeDesc  string    // short description of a failure; never clinical data
	AgentType    string    // AgentDevice, AgentClient, AgentOperator, AgentSystem or AgentUser
	AgentID      string    // device id, client id, operator name or node name
	AgentRole    string    // the agent's role, e.g. "device", "clinician", "auditor", "admin"
	Emergency    bool      // break-glass access
	SourceIP     string    // the network address the request came from
	PatientIndex string    // hex blind index of the patient concerned, never a plaintext id
	Resources    []string  // resources touched, e.g. "Observation/123"
	Count        int       // number of results of a search
	Occurrences  int       // when > 1: this entry stands for that many identical refusals (see Log)
	RequestID    string    // request id, for correlation with the service log
	Node         string    // the Vitalgate node that recorded the entry
	// Site is the site the event belongs to (the site of the device, client, patient or
	// record concerned); empty for an event of the whole deployment (a key rotation, a
	// request from an unknown caller). A site auditor sees the entries of its site only.
	Site string
}

// Marshal returns the canonical encoding of e: a JSON object with its members in a fixed order
// (time, action, type, subtype, outcome, outcomeDesc, agentType, agentId, agentRole, emergency,
// sourceIp, patientIndex, resources, count, occurrences, requestId, node, site), "time" always present in UTC
// RFC 3339 with nanoseconds and trailing zeros removed, every other member omitted when it
// holds its zero value, no white space, and strings escaped minimally (quote, backslash and
// control characters only; invalid UTF-8 becomes U+FFFD).
//
// The same Entry always yields the same bytes, so the leaf hash LeafHash(e.Marshal()) is
// reproducible; omitting zero members means that a field added later does not change the
// encoding of older entries.
func (e Entry) Marshal() []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendMember(b, "action", e.Action)
	b = appendMember(b, "type", e.Type)
	b = appendMember(b, "subtype", e.Subtype)
	b = appendMember(b, "outcome", e.Outcome)
	b = appendMember(b, "outcomeDesc", e.OutcomeDesc)
	b = appendMember(b, "agentType", e.AgentType)
	b = appendMember(b, "agentId", e.AgentID)
	b = appendMember(b, "agentRole", e.AgentRole)
	if e.Emergency {
		b = append(b, `,"emergency":true`...)
	}
	b = appendMember(b, "sourceIp", e.SourceIP)
	b = appendMember(b, "patientIndex", e.PatientIndex)
	if len(e.Resources) > 0 {
		b = append(b, `,"resources":[`...)
		for i, r := range e.Resources {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, r)
		}
		b = append(b, ']')
	}
	if e.Count != 0 {
		b = append(b, `,"count":`...)
		b = strconv.AppendInt(b, int64(e.Count), 10)
	}
	if e.Occurrences != 0 {
		b = append(b, `,"occurrences":`...)
		b = strconv.AppendInt(b, int64(e.Occurrences), 10)
	}
	b = appendMember(b, "requestId", e.RequestID)
	b = appendMember(b, "node", e.Node)
	b = appendMember(b, "site", e.Site)
	return append(b, '}')
}

// LeafHash returns the Merkle leaf hash of e: LeafHash(e.Marshal()).
func (e Entry) LeafHash() [32]byte { return LeafHash(e.Marshal()) }

func appendMember(b []byte, name, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, value)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Only '"', '\\' and control characters are escaped;
// invalid UTF-8 is replaced by the UTF-8 encoding of U+FFFD, which is what encoding/json
// decodes it to, so that decoding and re-encoding give the same bytes.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// entryJSON mirrors the canonical encoding for decoding.
type entryJSON struct {
	Time         string   `json:"time"`
	Action       string   `json:"action"`
	Type         string   `json:"type"`
	Subtype      string   `json:"subtype"`
	Outcome      string   `json:"outcome"`
	OutcomeDesc  string   `json:"outcomeDesc"`
	AgentType    string   `json:"agentType"`
	AgentID      string   `json:"agentId"`
	AgentRole    string   `json:"agentRole"`
	Emergency    bool     `json:"emergency"`
	SourceIP     string   `json:"sourceIp"`
	PatientIndex string   `json:"patientIndex"`
	Resources    []string `json:"resources"`
	Count        int      `json:"count"`
	Occurrences  int      `json:"occurrences"`
	RequestID    string   `json:"requestId"`
	Node         string   `json:"node"`
	Site         string   `json:"site"`
}

// ErrNotCanonical is returned (wrapped) by UnmarshalEntry for input that is valid JSON but not
// the canonical encoding of the entry it holds.
var ErrNotCanonical = errors.New("audit: entry is not in canonical form")

// UnmarshalEntry decodes an entry encoded by Entry.Marshal. It accepts only the canonical
// encoding: unknown, repeated, reordered or differently spelled members, white space,
// needless escapes and zero values written out are all rejected (ErrNotCanonical), so that
// every entry has exactly one encoding and one leaf hash. It does not apply Entry.Validate.
func UnmarshalEntry(data []byte) (Entry, error) {
	var j entryJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Entry{}, fmt.Errorf("audit: decoding entry: %w", err)
	}
	if dec.More() {
		return Entry{}, fmt.Errorf("audit: decoding entry: data after the object: %w", ErrNotCanonical)
	}
	t, err := time.Parse(time.RFC3339Nano, j.Time)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: decoding entry time: %w", err)
	}
	e := Entry{
		Time: t.UTC(), Action: j.Action, Type: j.Type, Subtype: j.Subtype,
		Outcome: j.Outcome, OutcomeDesc: j.OutcomeDesc,
		AgentType: j.AgentType, AgentID: j.AgentID, AgentRole: j.AgentRole,
		Emergency: j.Emergency, SourceIP: j.SourceIP, PatientIndex: j.PatientIndex,
		Resources: j.Resources, Count: j.Count, Occurrences: j.Occurrences, RequestID: j.RequestID, Node: j.Node,
		Site: j.Site,
	}
	if !bytes.Equal(e.Marshal(), data) {
		return Entry{}, ErrNotCanonical
	}
	return e, nil
}

// Validate reports whether e is fit to be appended to the log: a time within years 1–9999, a
// known action, outcome and agent type, a non-empty event type and agent id, a lower-case hex
// patient index (or none), a non-negative count, non-empty resource references and valid
// UTF-8 throughout (so that the entry survives Marshal and UnmarshalEntry unchanged).
func (e Entry) Validate() error {
	if e.Time.IsZero() {
		return errors.New("audit: entry has no time")
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("audit: entry time year %d out of range", y)
	}
	switch e.Action {
	case ActionCreate, ActionRead, ActionUpdate, ActionDelete, ActionExecute:
	default:
		return fmt.Errorf("audit: unknown action %q", e.Action)
	}
	if e.Type == "" {
		return errors.New("audit: entry has no type")
	}
	switch e.Outcome {
	case OutcomeSuccess, OutcomeMinorFailure, OutcomeSeriousFailure, OutcomeMajorFailure:
	default:
		return fmt.Errorf("audit: unknown outcome %q", e.Outcome)
	}
	switch e.AgentType {
	case AgentDevice, AgentClient, AgentOperator, AgentSystem, AgentUser:
	default:
		return fmt.Errorf("audit: unknown agent type %q", e.AgentType)
	}
	if e.AgentID == "" {
		return errors.New("audit: entry has no agent id")
	}
	if len(e.PatientIndex)%2 != 0 {
		return errors.New("audit: patient index is not hex")
	}
	for _, c := range []byte(e.PatientIndex) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return errors.New("audit: patient index is not lower-case hex")
		}
	}
	if e.Count < 0 {
		return fmt.Errorf("audit: negative count %d", e.Count)
	}
	if e.Occurrences < 0 {
		return fmt.Errorf("audit: negative occurrences %d", e.Occurrences)
	}
	for _, s := range []string{e.Type, e.Subtype, e.OutcomeDesc, e.AgentID, e.AgentRole,
		e.SourceIP, e.RequestID, e.Node, e.Site} {
		if !utf8.ValidString(s) {
			return errors.New("audit: entry holds invalid UTF-8")
		}
	}
	for _, r := range e.Resources {
		if r == "" || !utf8.ValidString(r) {
			return fmt.Errorf("audit: bad resource reference %q", r)
		}
	}
	return nil
}
