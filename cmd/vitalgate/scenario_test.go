package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/detect"
)

// TestSimulateScenario: `simulate --scenario FILE` replays the CI-sized labelled scenario
// (a seed the rules were not tuned on) and reports each attack detected within 60 s of
// simulated time and no false alarm; a bad file is refused naming the field.
func TestSimulateScenario(t *testing.T) {
	file := filepath.Join("..", "..", "detect", "testdata", "scenario-ci.json")
	code, out, errOut := runCmd(t, "simulate", "--scenario", file, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res detect.ReplayResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Attacks) != len(detect.AttackNames) || len(res.FalseAlarms) != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, a := range res.Attacks {
		if !a.Detected || a.Delay > 60*time.Second {
			t.Errorf("attack %s: detected %v after %s", a.Name, a.Detected, a.Delay)
		}
	}
	if code, out, _ := runCmd(t, "simulate", "--scenario", file); code != 0 || !strings.Contains(out, "false alarms: 0") {
		t.Errorf("text output: %d %s", code, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"seed":1,"devices":0,"duration":"1h","interval":"1m","attacks":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCmd(t, "simulate", "--scenario", bad); code == 0 || !strings.Contains(errOut, "devices must be") {
		t.Errorf("a bad scenario: %d %s", code, errOut)
	}
}
