package main

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/rollout"
)

// postureData is the posture package's test data: real OSV records and KEV entries, SBOMs
// of real components (testdata/README.md there names the sources and licences).
var postureData = filepath.Join("..", "..", "posture", "testdata")

// osvZip writes the OSV records of postureData into a ZIP archive, as osv.dev serves an
// ecosystem's records (all.zip).
func osvZip(t *testing.T, path string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(postureData, "osv", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no OSV records: %v", err)
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		data, err := os.ReadFile(f) // #nosec G304 -- test data
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(filepath.Base(f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reportVersion records that a device runs version, as its POST /updates/report does
// (through the rollout capability).
func reportVersion(t *testing.T, dir, device, version string, at time.Time) {
	t.Helper()
	m := &Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Now: func() time.Time { return at }}
	n, err := m.openDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	st, ok := n.store.(rollout.Store)
	if !ok {
		t.Fatalf("%T keeps no rollouts", n.store)
	}
	svc := &rollout.Service{Store: st, Now: func() time.Time { return at }}
	if err := svc.Report(context.Background(), device, rollout.Report{Version: version, State: "installed"}); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenPostureSession: an operator attaches the SBOMs of two versions of a model,
// imports the Go vulnerability database's records (from a ZIP), the KEV catalog and a VEX
// statement, and reads the posture of the model (text) and of one device (JSON) three days
// later; mistakes are refused with the fix named.
func TestGoldenPostureSession(t *testing.T) {
	t.Setenv("USER", "operator") // the name audit entries and SBOM attachments record
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	for i := 1; i <= 3; i++ {
		if code, _, errOut := runAt("device", "add", "--data", dir, "--id", fmt.Sprintf("vm-%d", i), "--patient", "patient-1", "--model", "VM-100"); code != 0 {
			t.Fatalf("device add: %s", errOut)
		}
	}
	reportVersion(t, dir, "vm-1", "1.0.0", goldenClock.Add(-30*24*time.Hour))
	reportVersion(t, dir, "vm-2", "1.1.0", goldenClock.Add(-24*time.Hour))
	zipPath := filepath.Join(tmp, "go-osv.zip")
	osvZip(t, zipPath)
	later := goldenClock.Add(3 * 24 * time.Hour)
	steps := []struct {
		at   time.Time
		args []string
	}{
		{goldenClock, []string{"posture", "sbom", "add", "--data", dir, "--model", "VM-100", "--version", "1.0.0", filepath.Join(postureData, "sbom", "vm-100-1.0.0.cdx.json")}},
		{goldenClock, []string{"posture", "sbom", "add", "--data", dir, "--model", "VM-100", "--version", "1.1.0", filepath.Join(postureData, "sbom", "vm-100-1.1.0.cdx.json")}},
		{goldenClock, []string{"posture", "sbom", "add", "--data", dir, "--model", "VM-100", "--version", "1.2.0", filepath.Join(postureData, "kev", "known_exploited_vulnerabilities.json")}},
		{goldenClock, []string{"posture", "advisories", "import", "--data", dir, zipPath}},
		{goldenClock, []string{"posture", "kev", "import", "--data", dir, filepath.Join(postureData, "kev", "known_exploited_vulnerabilities.json")}},
		{goldenClock, []string{"posture", "vex", "import", "--data", dir, "--model", "VM-100", "--version", "1.0.0", filepath.Join(postureData, "vex", "vm-100.openvex.json")}},
		{later, []string{"posture", "--data", dir, "--model", "VM-100"}},
		{later, []string{"posture", "--data", dir, "--device", "vm-1", "--json"}},
		{later, []string{"posture", "--data", dir, "--device", "vm-9"}},
		{later, []string{"posture", "vex", "import", "--data", dir, filepath.Join(postureData, "vex", "vm-100.openvex.json")}},
		{later, []string{"posture", "--help"}},
	}
	var transcript string
	for _, st := range steps {
		var out, errOut bytes.Buffer
		at := st.at
		m := &Main{Stdout: &out, Stderr: &errOut, Now: func() time.Time { return at }}
		code := m.Run(context.Background(), st.args)
		transcript += fmt.Sprintf("$ vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", strings.Join(st.args, " "), code, out.String(), errOut.String())
	}
	transcript = strings.ReplaceAll(strings.ReplaceAll(transcript, dir, "DIR"), tmp, "TMP")
	golden(t, "posture-session", strings.ReplaceAll(transcript, postureData, "POSTURE_TESTDATA"))

	// The whole report also has this server's own section (its SBOM changes with every
	// dependency, so it is checked here, not in the golden file).
	code, out, errOut := runAt("posture", "--data", dir)
	if code != 0 || !strings.Contains(out, "This server (Vitalgate's own SBOM)") || !strings.Contains(out, "golang.org/x/crypto") && !strings.Contains(out, "No known vulnerability") {
		t.Fatalf("posture: exit %d\n%s\n%s", code, out, errOut)
	}
}
