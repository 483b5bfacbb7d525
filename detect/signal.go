// Package detect is the intrusion and anomaly detection capability: the capabilities emit
// Signals (an authentication failure, a refused message, an accepted message and the
// address it came from, a reading's value) through a Sink; the Engine evaluates them on
// event time against Rules — parameterised rule kinds loaded from a versioned JSON file —
// and raises Alerts; the Service stores, audits and counts the alerts and, when the
// operator enables it, quarantines the device of a high-severity identity, authentication
// or protocol alert. Rules on clinical values raise alerts for review only and never
// quarantine.
//
// Nothing a Signal carries that may reach a log, an alert or the store is clinical: a
// reading's code and value live in memory only (for the value-series rules), and patient
// identifiers appear only as opaque keyed digests (Signal.Subject).
package detect

import (
	"log/slog"
	"net/netip"
	"time"
)

// Kind names what a Signal reports.
type Kind string

// Signal kinds. The capability that emits each is named in its comment.
const (
	// KindAuthFailure: a client failed to authenticate at the token endpoint (auth).
	KindAuthFailure Kind = "auth-failure"
	// KindScopeEscalation: an authenticated client asked for scopes or emergency access
	// beyond its role (auth).
	KindScopeEscalation Kind = "scope-escalation"
	// KindEnrollFailure: an EST enrollment was refused (registry).
	KindEnrollFailure Kind = "enroll-failure"
	// KindCertRefused: a device certificate was refused — revoked, unknown, expired or of
	// a device that is not active (registry). Reason says which.
	KindCertRefused Kind = "cert-refused"
	// KindRefusal: a device's message was refused by ingest; Reason is the error code and
	// element, never the message.
	KindRefusal Kind = "refusal"
	// KindPatientRefused: a message named a patient identifier that is not the device's
	// or not known (ingest); Subject is the identifier's blind index, never the value.
	KindPatientRefused Kind = "patient-refused"
	// KindAccepted: a device's message was accepted (ingest), from Source, with the
	// device's clock Skew.
	KindAccepted Kind = "accepted"
	// KindValue: one numeric reading of an accepted message (ingest): Code and Value, in
	// memory only.
	KindValue Kind = "value"
	// KindResend: a device sent an observation stored before, the very same (ingest): a
	// retry after a lost acknowledgement, or a replay.
	KindResend Kind = "resend"
	// KindHandshake: a device completed a TLS handshake (registry), from Source, with the
	// Fingerprint of its TLS hello.
	KindHandshake Kind = "handshake"
)

// Signal is one observation a capability reports. At is event time (the capability's
// injected clock), so that a replay runs on simulated time.
type Signal struct {
	Kind   Kind
	At     time.Time
	Source string // the caller's network address (IP), "" when unknown
	Device string // the device id, when a device acts or is named
	Client string // the API client id, when a client acts or is named
	Site   string
	Model  string // the device's model, when known (model-peer baselines)
	// Reason is a short machine reason: an error code and the element it names
	// ("forbidden: PID-3"), never a message (messages may quote values).
	Reason string
	// Subject is an opaque key of what was asked for (the blind index of a patient
	// identifier), for counting distinct ones; never a plaintext identifier.
	Subject string
	// Skew is, for an accepted message, how far the device's clock is ahead of the server's:
	// the newest effective time of its readings minus the arrival (negative for readings
	// sent late, as a device that was offline sends them); 0 when unknown.
	Skew time.Duration
	// Fingerprint is a digest of the device's TLS hello (KindHandshake): the same TLS
	// stack gives the same one.
	Fingerprint string

	// Code and Value are a numeric reading (KindValue only). They stay in memory: they are
	// never logged (LogValue leaves them out), stored, or copied into an alert.
	Code  string  `json:"-"`
	Value float64 `json:"-"`
}

// LogValue is the Signal as log attributes, without the reading's code and value.
func (s Signal) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", string(s.Kind)), slog.Time("at", s.At),
		slog.String("source", s.Source), slog.String("device", s.Device), slog.String("client", s.Client),
		slog.String("site", s.Site), slog.String("reason", s.Reason))
}

// Network returns the network of the signal's source address: the /v4 prefix of an IPv4
// address, the /v6 prefix of an IPv6 one ("" when there is no valid address).
func (s Signal) Network(v4, v6 int) string {
	a, err := netip.ParseAddr(s.Source)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	bits := v6
	if a.Is4() {
		bits = v4
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	return p.String()
}

// Sink receives signals. Emit never blocks the caller for long and never fails it: a
// signal that cannot be taken is dropped and counted.
type Sink interface {
	Emit(Signal)
}

// Emit sends sig to sink unless sink is nil (detection off): the one line a capability
// writes at each point it reports.
func Emit(sink Sink, sig Signal) {
	if sink != nil {
		sink.Emit(sig)
	}
}
