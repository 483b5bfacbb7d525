package detect

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/vitalgate/vitalgate"
)

// Format is the value of a rules file's "format" field.
const Format = "vitalgate-detection-rules"

// FormatVersion is the version of the rules file format this package reads.
const FormatVersion = 1

// Severity of a rule and of its alerts.
type Severity string

// Severities, lowest first. Only a high-severity alert of an identity, authentication or
// protocol rule may quarantine a device.
const (
	SeverityLow    Severity = "low"
	SeverityMedium Severity = "medium"
	SeverityHigh   Severity = "high"
)

// Category groups rules by what they watch.
type Category string

// Categories. CategoryClinical is the category of every value-series rule and of nothing
// else: its alerts are for review and never quarantine.
const (
	CategoryIdentity       Category = "identity"       // a device or client identity used where it should not be
	CategoryAuthentication Category = "authentication" // credential stuffing, enrollment guessing
	CategoryProtocol       Category = "protocol"       // refused messages, enumeration, scope probing
	CategoryClinical       Category = "clinical-value" // implausible value series (review only)
)

// Rule kinds (the "kind" of a rule; each takes its own params).
const (
	// RuleThreshold counts signals of some kinds per key (source, device, client or the
	// source's network) in a sliding window: at Count events, or Count distinct values of
	// Distinct, it fires.
	RuleThreshold = "threshold"
	// RuleNewNetwork learns each device's source networks during a learning period and
	// fires when the device is seen from a network it was not; a device first seen once its
	// model's baseline is mature is compared with its model's peers from the start.
	RuleNewNetwork = "new-network"
	// RuleValueJump fires when a device's series of one code changes faster than
	// MaxRatePerSecond Count times in Window (review only).
	RuleValueJump = "value-jump"
	// RuleFlatLine fires when a device's series repeats the same value Count times in a row
	// over at least Window (review only).
	RuleFlatLine = "flat-line"
	// RuleOutOfRange fires when Count readings of a code fall outside [Min, Max] within
	// Window (review only).
	RuleOutOfRange = "out-of-range"
)

// Duration is a time.Duration written in JSON as a Go duration string ("60s", "24h").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"60s\" or \"24h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Params are the parameters of a rule; each kind reads its own (Validate says which).
type Params struct {
	// Signals are the signal kinds a threshold or new-network rule counts.
	Signals []Kind `json:"signals,omitempty"`
	// Reasons, when set, restricts a threshold rule to signals whose Reason is one of them.
	Reasons []string `json:"reasons,omitempty"`
	// SkewAhead, when set, restricts a threshold rule to signals whose device clock is at
	// least this far ahead of the server's (Signal.Skew).
	SkewAhead Duration `json:"skew_ahead,omitempty"`
	// By is the key a threshold rule counts per: source, network, device or client.
	By string `json:"by,omitempty"`
	// Distinct, when set, counts distinct values of this signal field instead of events:
	// source, device, client or subject.
	Distinct string   `json:"distinct,omitempty"`
	Count    int      `json:"count,omitempty"`
	Window   Duration `json:"window,omitempty"`

	// Learn is what a new-network rule learns per device: "network" (the default, its
	// source networks) or "fingerprint" (its TLS stacks, from handshake signals).
	Learn string `json:"learn,omitempty"`
	// Learning is how long a new-network rule learns a device's (and a model's) networks.
	Learning Duration `json:"learning,omitempty"`
	// IPv4Prefix and IPv6Prefix are the prefix lengths of a network (default 24 and 64).
	IPv4Prefix int `json:"ipv4_prefix,omitempty"`
	IPv6Prefix int `json:"ipv6_prefix,omitempty"`
	// MinPeers is how many devices of a model must have finished learning before a new
	// device of that model is compared with them (default 3).
	MinPeers int `json:"min_peers,omitempty"`

	// Codes restricts a value rule to these codes (none: every code).
	Codes []string `json:"codes,omitempty"`
	// MaxRatePerSecond is the largest plausible change of a value per second.
	MaxRatePerSecond float64 `json:"max_rate_per_second,omitempty"`
	// Min and Max bound plausible values (out-of-range).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Rule is one detection rule.
type Rule struct {
	ID          string   `json:"id"`
	Severity    Severity `json:"severity"`
	Category    Category `json:"category"`
	Description string   `json:"description"`
	Kind        string   `json:"kind"`
	Params      Params   `json:"params"`
	// Evidence lists the facts an alert of this rule keeps (see EvidenceKeys).
	Evidence []string `json:"evidence"`
	// Disabled rules are loaded and listed but never evaluated.
	Disabled bool `json:"disabled,omitempty"`
}

// MayQuarantine reports whether an alert of the rule may quarantine a device by itself
// (when automatic quarantine is configured): high severity, and an identity,
// authentication or protocol rule. Never a clinical-value rule.
func (r Rule) MayQuarantine() bool {
	return r.Severity == SeverityHigh && r.Category != CategoryClinical && !valueKind(r.Kind)
}

// Rules is a rules file.
type Rules struct {
	Format string `json:"format"`
	// FormatVersion is the version of the file format (FormatVersion).
	FormatVersion int `json:"format_version"`
	// Version is the version of this rule set; alerts name it with the rule.
	Version int    `json:"version"`
	Rules   []Rule `json:"rules"`
}

// EvidenceKeys are the evidence facts each rule kind can keep.
var EvidenceKeys = map[string][]string{
	RuleThreshold:  {"count", "distinct", "values", "reasons", "window", "source", "network", "max_skew"},
	RuleNewNetwork: {"network", "source", "known_networks", "baseline", "fingerprint", "known_fingerprints"},
	RuleValueJump:  {"count", "window", "code"},
	RuleFlatLine:   {"count", "window", "code"},
	RuleOutOfRange: {"count", "window", "code"},
}

func valueKind(kind string) bool {
	return kind == RuleValueJump || kind == RuleFlatLine || kind == RuleOutOfRange
}

var ruleID = regexp.MustCompile(`^[a-z0-9][a-z0-9\-.]{0,63}$`)

var signalKinds = []Kind{KindAuthFailure, KindScopeEscalation, KindEnrollFailure, KindCertRefused, KindRefusal,
	KindPatientRefused, KindAccepted, KindValue, KindResend, KindHandshake}

// Validate reports the first problem of the rules file, naming the rule and field.
func (rs Rules) Validate() error {
	bad := func(i int, field, format string, args ...any) error {
		id := ""
		if i >= 0 && i < len(rs.Rules) {
			id = rs.Rules[i].ID
		}
		return vitalgate.FieldErrorf(vitalgate.EINVALID, fmt.Sprintf("rules[%d](%s).%s", i, id, field), format, args...)
	}
	if rs.Format != Format {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "format", "a rules file starts with \"format\": %q", Format)
	}
	if rs.FormatVersion != FormatVersion {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "format_version", "this Vitalgate reads rules format version %d, the file is version %d", FormatVersion, rs.FormatVersion)
	}
	if rs.Version < 1 {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "version", "the rule set's version must be 1 or more")
	}
	seen := map[string]bool{}
	for i, r := range rs.Rules {
		if !ruleID.MatchString(r.ID) {
			return bad(i, "id", "a rule id is 1 to 64 lowercase letters, digits, '-' or '.'")
		}
		if seen[r.ID] {
			return bad(i, "id", "rule id %q is used twice", r.ID)
		}
		seen[r.ID] = true
		if !slices.Contains([]Severity{SeverityLow, SeverityMedium, SeverityHigh}, r.Severity) {
			return bad(i, "severity", "severity must be low, medium or high")
		}
		if r.Description == "" || len(r.Description) > 500 {
			return bad(i, "description", "a rule needs a description of 1 to 500 characters")
		}
		keys, ok := EvidenceKeys[r.Kind]
		if !ok {
			return bad(i, "kind", "unknown rule kind %q (threshold, new-network, value-jump, flat-line, out-of-range)", r.Kind)
		}
		if valueKind(r.Kind) != (r.Category == CategoryClinical) {
			return bad(i, "category", "value-series rules (and only they) have category %q: their alerts are for review and never quarantine", CategoryClinical)
		}
		if !slices.Contains([]Category{CategoryIdentity, CategoryAuthentication, CategoryProtocol, CategoryClinical}, r.Category) {
			return bad(i, "category", "category must be identity, authentication, protocol or clinical-value")
		}
		for _, e := range r.Evidence {
			if !slices.Contains(keys, e) {
				return bad(i, "evidence", "a %s rule keeps no evidence %q (it keeps %v)", r.Kind, e, keys)
			}
		}
		if err := r.Params.validate(r.Kind); err != nil {
			return bad(i, "params."+err.field, "%s", err.msg)
		}
	}
	return nil
}

type paramError struct{ field, msg string }

func (p Params) validate(kind string) *paramError {
	perr := func(field, format string, args ...any) *paramError {
		return &paramError{field, fmt.Sprintf(format, args...)}
	}
	for _, k := range p.Signals {
		if !slices.Contains(signalKinds, k) {
			return perr("signals", "unknown signal kind %q", k)
		}
	}
	window := time.Duration(p.Window)
	switch kind {
	case RuleThreshold:
		switch {
		case len(p.Signals) == 0:
			return perr("signals", "a threshold rule names the signal kinds it counts")
		case !slices.Contains([]string{"source", "network", "device", "client"}, p.By):
			return perr("by", "by must be source, network, device or client")
		case p.Distinct != "" && !slices.Contains([]string{"source", "device", "client", "subject"}, p.Distinct):
			return perr("distinct", "distinct must be source, device, client or subject")
		case p.Count < 2 || p.Count > 100000:
			return perr("count", "count must be between 2 and 100000")
		case window < time.Second || window > 24*time.Hour:
			return perr("window", "window must be between 1s and 24h")
		case p.SkewAhead != 0 && (time.Duration(p.SkewAhead) < time.Second || time.Duration(p.SkewAhead) > 24*time.Hour):
			return perr("skew_ahead", "skew_ahead must be between 1s and 24h")
		}
	case RuleNewNetwork:
		switch {
		case time.Duration(p.Learning) < time.Minute || time.Duration(p.Learning) > 90*24*time.Hour:
			return perr("learning", "learning must be between 1m and 2160h")
		case p.IPv4Prefix != 0 && (p.IPv4Prefix < 8 || p.IPv4Prefix > 32):
			return perr("ipv4_prefix", "ipv4_prefix must be between 8 and 32")
		case p.IPv6Prefix != 0 && (p.IPv6Prefix < 16 || p.IPv6Prefix > 128):
			return perr("ipv6_prefix", "ipv6_prefix must be between 16 and 128")
		case p.MinPeers < 0 || p.MinPeers > 1000:
			return perr("min_peers", "min_peers must be between 0 and 1000")
		case p.Learn != "" && p.Learn != "network" && p.Learn != "fingerprint":
			return perr("learn", "learn must be network or fingerprint")
		}
	case RuleValueJump, RuleFlatLine, RuleOutOfRange:
		switch {
		case p.Count < 2 || p.Count > 100000:
			return perr("count", "count must be between 2 and 100000")
		case window < time.Second || window > 24*time.Hour:
			return perr("window", "window must be between 1s and 24h")
		case kind == RuleValueJump && !(p.MaxRatePerSecond > 0):
			return perr("max_rate_per_second", "a value-jump rule needs max_rate_per_second above 0")
		case kind == RuleOutOfRange && (p.Min == nil || p.Max == nil || *p.Min >= *p.Max):
			return perr("min", "an out-of-range rule needs min below max")
		case kind == RuleOutOfRange && len(p.Codes) == 0:
			return perr("codes", "an out-of-range rule names the codes its range is for")
		}
	}
	return nil
}

// ParseRules reads and validates a rules file. Unknown fields are refused, so that a
// misspelt parameter is not silently ignored.
func ParseRules(b []byte) (Rules, error) {
	var rs Rules
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rs); err != nil {
		return Rules{}, vitalgate.Errorf(vitalgate.EINVALID, "the rules file is not valid JSON of the rules format: %v", err)
	}
	if dec.More() {
		return Rules{}, vitalgate.Errorf(vitalgate.EINVALID, "the rules file holds more than one JSON value")
	}
	if err := rs.Validate(); err != nil {
		return Rules{}, err
	}
	return rs, nil
}

//go:embed rules.json
var defaultRules []byte

// DefaultRulesJSON returns the shipped rules file (detect/rules.json), documented in
// docs/detection.md.
func DefaultRulesJSON() []byte { return slices.Clone(defaultRules) }

// DefaultRules returns the shipped rules.
func DefaultRules() Rules {
	rs, err := ParseRules(defaultRules)
	if err != nil {
		panic("detect: the embedded rules.json is invalid: " + err.Error()) // a test proves it is not
	}
	return rs
}
