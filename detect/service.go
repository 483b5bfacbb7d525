package detect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// PrincipalKind is the Principal kind of the detection capability when it quarantines a
// device (the registry accepts it for quarantine only, never for release).
const PrincipalKind = "detector"

// Quarantiner isolates a device (registry.Service.Quarantine).
type Quarantiner interface {
	Quarantine(ctx context.Context, p vitalgate.Principal, deviceID, reason string) error
}

// Counters are the Prometheus counters detection updates (metrics.Detection); every
// method must accept being called concurrently.
type Counters interface {
	Signal(kind string)
	Dropped()
	Alert(rule, severity string)
	Quarantined()
}

// DefaultBuffer is the default number of signals waiting for the engine; past it, signals
// are dropped and counted (the capability that emits them never waits).
const DefaultBuffer = 4096

// Config configures a Service.
type Config struct {
	Rules Rules                // default: DefaultRules()
	Store vitalgate.AlertStore // required
	Audit *audit.Log           // required
	// Quarantine, with AutoQuarantine, quarantines the device of a high-severity identity,
	// authentication or protocol alert (Rule.MayQuarantine); never on a clinical-value rule.
	Quarantine     Quarantiner
	AutoQuarantine bool
	Counters       Counters // optional
	Now            func() time.Time
	Rand           io.Reader
	Logger         *slog.Logger
	Buffer         int // DefaultBuffer when 0
}

// Service is the detection capability: it takes signals (Emit), evaluates them (Run, or
// Observe for a replay), and stores, audits, counts and logs the alerts; and it lists,
// acknowledges and resolves them.
type Service struct {
	cfg     Config
	engine  *Engine
	ch      chan Signal
	dropped atomic.Int64
	log     *slog.Logger
}

// New returns a Service. Errors: EINVALID for invalid rules or missing collaborators.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Audit == nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "detect: the alert store and the audit log are required")
	}
	if cfg.Rules.Format == "" {
		cfg.Rules = DefaultRules()
	}
	if cfg.AutoQuarantine && cfg.Quarantine == nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "detect: automatic quarantine needs the registry")
	}
	eng, err := NewEngine(cfg.Rules)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, engine: eng, ch: make(chan Signal, cfg.Buffer), log: log}, nil
}

// Counters returns the counters the service updates (nil when none).
func (s *Service) Counters() Counters {
	if s == nil {
		return nil
	}
	return s.cfg.Counters
}

// Engine returns the service's engine (its rules).
func (s *Service) Engine() *Engine { return s.engine }

// Emit queues a signal for Run without waiting: when the queue is full the signal is
// dropped and counted. A nil Service takes nothing.
func (s *Service) Emit(sig Signal) {
	if s == nil {
		return
	}
	if sig.At.IsZero() {
		sig.At = s.cfg.Now()
	}
	select {
	case s.ch <- sig:
	default:
		s.dropped.Add(1)
		if s.cfg.Counters != nil {
			s.cfg.Counters.Dropped()
		}
	}
}

// Dropped returns how many signals were dropped because the queue was full.
func (s *Service) Dropped() int64 { return s.dropped.Load() }

// Run evaluates queued signals until ctx is done.
func (s *Service) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-s.ch:
			if _, err := s.Observe(ctx, sig); err != nil {
				s.log.Error("detection: an alert could not be stored", "error", err.Error())
			}
		}
	}
}

// Observe evaluates one signal at once and raises its alerts (a replay calls it directly,
// on simulated time). It returns the alerts raised.
func (s *Service) Observe(ctx context.Context, sig Signal) ([]vitalgate.Alert, error) {
	if s.cfg.Counters != nil {
		s.cfg.Counters.Signal(string(sig.Kind))
	}
	var out []vitalgate.Alert
	for _, a := range s.engine.Observe(sig) {
		a, err := s.raise(ctx, a)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (s *Service) newID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
		return "", vitalgate.Internal(err, "alert id")
	}
	return hex.EncodeToString(b[:]), nil
}

// implicated are the audit resources of an alert.
func implicated(a vitalgate.Alert) []string {
	rs := []string{"DetectedIssue/" + a.ID}
	if a.Device != "" {
		rs = append(rs, "Device/"+a.Device)
	}
	return rs
}

// raise stores, audits, logs and counts an alert, and quarantines its device when the
// rule may and the operator configured it.
func (s *Service) raise(ctx context.Context, a vitalgate.Alert) (vitalgate.Alert, error) {
	id, err := s.newID()
	if err != nil {
		return a, err
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	a.ID, a.Status, a.CreatedAt, a.UpdatedAt = id, vitalgate.AlertOpen, now, now
	rule := s.rule(a.Rule)
	quarantine := s.cfg.AutoQuarantine && a.Device != "" && rule.MayQuarantine()
	e := s.cfg.Audit.Encode(ctx, audit.Entry{Action: audit.ActionCreate, Type: "detect", Subtype: "alert",
		AgentType: audit.AgentSystem, AgentID: "detect", Outcome: audit.OutcomeSuccess, Site: a.Site,
		OutcomeDesc: Summary(a),
		Resources:   implicated(a), SourceIP: a.Source})
	if err := s.cfg.Store.CreateAlert(ctx, a, e); err != nil {
		return a, err
	}
	s.log.Warn("security alert", "alert", a.ID, "rule", a.Rule, "severity", a.Severity, "category", a.Category,
		"device", a.Device, "client", a.Client, "source", a.Source, "from", a.From, "to", a.To)
	if s.cfg.Counters != nil {
		s.cfg.Counters.Alert(a.Rule, a.Severity)
	}
	if quarantine {
		p := vitalgate.Principal{Kind: PrincipalKind, ID: "detect:" + a.ID, Site: vitalgate.AllSites}
		err := s.cfg.Quarantine.Quarantine(ctx, p, a.Device, "automatic quarantine on alert "+a.ID+" (rule "+a.Rule+")")
		switch vitalgate.ErrorCode(err) {
		case "":
			a.Quarantined = true
			if s.cfg.Counters != nil {
				s.cfg.Counters.Quarantined()
			}
			s.log.Warn("device quarantined automatically", "alert", a.ID, "device", a.Device)
		case vitalgate.ECONFLICT, vitalgate.ENOTFOUND: // already isolated, or not a device of ours
		default:
			s.log.Error("automatic quarantine failed", "alert", a.ID, "device", a.Device, "error", err.Error())
		}
	}
	return a, nil
}

// Summary is an alert in one line, as its audit entry (and so the syslog forwarder) carries
// it: the rule, severity and category, whom it implicates, the window and the evidence
// facts, sorted. An alert holds no clinical value or patient identifier, so neither does
// its summary; the code of a value-series rule stays out of it too (the audit log says
// nothing of what was measured), and an evidence value is cut at 200 bytes.
func Summary(a vitalgate.Alert) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rule %s (%s, %s)", a.Rule, a.Severity, a.Category)
	if a.Device != "" {
		b.WriteString(" device " + a.Device)
	}
	if a.Client != "" {
		b.WriteString(" client " + a.Client)
	}
	fmt.Fprintf(&b, " from %s to %s", a.From.UTC().Format(time.RFC3339), a.To.UTC().Format(time.RFC3339))
	keys := slices.DeleteFunc(slices.Sorted(maps.Keys(a.Evidence)), func(k string) bool { return k == "code" })
	for i, k := range keys {
		if i == 0 {
			b.WriteString("; evidence")
		}
		v := a.Evidence[k]
		if len(v) > 200 {
			v = strings.ToValidUTF8(v[:200], "") + "…"
		}
		b.WriteString(" " + k + "=" + v)
	}
	return b.String()
}

func (s *Service) rule(id string) Rule {
	for _, r := range s.engine.rules.Rules {
		if r.ID == id {
			return r
		}
	}
	return Rule{}
}

// mayRead reports whether p may see alerts of site: an operator or a deployment-wide
// principal every site's (and those of no site, as with audit entries), anyone else only
// its own site's.
func mayRead(p vitalgate.Principal, site string) bool {
	return p.Kind == "operator" || p.Site == vitalgate.AllSites || (site != "" && p.Site == site)
}

// Alerts lists alerts, newest first, of the sites p may see (f.Site narrows them).
func (s *Service) Alerts(ctx context.Context, p vitalgate.Principal, f vitalgate.AlertFilter) ([]vitalgate.Alert, error) {
	if p.Kind != "operator" && p.Site != vitalgate.AllSites {
		f.Site = p.Site
	}
	as, err := s.cfg.Store.Alerts(ctx, f)
	if err != nil {
		return nil, err
	}
	out := as[:0]
	for _, a := range as {
		if mayRead(p, a.Site) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Alert returns one alert. ENOTFOUND (also for another site's).
func (s *Service) Alert(ctx context.Context, p vitalgate.Principal, id string) (vitalgate.Alert, error) {
	a, err := s.cfg.Store.Alert(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND || err == nil && !mayRead(p, a.Site) {
		return vitalgate.Alert{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "no alert %q", id)
	}
	return a, err
}

// Acknowledge marks an open alert as being looked at. Errors: ENOTFOUND, ECONFLICT (not
// open), EINVALID (note).
func (s *Service) Acknowledge(ctx context.Context, p vitalgate.Principal, id, note string) error {
	return s.move(ctx, p, id, note, "alert-ack", vitalgate.AlertAcknowledged, vitalgate.AlertOpen)
}

// Resolve closes an open or acknowledged alert. Errors: ENOTFOUND, ECONFLICT (resolved
// already), EINVALID (note).
func (s *Service) Resolve(ctx context.Context, p vitalgate.Principal, id, note string) error {
	return s.move(ctx, p, id, note, "alert-resolve", vitalgate.AlertResolved, vitalgate.AlertOpen, vitalgate.AlertAcknowledged)
}

func (s *Service) move(ctx context.Context, p vitalgate.Principal, id, note, subtype string, to vitalgate.AlertStatus, from ...vitalgate.AlertStatus) error {
	note = strings.TrimSpace(note)
	if len(note) > 500 || strings.ContainsAny(note, "\r\n") {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "note", "a note is at most 500 characters on one line")
	}
	a, err := s.Alert(ctx, p, id)
	if err != nil {
		return err
	}
	if !containsStatus(from, a.Status) {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "alert %s is %s already", id, a.Status)
	}
	agent := audit.AgentClient
	if p.Kind == "operator" {
		agent = audit.AgentOperator
	}
	e := s.cfg.Audit.Encode(ctx, audit.Entry{Action: audit.ActionUpdate, Type: "detect", Subtype: subtype, AgentType: agent,
		AgentID: p.ID, AgentRole: string(p.Role), Outcome: audit.OutcomeSuccess, OutcomeDesc: note, Site: a.Site, Resources: implicated(a)})
	err = s.cfg.Store.SetAlertStatus(ctx, id, a.Status, to, p.ID, note, s.cfg.Now(), e)
	if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "alert %s changed meanwhile; list it again", id)
	}
	return err
}

func containsStatus(ss []vitalgate.AlertStatus, s vitalgate.AlertStatus) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
