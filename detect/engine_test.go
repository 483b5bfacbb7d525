package detect_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
)

var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func mustEngine(t *testing.T, rules ...detect.Rule) *detect.Engine {
	t.Helper()
	e, err := detect.NewEngine(detect.Rules{Format: detect.Format, FormatVersion: detect.FormatVersion, Version: 3, Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func run(e *detect.Engine, sigs []detect.Signal) []vitalgate.Alert {
	var out []vitalgate.Alert
	for _, s := range sigs {
		out = append(out, e.Observe(s)...)
	}
	return out
}

func fl(v float64) *float64 { return &v }

func TestDefaultRulesAreValid(t *testing.T) {
	rs := detect.DefaultRules()
	if len(rs.Rules) < 10 || rs.Version < 1 {
		t.Fatalf("default rules: version %d, %d rules", rs.Version, len(rs.Rules))
	}
	for _, r := range rs.Rules {
		if r.Category == detect.CategoryClinical && r.MayQuarantine() {
			t.Errorf("clinical-value rule %s may quarantine", r.ID)
		}
	}
}

func TestRulesValidate(t *testing.T) {
	good := func() detect.Rule {
		return detect.Rule{ID: "r1", Severity: detect.SeverityHigh, Category: detect.CategoryAuthentication, Description: "d",
			Kind: detect.RuleThreshold, Params: detect.Params{Signals: []detect.Kind{detect.KindAuthFailure}, By: "source", Count: 3,
				Window: detect.Duration(time.Minute)}, Evidence: []string{"count"}}
	}
	cases := []struct {
		name  string
		edit  func(r *detect.Rule)
		field string // "" = valid
	}{
		{"valid", func(r *detect.Rule) {}, ""},
		{"bad id", func(r *detect.Rule) { r.ID = "Bad Id" }, ".id"},
		{"bad severity", func(r *detect.Rule) { r.Severity = "urgent" }, ".severity"},
		{"unknown kind", func(r *detect.Rule) { r.Kind = "regex" }, ".kind"},
		{"unknown evidence", func(r *detect.Rule) { r.Evidence = []string{"password"} }, ".evidence"},
		{"count too small", func(r *detect.Rule) { r.Params.Count = 1 }, ".params.count"},
		{"bad by", func(r *detect.Rule) { r.Params.By = "patient" }, ".params.by"},
		{"unknown signal", func(r *detect.Rule) { r.Params.Signals = []detect.Kind{"ping"} }, ".params.signals"},
		{"value rule must be clinical", func(r *detect.Rule) {
			r.Kind, r.Params = detect.RuleValueJump, detect.Params{MaxRatePerSecond: 1, Count: 2, Window: detect.Duration(time.Minute)}
		}, ".category"},
		{"clinical category on a threshold", func(r *detect.Rule) { r.Category = detect.CategoryClinical }, ".category"},
		{"out-of-range needs min below max", func(r *detect.Rule) {
			r.Kind, r.Category = detect.RuleOutOfRange, detect.CategoryClinical
			r.Params = detect.Params{Codes: []string{"8867-4"}, Min: fl(5), Max: fl(1), Count: 2, Window: detect.Duration(time.Minute)}
		}, ".params.min"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := good()
			c.edit(&r)
			err := detect.Rules{Format: detect.Format, FormatVersion: 1, Version: 1, Rules: []detect.Rule{r}}.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("valid rule refused: %v", err)
				}
				return
			}
			if err == nil || !strings.HasSuffix(vitalgate.ErrorField(err), c.field) {
				t.Fatalf("got %v (field %q), want a refusal at %s", err, vitalgate.ErrorField(err), c.field)
			}
		})
	}
}

func TestParseRulesRefusesUnknownFieldsAndVersions(t *testing.T) {
	for name, doc := range map[string]string{
		"misspelt param": strings.Replace(string(detect.DefaultRulesJSON()), `"window"`, `"windw"`, 1),
		"future format":  strings.Replace(string(detect.DefaultRulesJSON()), `"format_version": 1`, `"format_version": 2`, 1),
		"not rules":      `{"format": "something-else", "format_version": 1, "version": 1, "rules": []}`,
		"two documents":  `{"format": "vitalgate-detection-rules", "format_version": 1, "version": 1, "rules": []} {}`,
	} {
		if _, err := detect.ParseRules([]byte(doc)); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", name, err)
		}
	}
	rs, err := detect.ParseRules(detect.DefaultRulesJSON())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rs)
	if _, err := detect.ParseRules(b); err != nil {
		t.Fatalf("the default rules do not round-trip: %v", err)
	}
}

func TestThreshold(t *testing.T) {
	rule := detect.Rule{ID: "stuffing", Severity: detect.SeverityHigh, Category: detect.CategoryAuthentication, Description: "d",
		Kind: detect.RuleThreshold, Params: detect.Params{Signals: []detect.Kind{detect.KindAuthFailure}, By: "source", Count: 5,
			Window: detect.Duration(time.Minute)}, Evidence: []string{"count", "window", "source"}}
	failures := func(n int, step time.Duration, src string) []detect.Signal {
		var out []detect.Signal
		for i := range n {
			out = append(out, detect.Signal{Kind: detect.KindAuthFailure, At: t0.Add(time.Duration(i) * step), Source: src, Client: fmt.Sprint("c", i)})
		}
		return out
	}
	cases := []struct {
		name   string
		sigs   []detect.Signal
		alerts int
	}{
		{"below the count", failures(4, time.Second, "192.0.2.1"), 0},
		{"at the count", failures(5, time.Second, "192.0.2.1"), 1},
		{"spread beyond the window", failures(20, 20*time.Second, "192.0.2.1"), 0},
		{"quiet for a window after an alert", failures(9, time.Second, "192.0.2.1"), 1},
		{"again after the quiet window", failures(12, 10*time.Second, "192.0.2.1"), 2},
		{"other kinds do not count", []detect.Signal{{Kind: detect.KindRefusal, At: t0, Source: "192.0.2.1"}}, 0},
		{"each source its own", append(failures(3, time.Second, "192.0.2.1"), failures(3, time.Second, "192.0.2.2")...), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			alerts := run(mustEngine(t, rule), c.sigs)
			if len(alerts) != c.alerts {
				t.Fatalf("got %d alerts, want %d: %+v", len(alerts), c.alerts, alerts)
			}
			if c.alerts > 0 {
				a := alerts[0]
				if a.Rule != "stuffing" || a.RulesVersion != 3 || a.Source != "192.0.2.1" || a.Evidence["count"] != "5" || a.Evidence["window"] != "1m0s" {
					t.Fatalf("alert %+v", a)
				}
			}
		})
	}
}

func TestEnumerationCountsDistinctSubjectsAndNeverListsThem(t *testing.T) {
	rule := detect.Rule{ID: "enum", Severity: detect.SeverityHigh, Category: detect.CategoryProtocol, Description: "d",
		Kind: detect.RuleThreshold, Params: detect.Params{Signals: []detect.Kind{detect.KindPatientRefused}, By: "device",
			Distinct: "subject", Count: 3, Window: detect.Duration(time.Minute)}, Evidence: []string{"count", "distinct", "values"}}
	same := []detect.Signal{}
	for i := range 10 {
		same = append(same, detect.Signal{Kind: detect.KindPatientRefused, At: t0.Add(time.Duration(i) * time.Second), Device: "d1", Subject: "aaaa"})
	}
	if got := run(mustEngine(t, rule), same); len(got) != 0 {
		t.Fatalf("one identifier refused again and again is no enumeration: %+v", got)
	}
	var many []detect.Signal
	for i := range 3 {
		many = append(many, detect.Signal{Kind: detect.KindPatientRefused, At: t0.Add(time.Duration(i) * time.Second), Device: "d1", Subject: fmt.Sprint("digest", i)})
	}
	got := run(mustEngine(t, rule), many)
	if len(got) != 1 || got[0].Device != "d1" || got[0].Evidence["distinct"] != "3" {
		t.Fatalf("got %+v", got)
	}
	if _, listed := got[0].Evidence["values"]; listed {
		t.Fatalf("the digests of patient identifiers were listed in the evidence: %v", got[0].Evidence)
	}
}

// TestNewTLSStack: a new-network rule that learns fingerprints alerts on a device's TLS
// hello it never sent (a stolen key in another stack), not on a new network, and compares a
// new device with its model's stacks.
func TestNewTLSStack(t *testing.T) {
	rule := detect.Rule{ID: "newtls", Severity: detect.SeverityLow, Category: detect.CategoryIdentity, Description: "d",
		Kind: detect.RuleNewNetwork, Params: detect.Params{Signals: []detect.Kind{detect.KindHandshake}, Learn: "fingerprint",
			Learning: detect.Duration(time.Hour), MinPeers: 2}, Evidence: []string{"fingerprint", "known_fingerprints", "baseline"}}
	hs := func(dev, src, fp string, at time.Duration) detect.Signal {
		return detect.Signal{Kind: detect.KindHandshake, At: t0.Add(at), Device: dev, Model: "m", Source: src, Fingerprint: fp}
	}
	learned := []detect.Signal{hs("a", "10.0.1.5", "fp-m", 0), hs("b", "10.0.2.5", "fp-m", 0),
		hs("a", "10.0.1.5", "fp-m", 2*time.Hour), hs("b", "10.0.2.5", "fp-m", 2*time.Hour)}
	cases := []struct {
		name     string
		next     detect.Signal
		baseline string // "" = no alert
	}{
		{"the same stack from a new network", hs("a", "198.51.100.4", "fp-m", 3*time.Hour), ""},
		{"another stack", hs("a", "10.0.1.5", "fp-x", 3*time.Hour), "device"},
		{"no fingerprint", hs("a", "10.0.1.5", "", 3*time.Hour), ""},
		{"a new device with its model's stack", hs("c", "10.0.3.5", "fp-m", 3*time.Hour), ""},
		{"a new device with another stack", hs("c", "10.0.3.5", "fp-x", 3*time.Hour), "model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(mustEngine(t, rule), append(learned, c.next))
			if c.baseline == "" {
				if len(got) != 0 {
					t.Fatalf("unexpected alert %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Evidence["baseline"] != c.baseline || got[0].Evidence["fingerprint"] != "fp-x" ||
				got[0].Evidence["known_fingerprints"] != "fp-m" {
				t.Fatalf("got %+v, want one alert naming fp-x against fp-m with baseline %s", got, c.baseline)
			}
		})
	}
}

func TestNewNetwork(t *testing.T) {
	rule := detect.Rule{ID: "newnet", Severity: detect.SeverityHigh, Category: detect.CategoryIdentity, Description: "d",
		Kind: detect.RuleNewNetwork, Params: detect.Params{Signals: []detect.Kind{detect.KindAccepted}, Learning: detect.Duration(time.Hour), MinPeers: 2},
		Evidence: []string{"network", "baseline", "known_networks"}}
	acc := func(dev, model, src string, at time.Duration) detect.Signal {
		return detect.Signal{Kind: detect.KindAccepted, At: t0.Add(at), Device: dev, Model: model, Source: src}
	}
	learned := []detect.Signal{
		acc("a", "m", "10.0.1.5", 0), acc("b", "m", "10.0.2.5", 0),
		acc("a", "m", "10.0.3.5", 30*time.Minute), // still learning: a second network of a
		acc("a", "m", "10.0.1.5", 2*time.Hour), acc("b", "m", "10.0.2.5", 2*time.Hour),
	}
	cases := []struct {
		name     string
		next     detect.Signal
		baseline string // "" = no alert
	}{
		{"a learned network", acc("a", "m", "10.0.3.77", 3*time.Hour), ""},
		{"same /24", acc("b", "m", "10.0.2.200", 3*time.Hour), ""},
		{"a new network", acc("a", "m", "198.51.100.4", 3*time.Hour), "device"},
		{"IPv6 /64", acc("a", "m", "2001:db8::1", 3*time.Hour), "device"},
		{"a new device in a peer's network", acc("c", "m", "10.0.2.9", 3*time.Hour), ""},
		{"a new device from a network no peer uses", acc("c", "m", "192.0.2.9", 3*time.Hour), "model"},
		{"a new device of another model learns first", acc("d", "other", "192.0.2.9", 3*time.Hour), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(mustEngine(t, rule), append(learned, c.next))
			if c.baseline == "" {
				if len(got) != 0 {
					t.Fatalf("unexpected alert %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].Device != c.next.Device || got[0].Evidence["baseline"] != c.baseline || got[0].Source != c.next.Source {
				t.Fatalf("got %+v, want one alert on %s with baseline %s", got, c.next.Device, c.baseline)
			}
		})
	}
}

func TestValueSeries(t *testing.T) {
	win := detect.Duration(time.Minute)
	rules := map[string]detect.Rule{
		"jump": {ID: "jump", Severity: detect.SeverityMedium, Category: detect.CategoryClinical, Description: "d", Kind: detect.RuleValueJump,
			Params: detect.Params{Codes: []string{"hr"}, MaxRatePerSecond: 5, Count: 3, Window: win}, Evidence: []string{"count", "code"}},
		"flat": {ID: "flat", Severity: detect.SeverityLow, Category: detect.CategoryClinical, Description: "d", Kind: detect.RuleFlatLine,
			Params: detect.Params{Codes: []string{"hr"}, Count: 5, Window: win}, Evidence: []string{"count"}},
		"range": {ID: "range", Severity: detect.SeverityMedium, Category: detect.CategoryClinical, Description: "d", Kind: detect.RuleOutOfRange,
			Params: detect.Params{Codes: []string{"hr"}, Min: fl(30), Max: fl(220), Count: 3, Window: win}, Evidence: []string{"count"}},
	}
	series := func(step time.Duration, code string, vs ...float64) []detect.Signal {
		var out []detect.Signal
		for i, v := range vs {
			out = append(out, detect.Signal{Kind: detect.KindValue, At: t0.Add(time.Duration(i) * step), Device: "d1", Code: code, Value: v})
		}
		return out
	}
	cases := []struct {
		name, rule string
		sigs       []detect.Signal
		alerts     int
	}{
		{"jumps", "jump", series(time.Second, "hr", 60, 200, 60, 200), 1},
		{"slow change", "jump", series(10*time.Second, "hr", 60, 80, 100, 120, 140), 0},
		{"another code", "jump", series(time.Second, "spo2", 60, 200, 60, 200), 0},
		{"flat over the window", "flat", series(20*time.Second, "hr", 70, 70, 70, 70, 70), 1},
		{"flat but too short", "flat", series(time.Second, "hr", 70, 70, 70, 70, 70), 0},
		{"not flat", "flat", series(20*time.Second, "hr", 70, 71, 70, 71, 70), 0},
		{"out of range burst", "range", series(time.Second, "hr", 10, 250, 240), 1},
		{"one out of range", "range", series(time.Second, "hr", 10, 80, 80), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(mustEngine(t, rules[c.rule]), c.sigs)
			if len(got) != c.alerts {
				t.Fatalf("got %d alerts, want %d", len(got), c.alerts)
			}
			for _, a := range got {
				b, _ := json.Marshal(a)
				for _, v := range []string{"200", "250", "240"} {
					if strings.Contains(string(b), v) {
						t.Fatalf("the alert carries a value (%s): %s", v, b)
					}
				}
			}
		})
	}
}

func TestSignalLogValueHasNoReading(t *testing.T) {
	s := detect.Signal{Kind: detect.KindValue, Device: "d1", Code: "8867-4", Value: 187.5}
	if v := s.LogValue().String(); strings.Contains(v, "187") || strings.Contains(v, "8867") {
		t.Fatalf("the log value carries the reading: %s", v)
	}
	if b, _ := json.Marshal(s); strings.Contains(string(b), "187") {
		t.Fatalf("the JSON carries the reading: %s", b)
	}
}
