package e2e_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/posture"
)

// postureData is the posture package's test data: real OSV records (Go vulnerability
// database), real KEV entries, SBOMs of real components.
var postureData = filepath.Join("..", "posture", "testdata")

// TestPostureEndToEnd is issue 19's path through the built binary: release 1.0.0 of a
// model is published with its SBOM and rolled out to two simulated devices, which report
// it installed; importing an advisory that affects one of its components (and the KEV
// catalog) makes it show on both devices with its KEV mark through GET /posture; release
// 1.1.0, whose SBOM has the fixed component, is published and rolled out device by device,
// and the finding clears on each device as it installs 1.1.0.
func TestPostureEndToEnd(t *testing.T) {
	dir := initDir(t)
	work := t.TempDir()
	run(t, "model", "add", "--data", dir, "--id", "VM-100", "--binding", "assigned")
	keys := filepath.Join(work, "keys")
	run(t, "update", "keys", "init", "--out", keys)
	publish := func(version string) {
		fw := filepath.Join(work, "vm100-"+version+".bin")
		if err := os.WriteFile(fw, []byte(strings.Repeat("VM-100 gateway "+version+"\n", 5_000)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errOut, err := runErr("update", "publish", "--data", dir, "--keys", keys, "--model", "VM-100", "--version", version, fw,
			"--sbom", filepath.Join(postureData, "sbom", "vm-100-"+version+".cdx.json"))
		if err != nil || !strings.Contains(errOut, "Attached the SBOM (CycloneDX 1.6, 8 components) to VM-100 "+version) {
			t.Fatalf("publish %s: %v\n%s", version, err, errOut)
		}
	}
	publish("1.0.0")
	rootFile := filepath.Join(work, "root.json")
	if err := os.WriteFile(rootFile, []byte(run(t, "update", "root", "--data", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, id := range []string{"vm-1", "vm-2"} {
		secrets[id] = strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", id, "--patient", "pat-"+id, "--model", "VM-100"))
	}
	auditorSecret := strings.TrimSpace(run(t, "client", "add", "--data", dir, "--id", "auditor", "--role", "auditor"))
	rollout := func(version string) {
		run(t, "update", "rollout", "--data", dir, "--model", "VM-100", "--version", version,
			"--devices", "vm-1", "--devices", "vm-2", "--errors", "0", "--health-window", "0")
	}
	rollout("1.0.0")
	srv := startServer(t, dir)
	simulate := func(id string) {
		args := []string{"simulate", "--server", srv.url, "--ca", filepath.Join(dir, "ca.crt"),
			"--device", id + ":pat-" + id + ":" + secrets[id], "--certs", filepath.Join(work, "certs-"+id),
			"--update", "--model", "VM-100", "--tuf-root", rootFile, "--update-dir", filepath.Join(work, "upd-"+id),
			"--poll", "200ms", "--interval", "200ms", "--duration", "4s"}
		if out, errOut, err := runErr(args...); err != nil {
			t.Fatalf("simulate %s: %v\n%s\n%s", id, err, out, errOut)
		}
	}
	status := func() string { return run(t, "update", "rollout", "status", "--data", dir, "--model", "VM-100") }
	token := clientToken(t, srv, "auditor", auditorSecret)
	report := func() posture.Report {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.url+"/posture?model=VM-100", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.client(nil).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var rep posture.Report
		if resp.StatusCode != 200 || json.Unmarshal(body, &rep) != nil || len(rep.Models) != 1 {
			t.Fatalf("GET /posture: %d %s", resp.StatusCode, body)
		}
		return rep
	}
	// device returns a device's open findings by "ID component", with their KEV marks.
	device := func(rep posture.Report, id string) (string, map[string]string) {
		for _, d := range rep.Models[0].Devices {
			if d.ID == id {
				found := map[string]string{}
				for _, f := range d.Findings {
					found[f.ID+" "+f.Component] = f.KEV
				}
				return d.Version, found
			}
		}
		t.Fatalf("device %s is not in the report: %+v", id, rep.Models[0].Devices)
		return "", nil
	}

	// Both devices install 1.0.0 and report it.
	simulate("vm-1")
	simulate("vm-2")
	waitFor(t, 10*time.Second, "the 1.0.0 rollout to complete", func() bool { return strings.Contains(status(), "completed") })
	for _, id := range []string{"vm-1", "vm-2"} {
		if v, found := device(report(), id); v != "1.0.0" || len(found) != 0 {
			t.Fatalf("%s before any advisory: version %q, findings %v", id, v, found)
		}
	}

	// The advisory (GO-2023-2102, HTTP/2 rapid reset in golang.org/x/net) and the KEV
	// catalog: each device shows it, marked known exploited (CVE-2023-44487).
	run(t, "posture", "advisories", "import", "--data", dir, filepath.Join(postureData, "osv", "GO-2023-2102.json"))
	run(t, "posture", "kev", "import", "--data", dir, filepath.Join(postureData, "kev", "known_exploited_vulnerabilities.json"))
	const xnet = "GO-2023-2102 golang.org/x/net 0.15.0"
	for _, id := range []string{"vm-1", "vm-2"} {
		if _, found := device(report(), id); found[xnet] != "CVE-2023-44487" {
			t.Fatalf("%s: %v, want %s marked KEV CVE-2023-44487", id, found, xnet)
		}
	}
	if s := report().Summary; s.OpenKEV != 1 || s.DevicesAffected != 2 {
		t.Fatalf("summary %+v", s)
	}
	// The evidence report's row reads the live posture.
	if st, facts := evidenceJSON(t, dir).control("vulnerability-posture"); st != "attention" ||
		!slices.Contains(facts, "open on devices: 1 known exploited (KEV) vulnerabilities; 4 findings on 2 devices") {
		t.Fatalf("evidence vulnerability-posture: %s %q", st, facts)
	}

	// 1.1.0 (x/net 0.19.0) is published: the finding names it as the fix, published.
	publish("1.1.0")
	rep := report()
	for _, f := range rep.Models[0].Versions[0].Findings {
		if f.Component == "golang.org/x/net" && (f.Fix == nil || f.Fix.Version != "1.1.0" || !f.Fix.Published) {
			t.Fatalf("the x/net finding names no published fix: %+v", f.Fix)
		}
	}
	// Rolled out device by device: vm-1 first clears, vm-2 still has it.
	rollout("1.1.0")
	simulate("vm-1")
	waitFor(t, 10*time.Second, "vm-1 to run 1.1.0", func() bool { v, _ := device(report(), "vm-1"); return v == "1.1.0" })
	if _, found := device(report(), "vm-1"); len(found) != 0 {
		t.Fatalf("vm-1 on 1.1.0 still has %v", found)
	}
	if _, found := device(report(), "vm-2"); found[xnet] == "" {
		t.Fatalf("vm-2 on 1.0.0 lost its finding: %v", found)
	}
	for _, f := range report().Models[0].Versions[0].Findings {
		if f.Component == "golang.org/x/net" && (f.Fix == nil || f.Fix.Rollout == nil || f.Fix.Rollout.Installed != 1 || f.Fix.Rollout.Targeted != 2) {
			t.Fatalf("the fix's rollout progress: %+v", f.Fix)
		}
	}
	simulate("vm-2")
	waitFor(t, 10*time.Second, "vm-2 to run 1.1.0", func() bool { v, _ := device(report(), "vm-2"); return v == "1.1.0" })
	if s := report().Summary; s.OpenKEV != 0 || s.DevicesAffected != 0 || s.OpenFindings != 0 {
		t.Fatalf("after the rollout: %+v", s)
	}
	if _, facts := evidenceJSON(t, dir).control("vulnerability-posture"); !slices.Contains(facts, "open on devices: 0 known exploited (KEV) vulnerabilities; 0 findings on 0 devices") ||
		!slices.Contains(facts, "SBOM coverage: 1 of 1 models have an SBOM for every version in the field; 2 of 2 devices run a version with an SBOM") {
		t.Fatalf("evidence vulnerability-posture after the rollout: %q", facts)
	}
	// The CLI reads the same posture.
	if out := run(t, "posture", "--data", dir, "--model", "VM-100"); !strings.Contains(out, "vm-1 1.1.0: no open vulnerability") ||
		!strings.Contains(out, "vm-2 1.1.0: no open vulnerability") {
		t.Fatalf("vitalgate posture:\n%s", out)
	}
}

// TestReadmePostureRecipe runs the README's "Vulnerability posture" block verbatim with bash
// on a fresh data dir, with the files it names made from the posture test data (real OSV
// records in a ZIP, the KEV excerpt, SBOMs and a VEX statement).
func TestReadmePostureRecipe(t *testing.T) {
	needTools(t, "bash")
	work := t.TempDir()
	data := filepath.Join(work, "vg-data")
	if out, err := exec.Command(bin, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	copyFile := func(from, to string) {
		b, err := os.ReadFile(filepath.Join(postureData, from)) // #nosec G304 -- test data
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, to), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	copyFile("sbom/vm-100-1.0.0.cdx.json", "vm-100-1.0.0.cdx.json")
	copyFile("sbom/vm-100-1.1.0.cdx.json", "vm-100-1.1.0.cdx.json")
	copyFile("kev/known_exploited_vulnerabilities.json", "known_exploited_vulnerabilities.json")
	copyFile("vex/vm-100.openvex.json", "vm-100.openvex.json")
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	records, _ := filepath.Glob(filepath.Join(postureData, "osv", "*.json"))
	for _, r := range records {
		b, err := os.ReadFile(r) // #nosec G304 -- test data
		if err != nil {
			t.Fatal(err)
		}
		w, _ := zw.Create(filepath.Base(r))
		_, _ = w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "osv-go.zip"), zb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r := recipe(t, "posture")
	cmd := exec.Command("bash", "-c", r)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "VG_DATA="+data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("posture recipe: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "GO-2023-2102 golang.org/x/net 0.15.0 [KEV CVE-2023-44487 via related") ||
		!strings.Contains(stderr.String(), "Imported 4 OSV advisories") {
		t.Errorf("the recipe's report shows no known-exploited finding:\n%s\n%s", stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(work, "posture.json"))
	var rep posture.Report
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.Server == nil || rep.Summary.Advisories != 4 {
		t.Fatalf("posture.json: %v %.200s", err, b)
	}
}
