package detect

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
)

// maxKeys bounds the state one rule keeps (per source, device, client or series), so that
// an attacker who varies addresses cannot grow it without bound: past it, keys idle for a
// window are swept, and a new key is not tracked until there is room.
const maxKeys = 100_000

// maxValues bounds the distinct values an alert's evidence lists.
const maxValues = 10

// Engine evaluates signals against rules on event time (Signal.At): a replay with
// simulated timestamps runs exactly as live traffic would. It is safe for concurrent use;
// signals are evaluated one at a time in the order Observe is called.
type Engine struct {
	mu    sync.Mutex
	rules Rules
	evals []evaluator
}

type evaluator interface {
	observe(sig Signal) (vitalgate.Alert, bool)
}

// NewEngine returns an engine for rs (validated).
func NewEngine(rs Rules) (*Engine, error) {
	if err := rs.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{rules: rs}
	for _, r := range rs.Rules {
		if r.Disabled {
			continue
		}
		base := base{rule: r, version: rs.Version}
		switch r.Kind {
		case RuleThreshold:
			e.evals = append(e.evals, &threshold{base: base, keys: map[string]*window{}})
		case RuleNewNetwork:
			e.evals = append(e.evals, newNetwork(base))
		case RuleValueJump, RuleFlatLine, RuleOutOfRange:
			e.evals = append(e.evals, &series{base: base, keys: map[string]*seriesState{}})
		}
	}
	return e, nil
}

// Rules returns the engine's rule set.
func (e *Engine) Rules() Rules { return e.rules }

// Observe evaluates one signal and returns the alerts it raises (usually none). The alerts
// have no id, status or creation time yet (Service gives them).
func (e *Engine) Observe(sig Signal) []vitalgate.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []vitalgate.Alert
	for _, ev := range e.evals {
		if a, ok := ev.observe(sig); ok {
			out = append(out, a)
		}
	}
	return out
}

// base is what every evaluator shares: its rule and the alert it builds.
type base struct {
	rule    Rule
	version int
}

// alert builds an alert of the rule keeping only the evidence the rule lists.
func (b base) alert(sig Signal, from time.Time, facts map[string]string) vitalgate.Alert {
	ev := map[string]string{}
	for _, k := range b.rule.Evidence {
		if v, ok := facts[k]; ok && v != "" {
			ev[k] = v
		}
	}
	return vitalgate.Alert{Rule: b.rule.ID, RulesVersion: b.version, Severity: string(b.rule.Severity),
		Category: string(b.rule.Category), Description: b.rule.Description, Site: sig.Site,
		From: from.UTC(), To: sig.At.UTC(), Evidence: ev}
}

func (b base) wants(k Kind) bool { return slices.Contains(b.rule.Params.Signals, k) }

// field returns the value of a signal field by its name in a rules file.
func field(sig Signal, name string) string {
	switch name {
	case "source":
		return sig.Source
	case "device":
		return sig.Device
	case "client":
		return sig.Client
	case "subject":
		return sig.Subject
	}
	return ""
}

// threshold is a RuleThreshold evaluator: a sliding window of events per key.
type threshold struct {
	base
	keys    map[string]*window
	dropped int
}

type event struct {
	at       time.Time
	distinct string
	reason   string
	source   string
	skew     time.Duration
}

type window struct {
	events   []event
	quietTil time.Time // after an alert, none again for this key until then
	last     time.Time
}

func (t *threshold) key(sig Signal) string {
	p := t.rule.Params
	if p.By == "network" {
		return sig.Network(24, 64)
	}
	return field(sig, p.By)
}

func (t *threshold) observe(sig Signal) (vitalgate.Alert, bool) {
	p := t.rule.Params
	if !t.wants(sig.Kind) || (len(p.Reasons) > 0 && !slices.ContainsFunc(p.Reasons, func(r string) bool {
		return strings.HasPrefix(sig.Reason, r)
	})) || (p.SkewAhead != 0 && sig.Skew < time.Duration(p.SkewAhead)) {
		return vitalgate.Alert{}, false
	}
	key := t.key(sig)
	if key == "" {
		return vitalgate.Alert{}, false
	}
	span := time.Duration(p.Window)
	w := t.keys[key]
	if w == nil {
		if len(t.keys) >= maxKeys {
			sweep(t.keys, sig.At, span)
			if len(t.keys) >= maxKeys {
				t.dropped++
				return vitalgate.Alert{}, false
			}
		}
		w = &window{}
		t.keys[key] = w
	}
	w.last = sig.At
	cut := sig.At.Add(-span)
	i := 0
	for i < len(w.events) && !w.events[i].at.After(cut) {
		i++
	}
	w.events = append(w.events[i:], event{at: sig.At, distinct: field(sig, p.Distinct), reason: sig.Reason, source: sig.Source, skew: sig.Skew})
	n, values := len(w.events), []string(nil)
	if p.Distinct != "" {
		set := map[string]bool{}
		for _, e := range w.events {
			if e.distinct != "" {
				set[e.distinct] = true
			}
		}
		n = len(set)
		for v := range set {
			values = append(values, v)
		}
		sort.Strings(values)
	}
	if len(w.events) > 4*p.Count { // bound the window: the oldest events are no longer needed to decide
		w.events = slices.Clone(w.events[len(w.events)-4*p.Count:])
	}
	if n < p.Count || sig.At.Before(w.quietTil) {
		return vitalgate.Alert{}, false
	}
	w.quietTil = sig.At.Add(span)
	from := w.events[0].at
	reasons := map[string]bool{}
	var maxSkew time.Duration
	for _, e := range w.events {
		if e.reason != "" {
			reasons[e.reason] = true
		}
		maxSkew = max(maxSkew, e.skew)
	}
	facts := map[string]string{
		"count": strconv.Itoa(len(w.events)), "window": span.String(), "reasons": joinSet(reasons, 5),
		"source": sig.Source, "network": sig.Network(24, 64),
	}
	if maxSkew > 0 {
		facts["max_skew"] = maxSkew.Round(time.Second).String()
	}
	if p.Distinct != "" {
		facts["distinct"] = strconv.Itoa(n)
		if p.Distinct != "subject" { // subjects are digests of patient identifiers: counted, never listed
			facts["values"] = strings.Join(values[:min(len(values), maxValues)], ",")
		}
	}
	w.events = w.events[:0]
	a := t.alert(sig, from, facts)
	switch p.By {
	case "device":
		a.Device = key
	case "client":
		a.Client = key
	case "source":
		a.Source = key
	}
	if a.Source == "" && p.Distinct != "source" {
		a.Source = sig.Source // the latest address of the device or client
	}
	return a, true
}

func joinSet(set map[string]bool, n int) string {
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Strings(out)
	return strings.Join(out[:min(len(out), n)], ",")
}

// sweep forgets the windows idle for longer than span.
func sweep(keys map[string]*window, now time.Time, span time.Duration) {
	for k, w := range keys {
		if now.Sub(w.last) > span {
			delete(keys, k)
		}
	}
}

// networks is a RuleNewNetwork evaluator: each device's networks, learned during the
// rule's learning period, and each model's (the union over its devices that finished
// learning), which a device first seen later is compared with from its first message.
type networks struct {
	base
	devices map[string]*deviceNets
	models  map[string]*modelNets
}

// maxNets bounds the networks kept per device and per model.
const maxNets = 256

type deviceNets struct {
	first      time.Time
	nets       map[string]bool
	protecting bool   // learning is over: a new network raises an alert
	baseline   string // "device" (learned its own) or "model" (its model's peers)
}

type modelNets struct {
	nets    map[string]bool
	learned int // devices of the model that finished learning
}

func newNetwork(b base) *networks {
	return &networks{base: b, devices: map[string]*deviceNets{}, models: map[string]*modelNets{}}
}

func (n *networks) prefixes() (int, int) {
	p := n.rule.Params
	v4, v6 := p.IPv4Prefix, p.IPv6Prefix
	if v4 == 0 {
		v4 = 24
	}
	if v6 == 0 {
		v6 = 64
	}
	return v4, v6
}

func (n *networks) observe(sig Signal) (vitalgate.Alert, bool) {
	if !n.wants(sig.Kind) || sig.Device == "" {
		return vitalgate.Alert{}, false
	}
	p := n.rule.Params
	net := sig.Network(n.prefixes())
	if p.Learn == "fingerprint" {
		net = sig.Fingerprint
	}
	if net == "" {
		return vitalgate.Alert{}, false
	}
	minPeers := p.MinPeers
	if minPeers == 0 {
		minPeers = 3
	}
	d := n.devices[sig.Device]
	if d == nil {
		if len(n.devices) >= maxKeys {
			return vitalgate.Alert{}, false
		}
		d = &deviceNets{first: sig.At, nets: map[string]bool{}, baseline: "device"}
		if m := n.models[sig.Model]; sig.Model != "" && m != nil && m.learned >= minPeers {
			d.protecting, d.baseline = true, "model"
			for k := range m.nets {
				d.nets[k] = true
			}
		}
		n.devices[sig.Device] = d
	}
	if !d.protecting && sig.At.Sub(d.first) >= time.Duration(p.Learning) {
		d.protecting = true
		if sig.Model != "" {
			m := n.models[sig.Model]
			if m == nil {
				m = &modelNets{nets: map[string]bool{}}
				n.models[sig.Model] = m
			}
			m.learned++
			for k := range d.nets {
				if len(m.nets) < maxNets {
					m.nets[k] = true
				}
			}
		}
	}
	if d.nets[net] {
		return vitalgate.Alert{}, false
	}
	if len(d.nets) < maxNets {
		d.nets[net] = true // learned, or alerted once
	}
	if !d.protecting {
		return vitalgate.Alert{}, false
	}
	known := make([]string, 0, len(d.nets))
	for k := range d.nets {
		if k != net {
			known = append(known, k)
		}
	}
	sort.Strings(known)
	facts := map[string]string{"network": net, "source": sig.Source,
		"known_networks": strings.Join(known[:min(len(known), maxValues)], ","), "baseline": d.baseline}
	if p.Learn == "fingerprint" {
		facts = map[string]string{"fingerprint": net, "source": sig.Source, "network": sig.Network(n.prefixes()),
			"known_fingerprints": strings.Join(known[:min(len(known), maxValues)], ","), "baseline": d.baseline}
	}
	a := n.alert(sig, sig.At, facts)
	a.Device, a.Source = sig.Device, sig.Source
	return a, true
}

// series is a value-series evaluator (value-jump, flat-line, out-of-range) per device and
// code. Values stay in memory; an alert names the code and counts, never a value.
type series struct {
	base
	keys map[string]*seriesState
}

type seriesState struct {
	has      bool
	lastAt   time.Time
	last     float64
	hits     []time.Time // jumps or out-of-range readings within the window
	run      int         // flat-line: readings equal to last in a row
	runFrom  time.Time
	fired    bool // flat-line: this run has raised its alert
	quietTil time.Time
}

func (s *series) observe(sig Signal) (vitalgate.Alert, bool) {
	p := s.rule.Params
	if sig.Kind != KindValue || sig.Device == "" || math.IsNaN(sig.Value) || math.IsInf(sig.Value, 0) ||
		(len(p.Codes) > 0 && !slices.Contains(p.Codes, sig.Code)) {
		return vitalgate.Alert{}, false
	}
	key := sig.Device + "|" + sig.Code
	st := s.keys[key]
	if st == nil {
		if len(s.keys) >= maxKeys {
			return vitalgate.Alert{}, false
		}
		st = &seriesState{}
		s.keys[key] = st
	}
	span := time.Duration(p.Window)
	hit := false
	switch s.rule.Kind {
	case RuleValueJump:
		if st.has {
			dt := sig.At.Sub(st.lastAt).Seconds()
			delta := math.Abs(sig.Value - st.last)
			hit = delta > 0 && (dt <= 0 || delta/dt > p.MaxRatePerSecond)
		}
	case RuleOutOfRange:
		hit = sig.Value < *p.Min || sig.Value > *p.Max
	case RuleFlatLine:
		if st.has && sig.Value == st.last {
			st.run++
		} else {
			st.run, st.runFrom, st.fired = 1, sig.At, false
		}
	}
	st.has, st.last, st.lastAt = true, sig.Value, sig.At
	if s.rule.Kind == RuleFlatLine {
		if st.fired || st.run < p.Count || sig.At.Sub(st.runFrom) < span {
			return vitalgate.Alert{}, false
		}
		st.fired = true
		a := s.alert(sig, st.runFrom, map[string]string{"count": strconv.Itoa(st.run), "window": sig.At.Sub(st.runFrom).String(), "code": sig.Code})
		a.Device = sig.Device
		return a, true
	}
	cut := sig.At.Add(-span)
	i := 0
	for i < len(st.hits) && !st.hits[i].After(cut) {
		i++
	}
	st.hits = st.hits[i:]
	if !hit {
		return vitalgate.Alert{}, false
	}
	st.hits = append(st.hits, sig.At)
	if len(st.hits) > p.Count {
		st.hits = slices.Clone(st.hits[len(st.hits)-p.Count:])
	}
	if len(st.hits) < p.Count || sig.At.Before(st.quietTil) {
		return vitalgate.Alert{}, false
	}
	st.quietTil = sig.At.Add(span)
	a := s.alert(sig, st.hits[0], map[string]string{"count": strconv.Itoa(len(st.hits)), "window": span.String(), "code": sig.Code})
	a.Device = sig.Device
	st.hits = st.hits[:0]
	return a, true
}

// String describes the engine (for the server's start-up log).
func (e *Engine) String() string {
	return fmt.Sprintf("detection (rules version %d, %d rules)", e.rules.Version, len(e.evals))
}
