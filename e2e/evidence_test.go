package e2e_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// evidenceReport is the part of the JSON evidence report this test reads.
type evidenceReport struct {
	Requirements []struct {
		Framework, Ref, Title, Status string
		Controls                      []string
	}
	Controls []struct {
		ID    string
		Gap   string
		State struct {
			Status string
			Facts  []string
		}
		TestResults []struct{ Name, Result string } `json:"test_results"`
	}
	Interfaces []struct{ Interface, Endpoint string }
}

func (r evidenceReport) control(id string) (status string, facts []string) {
	for _, k := range r.Controls {
		if k.ID == id {
			return k.State.Status, k.State.Facts
		}
	}
	return "", nil
}

// evidenceJSON runs `evidence report --format json` and decodes the report (the first JSON
// value of the signed file).
func evidenceJSON(t *testing.T, dir string, extra ...string) evidenceReport {
	t.Helper()
	out := filepath.Join(t.TempDir(), "report.json")
	run(t, append([]string{"evidence", "report", "--data", dir, "--format", "json", "--out", out}, extra...)...)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r evidenceReport
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEvidenceReport is issue 25's done-when: the report of a demo-like deployment has a row
// with state and evidence for every FDA category and HIPAA 164.312 specification; serving
// again with --tls12 changes it; the signed report verifies and a changed byte is caught;
// its digest is in the audit log, which still verifies.
func TestEvidenceReport(t *testing.T) {
	dir := initDir(t)
	secret := addDevice(t, dir, "monitor-1", "patient-1")
	addr := freeAddr(t)
	s := startServerAt(t, dir, addr, "--mllp-addr", freeAddr(t))
	s.enroll(t, "monitor-1", secret)
	s.stop(t)

	results := filepath.Join(t.TempDir(), "results.json")
	if err := os.WriteFile(results, []byte(`{"Action":"pass","Package":"github.com/vitalgate/vitalgate/httpapi","Test":"TestDenyByDefault"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := evidenceJSON(t, dir, "--results", results)
	fda, hipaa := 0, 0
	for _, q := range r.Requirements {
		switch q.Framework {
		case "FDA":
			fda++
		case "HIPAA":
			hipaa++
		}
		if q.Status == "" || q.Status == "unknown" || len(q.Controls) == 0 {
			t.Errorf("%s %s %s: status %q, controls %v", q.Framework, q.Ref, q.Title, q.Status, q.Controls)
		}
		for _, id := range q.Controls {
			if st, facts := r.control(id); st == "" || len(facts) == 0 {
				t.Errorf("%s: control %s has no state", q.Ref, id)
			}
		}
	}
	if fda != 8 || hipaa != 12 {
		t.Errorf("%d FDA categories (want 8), %d HIPAA specifications (want 12)", fda, hipaa)
	}
	for _, k := range r.Controls {
		for _, tr := range k.TestResults {
			if want := map[bool]string{true: "pass", false: "not run"}[tr.Name == "httpapi.TestDenyByDefault"]; tr.Result != want {
				t.Errorf("%s: test %s result %q, want %q", k.ID, tr.Name, tr.Result, want)
			}
		}
	}
	if st, facts := r.control("tls"); st != "enforced" || !slices.Contains(facts, "TLS versions: TLS 1.3 (1 node)") {
		t.Errorf("TLS before --tls12: %s %v", st, facts)
	}
	if st, facts := r.control("authenticated-updates"); st != "enforced" || !slices.Contains(facts, "no release published yet: devices are offered nothing") {
		t.Errorf("authenticated updates on a deployment without releases: %s %v", st, facts)
	}
	if !slices.ContainsFunc(r.Interfaces, func(i struct{ Interface, Endpoint string }) bool { return i.Interface == "mllp" }) {
		t.Error("the MLLP listener is not among the interfaces")
	}

	s = startServerAt(t, dir, addr, "--tls12")
	s.stop(t)
	r = evidenceJSON(t, dir)
	if st, facts := r.control("tls"); st != "attention" || !slices.Contains(facts, "TLS versions: TLS 1.2, TLS 1.3 (1 node)") {
		t.Errorf("TLS after --tls12: %s %v", st, facts)
	}

	html := filepath.Join(t.TempDir(), "report.html")
	_, stderr, err := runErr("evidence", "report", "--data", dir, "--out", html)
	if err != nil {
		t.Fatalf("evidence report: %v\n%s", err, stderr)
	}
	digest := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(stderr)
	if digest == "" {
		t.Fatalf("no digest in %q", stderr)
	}
	if out := run(t, "evidence", "verify", html, "--data", dir); !strings.HasPrefix(out, "OK: ") || !strings.Contains(out, digest) ||
		!strings.Contains(out, "recorded in the audit log") {
		t.Errorf("verify --data: %s", out)
	}
	if out := run(t, "evidence", "verify", "--key", filepath.Join(dir, "evidence.pub"), html); !strings.HasPrefix(out, "OK: ") {
		t.Errorf("verify --key: %s", out)
	}
	if !strings.Contains(run(t, "audit", "export", "--data", dir), digest) {
		t.Error("the report's digest is not in the audit log")
	}
	if out := run(t, "audit", "verify", "--data", dir); !strings.HasPrefix(out, "OK: ") {
		t.Errorf("audit verify after the reports: %s", out)
	}
	data, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("TLS 1.2, TLS 1.3"))
	if i < 0 {
		t.Fatal("the HTML report does not state TLS 1.2")
	}
	data[i+len("TLS 1.")] = '3' // "TLS 1.3, TLS 1.3": a changed byte
	if err := os.WriteFile(html, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, err := runErr("evidence", "verify", html, "--data", dir); err == nil || !strings.Contains(stderr, "DOES NOT VERIFY") {
		t.Errorf("a changed report verifies: %v %s %s", err, out, stderr)
	}

	if st, facts := r.control("audit-log"); st != "enforced" || !slices.ContainsFunc(facts, func(f string) bool { return strings.HasPrefix(f, "verification: OK") }) {
		t.Errorf("audit log state: %s %v", st, facts)
	}
	// A changed audit entry shows in the report as a failed verification.
	sqlExec(t, dir, "DROP TRIGGER audit_log_no_update",
		`UPDATE audit_log SET data = CAST(replace(CAST(data AS TEXT), '"outcome":"0"', '"outcome":"4"') AS BLOB) WHERE idx = 1`)
	if st, facts := evidenceJSON(t, dir).control("audit-log"); st != "attention" || !slices.ContainsFunc(facts, func(f string) bool { return strings.HasPrefix(f, "verification: FAILED") }) {
		t.Errorf("audit log state after tampering: %s %v", st, facts)
	}

	mds2 := run(t, "evidence", "report", "--data", dir, "--format", "mds2")
	for _, want := range []string{"EMRG-1,", "STCF-1,", "CSUP-2,", "vitalgate-evidence-signature: v1 ed25519 "} {
		if !strings.Contains(mds2, want) {
			t.Errorf("MDS2 output lacks %q", want)
		}
	}
}
