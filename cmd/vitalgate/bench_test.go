package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/bench"
	"github.com/vitalgate/vitalgate/detect"
)

// TestMain lets the test binary stand in for vitalgate as the connections scenario's client
// process, which the scenario starts as os.Executable() with "bench --idle-clients DIR ...".
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "bench" && slices.Contains(os.Args, "--idle-clients") {
		child := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
		if err := child.runBench(context.Background(), os.Args[2:]); err != nil {
			os.Stderr.WriteString("vitalgate bench: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunBenchFlags checks that bad flags are refused before anything starts.
func TestRunBenchFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the error; "" means errUsage
	}{
		{"unknown scenario", []string{"--scenario", "nope"}, `unknown scenario "nope"`},
		{"short duration", []string{"--duration", "10ms"}, "--duration"},
		{"no devices", []string{"--devices", "0"}, "--devices"},
		{"too few observations", []string{"--observations", "100"}, "--observations"},
		{"tiny update release", []string{"--scenario", "update", "--update-size", "10"}, "--update-size"},
		{"positional argument", []string{"extra"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			m := &Main{Stdout: &bytes.Buffer{}, Stderr: &stderr}
			err := m.runBench(context.Background(), tt.args)
			switch {
			case err == nil:
				t.Fatal("no error")
			case tt.want == "" && !errors.Is(err, errUsage):
				t.Errorf("err = %v, want usage", err)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// benchResults reads the rows of results.json.
func benchResults(t *testing.T, dir string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"results.csv", "results.md", "ratios.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	return rep.Rows
}

// TestRunBenchAudit runs the audit scenarios on a small log: verification must succeed and
// every row must be reported (no timing is asserted).
func TestRunBenchAudit(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	err := m.runBench(context.Background(), []string{"--scenario", "audit-append,audit-verify", "--duration", "1s", "--warmup", "0s",
		"--devices", "4", "--audit-entries", "3000", "--out", out})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rows := benchResults(t, out)
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4: %v", len(rows), rows)
	}
	for _, r := range rows {
		if v, _ := r["value"].(float64); v <= 0 {
			t.Errorf("row %v has no value", r)
		}
	}
	if _, ok := rows[3]["ratio"].(float64); !ok {
		t.Errorf("audit-verify MB/s has no ratio to SHA-256: %v", rows[3])
	}
	if !strings.Contains(stdout.String(), "audit-verify") {
		t.Errorf("table lacks the scenario:\n%s", stdout.String())
	}
}

// TestRunBenchServer runs the server scenarios briefly against the real server with two
// devices: every call must succeed and every row with a baseline must have a ratio.
func TestRunBenchServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and enrolls devices")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	err := m.runBench(context.Background(), []string{"--scenario", "ingest,ingest-batch,search,hl7,connections", "--duration", "1s", "--warmup", "0s",
		"--devices", "2", "--search-clients", "2", "--observations", "3000", "--connections", "20", "--out", out})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	seen := map[string]bool{}
	for _, r := range benchResults(t, out) {
		seen[r["scenario"].(string)] = true
		if note, _ := r["note"].(string); strings.Contains(note, "failed") {
			t.Errorf("%s %s: %s", r["scenario"], r["metric"], note)
		}
		if _, has := r["baseline"]; has {
			if _, ok := r["ratio"].(float64); !ok {
				t.Errorf("%s %s has a baseline but no ratio", r["scenario"], r["metric"])
			}
		}
	}
	for _, s := range []string{"ingest", "ingest-batch", "search", "hl7", "connections"} {
		if !seen[s] {
			t.Errorf("no row for %s", s)
		}
	}
}

// TestRunBenchUpdate runs the update scenario with three devices and a small release: every
// device must install it (counted in the store), and each figure must have a value and,
// where it has a baseline, a ratio (no timing is asserted).
func TestRunBenchUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and enrolls devices")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	err := m.runBench(context.Background(), []string{"--scenario", "update", "--devices", "3", "--update-size", "300000", "--out", out})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rows := benchResults(t, out)
	want := map[string]string{ // metric prefix -> unit
		"time from the rollout's start to 90% of 3 devices installed":  "s",
		"time from the rollout's start to 100% of 3 devices installed": "s",
		"target bytes/s served to 3 concurrent devices":                "MB/s",
		"devices installed, counted in the store":                      "devices",
	}
	for _, r := range rows {
		metric, _ := r["metric"].(string)
		if r["scenario"] != "update" {
			t.Errorf("row of scenario %v", r["scenario"])
			continue
		}
		if note, _ := r["note"].(string); strings.Contains(note, "failed, first") {
			t.Errorf("%s: %s", metric, note)
		}
		v, _ := r["value"].(float64)
		for prefix, unit := range want {
			if !strings.HasPrefix(metric, prefix) {
				continue
			}
			delete(want, prefix)
			if r["unit"] != unit {
				t.Errorf("%s: unit %v, want %s", metric, r["unit"], unit)
			}
			switch ratio, hasRatio := r["ratio"].(float64); {
			case unit == "devices" && v != 3:
				t.Errorf("%s = %v, want all 3 devices", metric, v)
			case unit != "devices" && v <= 0:
				t.Errorf("%s has no value: %v", metric, r)
			case unit != "devices" && (!hasRatio || ratio <= 0):
				t.Errorf("%s has no ratio to its baseline: %v", metric, r)
			}
		}
	}
	for prefix := range want {
		t.Errorf("no row %q in %v", prefix, rows)
	}
}

// TestRunBenchExport runs the export scenario on a small store: both rows have a value and
// a ratio (the scenario itself checks that the file holds every stored observation).
func TestRunBenchExport(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	if err := m.runBench(context.Background(), []string{"--scenario", "export", "--observations", "3000", "--out", out}); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	rows := benchResults(t, out)
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2: %v", len(rows), rows)
	}
	for _, r := range rows {
		if r["scenario"] != "export" {
			t.Errorf("row %v is not the export scenario's", r)
		}
		if v, _ := r["value"].(float64); v <= 0 {
			t.Errorf("row %v has no value", r)
		}
		if _, ok := r["ratio"].(float64); !ok {
			t.Errorf("row %v has no ratio", r)
		}
	}
}

// TestRunBenchDetect runs the detect scenario with two devices and 1 s loads: every attack
// has its detected row (all replays) and a delay within 60 s of simulated time, the
// false-alarm rate is at most 1 per 1000 device-hours, the ingest row compares detection on
// with off by a ratio, and the quarantine delay is reported (no wall-clock timing is
// asserted).
func TestRunBenchDetect(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and enrolls devices")
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	m := &Main{Stdout: &stdout, Stderr: &stderr}
	err := m.runBench(context.Background(), []string{"--scenario", "detect", "--duration", "1s", "--warmup", "0s", "--devices", "2", "--out", out})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	detected, delays, falseAlarms, ingest, quarantine := map[string]float64{}, map[string]bool{}, false, false, false
	for _, r := range benchResults(t, out) {
		metric, _ := r["metric"].(string)
		v, _ := r["value"].(float64)
		if r["scenario"] != "detect" {
			t.Errorf("row of scenario %v", r["scenario"])
		}
		switch {
		case strings.HasPrefix(metric, "attacks detected: "):
			detected[strings.TrimPrefix(metric, "attacks detected: ")] = v
		case strings.HasPrefix(metric, "slowest detection (simulated time): "):
			delays[strings.TrimPrefix(metric, "slowest detection (simulated time): ")] = v >= 0 && v <= 60
		case metric == "false alarms on normal traffic":
			falseAlarms = r["unit"] == "per 1000 device-hours" && v >= 0 && v <= 1
		case strings.HasPrefix(metric, "quarantine to the first refused request"):
			quarantine = r["unit"] == "ms" && v > 0
		case strings.HasPrefix(metric, "stored obs/s with detection on"):
			ratio, ok := r["ratio"].(float64)
			ingest = ok && ratio > 0 && v > 0 && r["baseline_name"] == "same run, detection off"
		}
	}
	for _, name := range detect.AttackNames {
		if detected[name] != float64(len(bench.DetectSeeds)) || !delays[name] {
			t.Errorf("attack %s: detected in %v of %d replays, delay within 60 s: %v", name, detected[name], len(bench.DetectSeeds), delays[name])
		}
	}
	if !falseAlarms {
		t.Error("no false-alarm row of at most 1 per 1000 device-hours")
	}
	if !ingest {
		t.Error("no ingest row with detection on against off, with a ratio")
	}
	if !quarantine {
		t.Error("no row of the delay from a quarantine to the device's first refused request")
	}
}
