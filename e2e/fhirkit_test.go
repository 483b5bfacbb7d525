package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFHIRKitClient reads what a device wrote with fhir-kit-client, a FHIR client from npm
// that Vitalgate did not write, authenticating with OAuth2 client credentials, and exports
// it with Bulk Data (kick-off and polling through fhir-kit-client, cancel).
func TestFHIRKitClient(t *testing.T) {
	needTools(t, "node")
	if _, err := os.Stat("fhirkit/node_modules/fhir-kit-client"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("fhir-kit-client is not installed: .ci/run must run `npm ci` in e2e/fhirkit")
		}
		t.Skip("fhir-kit-client is not installed: run scripts/test (it runs `npm ci` in e2e/fhirkit), or npm ci there")
	}
	dir := initDir(t)
	secret := addDevice(t, dir, "kit-dev", "kit-patient")
	clientSecret := strings.TrimSpace(run(t, "client", "add", "--data", dir, "--id", "ehr-kit", "--role", "ehr-system"))
	srv := startServer(t, dir)
	cert := srv.enroll(t, "kit-dev", secret)
	c := srv.client(&cert)
	var want []string
	for i := 0; i < 5; i++ {
		status, body, _, err := post(context.Background(), c, srv.url+"/fhir/Observation",
			observation("kit-patient", "kit-dev", fmt.Sprint(70+i), time.Now().Add(-time.Duration(5-i)*40*time.Second))) // after the device was assigned (readings bind by time)
		if err != nil || status != 201 {
			t.Fatalf("post: %d %v %s", status, err, body)
		}
		var r struct{ ID string }
		_ = json.Unmarshal(body, &r)
		want = append(want, r.ID)
	}
	slices.Reverse(want) // the search answers newest first

	cmd := exec.Command("node", "read.mjs")
	cmd.Dir = "fhirkit"
	cmd.Env = append(os.Environ(),
		"NODE_EXTRA_CA_CERTS="+filepath.Join(dir, "ca.crt"),
		"VG_URL="+srv.url, "VG_CLIENT_ID=ehr-kit", "VG_CLIENT_SECRET="+clientSecret, "VG_PATIENT=kit-patient")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("fhir-kit-client: %v\n%s\n%s", err, out, stderr)
	}
	var got struct {
		FHIRVersion       string
		IDs               []string
		ReadID, ReadCode  string
		PatientReadStatus int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if got.FHIRVersion != "4.0.1" || !slices.Equal(got.IDs, want) || got.ReadID != want[0] || got.ReadCode != "8867-4" {
		t.Fatalf("fhir-kit-client saw %+v, want ids %v", got, want)
	}
	if got.PatientReadStatus != 403 {
		t.Fatalf("reading a Patient with an Observation-only token gave %d, want 403", got.PatientReadStatus)
	}

	// Bulk Data export: fhir-kit-client kicks off and polls; the file holds the five.
	cmd = exec.Command("node", "export.mjs")
	cmd.Dir, cmd.Env = "fhirkit", append(os.Environ(),
		"NODE_EXTRA_CA_CERTS="+filepath.Join(dir, "ca.crt"), "VG_URL="+srv.url, "VG_CLIENT_ID=ehr-kit", "VG_CLIENT_SECRET="+clientSecret)
	if out, err = cmd.Output(); err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("fhir-kit-client export: %v\n%s\n%s", err, out, stderr)
	}
	var exp struct {
		RequiresAccessToken bool
		OutputType          string
		OutputCount         int
		FileContentType     string
		IDs                 []string
		CancelledStatus     int
	}
	if err := json.Unmarshal(out, &exp); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	slices.Sort(exp.IDs)
	slices.Sort(want)
	if !exp.RequiresAccessToken || exp.OutputType != "Observation" || exp.OutputCount != 5 || !slices.Equal(exp.IDs, want) ||
		exp.FileContentType != "application/fhir+ndjson" || exp.CancelledStatus != 404 {
		t.Fatalf("fhir-kit-client export saw %+v, want the five observations %v and a cancelled export gone (404)", exp, want)
	}
}
