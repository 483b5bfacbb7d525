package detect

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/vitalgate/vitalgate"
)

// AttackNames are the attacks the scenario generator knows.
var AttackNames = []string{AttackCredentialStuffing, AttackCredentialStuffEST, AttackStolenCertificate, AttackRogueNewDevice,
	AttackValueFlood, AttackSlowDrift, AttackScopeProbing, AttackPatientEnumeration, AttackImpersonation,
	AttackMessageFlood, AttackClockAhead, AttackReplay}

// ScenarioFile is the JSON form of a Scenario (`vitalgate simulate --scenario FILE`):
//
//	{"seed": 7, "devices": 100, "models": 3, "duration": "27h", "interval": "5m",
//	 "attacks": [{"name": "credential-stuffing-token", "at": "25h"},
//	             {"name": "stolen-certificate", "at": "25h20m", "device": "sim-007"}]}
type ScenarioFile struct {
	Seed     uint64   `json:"seed"`
	Devices  int      `json:"devices"`
	Models   int      `json:"models"`
	Duration Duration `json:"duration"`
	Interval Duration `json:"interval"`
	// Start is the simulated start (default 2026-01-01T00:00:00Z).
	Start   time.Time `json:"start,omitempty"`
	Attacks []struct {
		Name   string   `json:"name"`
		At     Duration `json:"at"`
		Device string   `json:"device,omitempty"`
	} `json:"attacks"`
}

// maxScenarioReadings bounds the messages a scenario may generate (devices × duration /
// interval), so that a replay stays within memory.
const maxScenarioReadings = 5_000_000

// ParseScenario reads and checks a scenario file. Errors: EINVALID naming the field.
func ParseScenario(b []byte) (Scenario, error) {
	var f ScenarioFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Scenario{}, vitalgate.Errorf(vitalgate.EINVALID, "the scenario file is not valid JSON of the scenario format: %v", err)
	}
	bad := func(field, format string, args ...any) (Scenario, error) {
		return Scenario{}, vitalgate.FieldErrorf(vitalgate.EINVALID, field, format, args...)
	}
	d, iv := time.Duration(f.Duration), time.Duration(f.Interval)
	switch {
	case f.Devices < 1 || f.Devices > 10000:
		return bad("devices", "devices must be between 1 and 10000")
	case f.Models < 0 || f.Models > f.Devices:
		return bad("models", "models must be between 0 and the number of devices")
	case d <= 0 || d > 31*24*time.Hour:
		return bad("duration", "duration must be between 1s and 744h")
	case iv < time.Second || iv > d:
		return bad("interval", "interval must be at least 1s and at most the duration")
	case float64(f.Devices)*float64(d)/float64(iv) > maxScenarioReadings:
		return bad("interval", "the scenario would generate more than %d messages: fewer devices, a shorter duration or a longer interval", maxScenarioReadings)
	}
	sc := Scenario{Seed: f.Seed, Start: f.Start, Duration: d, Interval: iv, Devices: f.Devices, Models: f.Models}
	if sc.Start.IsZero() {
		sc.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for i, a := range f.Attacks {
		if !slices.Contains(AttackNames, a.Name) {
			return bad("attacks", "attack %d: unknown name %q (%v)", i, a.Name, AttackNames)
		}
		if time.Duration(a.At) < 0 || time.Duration(a.At) >= d {
			return bad("attacks", "attack %d: at must be within the duration", i)
		}
		if attackByDevice(a.Name) && a.Device == "" {
			return bad("attacks", "attack %d (%s) names the device it uses", i, a.Name)
		}
		sc.Attacks = append(sc.Attacks, Attack{Name: a.Name, At: time.Duration(a.At), Device: a.Device})
	}
	return sc, nil
}

// AttackResult is whether and how fast one attack was detected, in simulated time.
type AttackResult struct {
	Name     string        `json:"name"`
	At       time.Duration `json:"at_ns"`
	Detected bool          `json:"detected"`
	Rule     string        `json:"rule,omitempty"`     // the first rule that fired on it
	Delay    time.Duration `json:"delay_ns,omitempty"` // from the attack's start to that alert's evidence end
}

// ReplayResult is the outcome of a replay.
type ReplayResult struct {
	Signals     int            `json:"signals"`
	DeviceHours float64        `json:"device_hours"`
	Attacks     []AttackResult `json:"attacks"`
	// FalseAlarms are alerts raised on normal traffic, by rule.
	FalseAlarms map[string]int `json:"false_alarms"`
	// FalseAlarmsPer1000DeviceHours is the false-alarm rate.
	FalseAlarmsPer1000DeviceHours float64 `json:"false_alarms_per_1000_device_hours"`
}

// Replay generates sc and evaluates it on simulated time with rules: for every attack, the
// first alert raised on its signals; every alert raised on normal traffic is a false alarm.
func Replay(rules Rules, sc Scenario) (ReplayResult, error) {
	eng, err := NewEngine(rules)
	if err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{FalseAlarms: map[string]int{}, DeviceHours: float64(sc.Devices) * sc.Duration.Hours()}
	first := map[string]vitalgate.Alert{}
	sigs := Generate(sc)
	res.Signals = len(sigs)
	for _, l := range sigs {
		for _, a := range eng.Observe(l.Signal) {
			if l.Attack == "" {
				res.FalseAlarms[a.Rule]++
				continue
			}
			if _, ok := first[l.Attack]; !ok {
				first[l.Attack] = a
			}
		}
	}
	n := 0
	for _, c := range res.FalseAlarms {
		n += c
	}
	if res.DeviceHours > 0 {
		res.FalseAlarmsPer1000DeviceHours = float64(n) * 1000 / res.DeviceHours
	}
	for _, at := range sc.Attacks {
		r := AttackResult{Name: at.Name, At: at.At}
		if a, ok := first[at.Name]; ok {
			r.Detected, r.Rule, r.Delay = true, a.Rule, a.To.Sub(sc.Start.Add(at.At))
		}
		res.Attacks = append(res.Attacks, r)
	}
	sort.SliceStable(res.Attacks, func(i, j int) bool { return res.Attacks[i].At < res.Attacks[j].At })
	return res, nil
}
