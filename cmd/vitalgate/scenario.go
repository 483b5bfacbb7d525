package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/vitalgate/vitalgate/detect"
)

// simulateScenario replays a labelled scenario file through the detection engine on
// simulated time (`simulate --scenario FILE`) and reports per attack whether and how fast it
// was detected, and the false alarms on the normal traffic.
func (m *Main) simulateScenario(file, rulesFile string, asJSON bool) error {
	b, err := os.ReadFile(file) // #nosec G304 -- the operator names the file
	if err != nil {
		return fmt.Errorf("--scenario: %w", err)
	}
	sc, err := detect.ParseScenario(b)
	if err != nil {
		return fmt.Errorf("--scenario %s: %w", file, err)
	}
	rules := detect.DefaultRules()
	if rulesFile != "" {
		rb, err := os.ReadFile(rulesFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return fmt.Errorf("--detect-rules: %w", err)
		}
		if rules, err = detect.ParseRules(rb); err != nil {
			return fmt.Errorf("--detect-rules %s: %w", rulesFile, err)
		}
	}
	res, err := detect.Replay(rules, sc)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(m.Stdout).Encode(res)
	}
	fmt.Fprintf(m.Stderr, "Replayed %d signals of %d devices over %s of simulated time (%.0f device-hours), rules version %d.\n",
		res.Signals, sc.Devices, sc.Duration, res.DeviceHours, rules.Version)
	tw := tabwriter.NewWriter(m.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTACK\tAT\tDETECTED\tRULE\tDELAY")
	for _, a := range res.Attacks {
		det, rule, delay := "no", "-", "-"
		if a.Detected {
			det, rule, delay = "yes", a.Rule, a.Delay.Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.At, det, rule, delay)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	n := 0
	for _, c := range res.FalseAlarms {
		n += c
	}
	fmt.Fprintf(m.Stdout, "false alarms: %d (%.2f per 1000 device-hours)\n", n, res.FalseAlarmsPer1000DeviceHours)
	for rule, c := range res.FalseAlarms {
		fmt.Fprintf(m.Stdout, "  %s: %d\n", rule, c)
	}
	return nil
}
