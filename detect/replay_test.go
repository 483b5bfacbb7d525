package detect_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/detect"
)

// TestLabelledReplay replays a compressed day and a bit of simulated traffic (the default
// rules learn networks for 24 h) through the engine on event time, with attacks mixed in
// after the learning period: every attack is detected by its rule within 60 s of simulated
// time, and the normal traffic raises no alert. Seed 1 is the one the shipped rules were
// tuned on; seeds 7 and 42 were not.
func TestLabelledReplay(t *testing.T) {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	attacks := detect.StandardAttacks(25 * time.Hour)
	expect := map[string]string{ // attack: the rule that must catch it
		detect.AttackCredentialStuffing: "credential-stuffing-token",
		detect.AttackCredentialStuffEST: "credential-stuffing-est",
		detect.AttackStolenCertificate:  "device-new-network",
		detect.AttackRogueNewDevice:     "device-new-network",
		detect.AttackValueFlood:         "heart-rate-implausible-jumps",
		detect.AttackSlowDrift:          "heart-rate-out-of-range-burst",
		detect.AttackScopeProbing:       "scope-probing",
		detect.AttackPatientEnumeration: "patient-enumeration",
		detect.AttackImpersonation:      "device-impersonation",
		detect.AttackMessageFlood:       "message-flood",
		detect.AttackClockAhead:         "device-clock-ahead",
		detect.AttackReplay:             "replay-burst",
	}
	for _, seed := range []uint64{1, 7, 42} {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			sc := detect.Scenario{Seed: seed, Start: start, Duration: 27*time.Hour + 30*time.Minute, Interval: 5 * time.Minute,
				Devices: 100, Models: 3, Attacks: attacks}
			eng, err := detect.NewEngine(detect.DefaultRules())
			if err != nil {
				t.Fatal(err)
			}
			detected := map[string]time.Duration{}
			for _, l := range detect.Generate(sc) {
				for _, a := range eng.Observe(l.Signal) {
					if l.Attack == "" {
						t.Errorf("false alarm on normal traffic: rule %s on device %q client %q source %q at %s",
							a.Rule, a.Device, a.Client, a.Source, a.To.Sub(start))
						continue
					}
					if a.Rule != expect[l.Attack] {
						continue // another rule also fired on the attack: fine
					}
					if _, ok := detected[l.Attack]; !ok {
						for _, at := range attacks {
							if at.Name == l.Attack {
								detected[l.Attack] = a.To.Sub(start.Add(at.At))
							}
						}
					}
				}
			}
			for _, at := range attacks {
				delay, ok := detected[at.Name]
				switch {
				case !ok:
					t.Errorf("attack %s was not detected by %s", at.Name, expect[at.Name])
				case delay > 60*time.Second:
					t.Errorf("attack %s detected after %s of simulated time, more than 60 s", at.Name, delay)
				}
			}
		})
	}
}
