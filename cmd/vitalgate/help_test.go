package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/registry"
)

// TestEveryCommandHasHelp: every subcommand answers --help with a usage text and exit 0,
// and an unknown command is a usage error.
func TestEveryCommandHasHelp(t *testing.T) {
	subs := map[string][]string{"device": {"add", "assign", "revoke", "list", "reissue", "import"}, "client": {"add", "list", "disable", "rotate-secret", "set-patients", "set-scopes"}, "keys": {"rotate"},
		"audit": {"verify", "checkpoint", "export", "archive"}, "update": {"keys", "publish", "sign", "rotate-root", "status", "root", "rollout", "window"},
		"posture": {"sbom", "advisories", "kev", "vex"}}
	for name := range commands {
		cases := [][]string{{name, "--help"}}
		for _, sub := range subs[name] {
			cases = append(cases, []string{name, sub, "--help"})
		}
		for _, args := range cases {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errOut bytes.Buffer
				m := &Main{Stdout: &out, Stderr: &errOut}
				if code := m.Run(context.Background(), args); code != 0 {
					t.Fatalf("exit %d: %s", code, errOut.String())
				}
				if !strings.Contains(errOut.String(), "Usage") && !strings.Contains(errOut.String(), "usage") {
					t.Fatalf("no usage text: %q", errOut.String())
				}
				if out.Len() != 0 {
					t.Fatalf("help wrote to standard output: %q", out.String())
				}
			})
		}
	}
	var errOut bytes.Buffer
	if code := (&Main{Stdout: &bytes.Buffer{}, Stderr: &errOut}).Run(context.Background(), []string{"frobnicate"}); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}

// update rewrites the golden files: go test ./cmd/vitalgate -run Golden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenClock is the clock of the golden runs, so that dates in tables are stable.
var goldenClock = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

// golden compares got with testdata/golden/NAME.txt (or rewrites it with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path) // #nosec G304 -- test data
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/vitalgate -run Golden -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test ./cmd/vitalgate -run Golden -update rewrites it)\n--- got\n%s\n--- want\n%s", name, path, got, want)
	}
}

// runAt runs the command line at the golden clock.
func runAt(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Now: func() time.Time { return goldenClock }}
	code := m.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// TestGoldenMessages: help texts show real argument names, mistakes get a message naming
// the fix, and a wrong data dir is named as not being one; exit codes and both outputs are
// compared with golden files.
func TestGoldenMessages(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	other := filepath.Join(tmp, "other")
	file := filepath.Join(tmp, "file")
	for _, d := range []string{empty, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
	}{
		{"usage", []string{"--help"}},
		{"unknown-command", []string{"frobnicate"}},
		{"device-help", []string{"device", "--help"}},
		{"device-unknown-subcommand", []string{"device", "frob"}},
		{"audit-verify-help", []string{"audit", "verify", "--help"}},
		{"device-reissue-help", []string{"device", "reissue", "--help"}},
		{"device-import-help", []string{"device", "import", "--help"}},
		{"duration-without-unit", []string{"demo", "--duration", "20"}},
		{"addr-port-only", []string{"serve", "--addr", "8444", "--data", empty}},
		{"datadir-tmp-like", []string{"device", "list", "--data", other}},
		{"datadir-empty", []string{"device", "list", "--data", empty}},
		{"datadir-file", []string{"device", "list", "--data", file}},
		{"datadir-missing", []string{"device", "list", "--data", filepath.Join(tmp, "nope")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runAt(tt.args...)
			got := fmt.Sprintf("$ vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(tt.args, " "), code, out, errOut)
			golden(t, tt.name, strings.ReplaceAll(got, tmp, "TMP"))
		})
	}
}

// TestServeHelpNamesArguments: serve --help shows -data DIR, not a back-quoted word.
func TestServeHelpNamesArguments(t *testing.T) {
	_, _, errOut := runAt("serve", "--help")
	if !strings.Contains(errOut, "  -data DIR\n") || strings.Contains(errOut, "-data vitalgate") {
		t.Fatalf("serve --help does not name DIR:\n%s", errOut)
	}
}

// TestGoldenOperatorSession: init prints the admin secret alone on standard output (its
// labels on standard error); devices and clients are listed as tables; device add on a
// taken id names reissue; reissue prints a new secret alone; patient ids no Patient has are
// warned about (refused with --strict); an export that finds nothing says why.
func TestGoldenOperatorSession(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	code, out, errOut := runAt("init", "--data", dir)
	if code != 0 || len(strings.TrimSpace(out)) != 43 || strings.Count(out, "\n") != 1 {
		t.Fatalf("init: exit %d, stdout %q (want the secret alone), stderr %s", code, out, errOut)
	}
	transcript := fmt.Sprintf("$ vitalgate init --data DIR\nexit %d\n--- stderr\n%s", code, errOut)
	secretSteps := map[int]bool{}
	steps := [][]string{
		{"device", "add", "--data", dir, "--id", "monitor-0001", "--patient", "patient-0001", "--model", "VM-100"},
		{"device", "add", "--data", dir, "--id", "monitor-0001", "--patient", "patient-0001"},
		{"device", "add", "--data", dir, "--id", "pump-7", "--patient", "patient-0002", "--strict"},
		{"device", "add", "--data", dir, "--id", "scale-3", "--patient", "patient-0003", "--expires", "1s"},
		{"device", "reissue", "--data", dir, "--id", "monitor-0001", "--expires", "2h"},
		{"device", "reissue", "--data", dir, "--id", "nobody"},
		{"device", "revoke", "--data", dir, "--id", "scale-3"},
		{"device", "list", "--data", dir},
		{"device", "reissue", "--data", dir, "--id", "scale-3"},
		{"device", "assign", "--data", dir, "--id", "monitor-0001", "--patient", "patient-0009", "--strict"},
		{"device", "assign", "--data", dir, "--id", "monitor-0001", "--patient", "patient-0009"},
		{"device", "list", "--data", dir},
		{"client", "add", "--data", dir, "--id", "ehr-1", "--role", "ehr-system"},
		{"client", "list", "--data", dir},
		{"export", "--data", dir, "--patient", "patient-9999"},
	}
	for i, args := range steps {
		code, out, errOut := runAt(args...)
		if s := strings.TrimSpace(out); (len(s) == 43 && !strings.ContainsAny(s, " \n")) || secretSteps[i] {
			out = "SECRET\n" // a new random secret, alone on standard output
		}
		transcript += fmt.Sprintf("$ vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, errOut)
	}
	golden(t, "operator-session", strings.ReplaceAll(transcript, dir, "DIR"))
}

// TestGoldenDeviceTable: the device table shows each state an operator meets (enrolled with
// a certificate and last activity, awaiting enrollment, expired secret, revoked, patient not
// readable), and each device's installed version and last update state.
func TestGoldenDeviceTable(t *testing.T) {
	now := goldenClock
	active := vitalgate.DeviceActive
	rows := []registry.DeviceRow{
		{Device: vitalgate.Device{ID: "monitor-0001", Model: "VM-100", Status: active}, PatientID: "patient-0001",
			Cert: vitalgate.Certificate{Serial: "0a", NotAfter: now.Add(90 * 24 * time.Hour)}, LastSeen: now.Add(-3 * time.Second)},
		{Device: vitalgate.Device{ID: "pump-7", Status: active, EnrollSecretHash: "h", EnrollExpiresAt: now.Add(time.Hour)}, PatientID: "patient-0002"},
		{Device: vitalgate.Device{ID: "pump-8", Status: active, EnrollSecretHash: "h", EnrollExpiresAt: now.Add(-time.Hour)}, PatientID: "patient-0003"},
		{Device: vitalgate.Device{ID: "scale-3", Status: vitalgate.DeviceRevoked}, PatientID: "patient-0004",
			Cert: vitalgate.Certificate{Serial: "0b", NotAfter: now.Add(time.Hour), RevokedAt: now.Add(-time.Minute)}, LastSeen: now.Add(-time.Hour)},
		{Device: vitalgate.Device{ID: "old-1", Status: active}, PatientErr: vitalgate.Errorf(vitalgate.EUNAVAILABLE, "key kek-2 missing"),
			Cert: vitalgate.Certificate{Serial: "0c", NotAfter: now.Add(-time.Hour)}},
	}
	sw := softwareStates{ // what POST /updates/report recorded
		"monitor-0001": {Version: "2.0.0", Rollout: "2.0.0", State: vitalgate.UpdatePassed},
		"pump-7":       {Rollout: "2.0.0", State: vitalgate.UpdateAssigned},
		"scale-3":      {Version: "1.4.1", Rollout: "1.5.0", State: vitalgate.UpdateRolledBack, Reason: "self-test failed"},
	}
	var out bytes.Buffer
	if err := printDeviceTable(&out, rows, sw, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "device-table", out.String())
}

// TestDemoStatusWithoutTerminal: when standard error is not a terminal the demo writes its
// status as whole lines, one every statusEvery (no carriage-return floods), and the fleet
// sizes read "1 device", not "1 devices".
func TestDemoStatusWithoutTerminal(t *testing.T) {
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut}
	if code := m.Run(context.Background(), []string{"demo", "--duration", "8s", "--devices", "3"}); code != 0 {
		t.Fatalf("demo: exit %d\n%s", code, errOut.String())
	}
	log := errOut.String()
	if strings.Contains(log, "\r") {
		t.Fatalf("the demo wrote carriage returns to a non-terminal:\n%q", log)
	}
	status := strings.Count(log, "FHIR: ")
	// 8 s at one line per 5 s: the first, one at 5 s, and the final line.
	if status < 2 || status > 3 {
		t.Errorf("%d status lines in 8 s, want 2 or 3:\n%s", status, log)
	}
	if strings.Contains(log, "1 devices") || !strings.Contains(log, "HL7: 1 device,") {
		t.Errorf("device counts are not singular for one device:\n%s", log)
	}
}

// TestGoldenModelIDevID: a model takes its maker's IDevID CA file, refuses a file that
// holds a device certificate or a key, and turns IDevID enrollment off again.
func TestGoldenModelIDevID(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	maker, err := pki.NewCA("Acme IDevID CA", goldenClock.Add(-time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, keyPEM, err := maker.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"maker-ca.crt": caPEM, "maker-ca.key": keyPEM}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	steps := [][]string{
		{"model", "add", "--data", dir, "--id", "PX-100", "--binding", "assigned", "--idevid-ca", filepath.Join(tmp, "maker-ca.key")},
		{"model", "add", "--data", dir, "--id", "PX-100", "--binding", "assigned", "--idevid-ca", filepath.Join(tmp, "maker-ca.crt")},
		{"model", "list", "--data", dir},
		{"model", "set", "--data", dir, "--id", "PX-100"},
		{"model", "set", "--data", dir, "--id", "PX-100", "--no-idevid"},
		{"model", "list", "--data", dir},
	}
	var transcript string
	for _, args := range steps {
		code, out, errOut := runAt(args...)
		transcript += fmt.Sprintf("$ vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, errOut)
	}
	golden(t, "model-idevid", strings.ReplaceAll(strings.ReplaceAll(transcript, dir, "DIR"), tmp, "TMP"))
}

// TestGoldenModelSiteBinding: a site settles how its own devices of a model bind; the other
// sites keep the model's binding; the site's setting is reset; mistakes are named.
func TestGoldenModelSiteBinding(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	steps := [][]string{
		{"site", "add", "--data", dir, "--id", "north", "--name", "North Hospital"},
		{"model", "add", "--data", dir, "--id", "gluco", "--binding", "assigned"},
		{"model", "set", "--data", dir, "--id", "gluco", "--site", "north", "--binding", "identified"},
		{"model", "set", "--data", dir, "--id", "gluco", "--site", "south", "--binding", "identified"},
		{"model", "set", "--data", dir, "--id", "gluco", "--site", "north"},
		{"model", "list", "--data", dir},
		{"model", "set", "--data", dir, "--id", "gluco", "--site", "north", "--reset-site"},
		{"model", "set", "--data", dir, "--id", "gluco", "--site", "north", "--reset-site"},
		{"model", "list", "--data", dir},
	}
	var transcript string
	for _, args := range steps {
		code, out, errOut := runAt(args...)
		transcript += fmt.Sprintf("$ vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(args, " "), code, out, errOut)
	}
	golden(t, "model-site-binding", strings.ReplaceAll(transcript, dir, "DIR"))
}
