package e2e_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/pki"
)

// tokenStatus asks for a token with client_secret_basic and returns the HTTP status.
func (s *server) tokenStatus(t *testing.T, id, secret string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// enrollStatus tries an EST enrollment and returns the HTTP status.
func (s *server) enrollStatus(t *testing.T, id, secret string) int {
	t.Helper()
	key, err := pki.GenerateDeviceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := pki.NewCSR(id, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.url+"/.well-known/est/simpleenroll", bytes.NewReader(pki.EncodeBase64(der)))
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/pkcs10")
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestAssessLeavesTheOperatorIn: after `vitalgate assess` against a real server from the
// operator's own address, the admin client still gets a token even after two typos of the
// operator (the assessment spent one failure of admin's five, not four), and the report
// says what the assessment did to the failure limiter.
func TestAssessLeavesTheOperatorIn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	var res struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(run(t, "init", "--data", dir, "--json")), &res); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir)
	out, errOut, err := runErr("assess", srv.url, "--ca", filepath.Join(dir, "ca.crt"), "--json")
	if err != nil {
		t.Fatalf("assess: %v\n%s\n%s", err, out, errOut)
	}
	var rep struct {
		Findings []struct{ ID, Evidence string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("assess --json: %v\n%s", err, out)
	}
	footprint := ""
	for _, f := range rep.Findings {
		if f.ID == "limiter-footprint" {
			footprint = f.Evidence
		}
	}
	if !strings.Contains(footprint, "admin (1)") || !strings.Contains(footprint, "vitalgate-assess-probe") {
		t.Errorf("the report does not say what assess did to the limiter: %q", footprint)
	}
	for range 2 {
		if got := srv.tokenStatus(t, res.ClientID, "a typo"); got != http.StatusUnauthorized {
			t.Fatalf("a wrong admin secret after assess: %d, want 401", got)
		}
	}
	if got := srv.tokenStatus(t, res.ClientID, res.ClientSecret); got != http.StatusOK {
		t.Fatalf("the admin client is locked out after assess and two typos: %d", got)
	}
}

// TestReissueImportAndRefusalLog: a lost enrollment secret is reissued (the old one is
// refused, and the server log says why; the new one enrolls); devices imported from a CSV
// enroll with the secrets written to a 0600 file that a second import never overwrites;
// the simulator run twice with the same secret enrolls once and streams both times.
func TestReissueImportAndRefusalLog(t *testing.T) {
	dir := initDir(t)
	srv := startServer(t, dir)
	lost := addDevice(t, dir, "dev-r", "pat-r")
	fresh := strings.TrimSpace(run(t, "device", "reissue", "--data", dir, "--id", "dev-r"))
	if len(fresh) != 43 || fresh == lost {
		t.Fatalf("reissue printed %q", fresh)
	}
	if got := srv.enrollStatus(t, "dev-r", lost); got != http.StatusUnauthorized {
		t.Fatalf("the replaced secret: %d, want 401", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.stderr.String(), `"reason":"wrong enrollment secret"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the server log does not say why the enrollment was refused:\n%s", srv.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(srv.stderr.String(), lost) {
		t.Fatal("the secret reached the server log")
	}
	srv.enroll(t, "dev-r", fresh)
	if _, errOut, err := runErr("device", "reissue", "--data", dir, "--id", "dev-r"); err == nil || !strings.Contains(errOut, "revoke it first") {
		t.Fatalf("reissue for an enrolled device: %v %s", err, errOut)
	}

	work := t.TempDir()
	csvFile := filepath.Join(work, "devices.csv")
	if err := os.WriteFile(csvFile, []byte("id,patient,model\nimp-1,pat-1,VM-100\nimp-2,pat-2,VM-100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "device", "import", "--data", dir, csvFile); out != "" {
		t.Fatalf("import printed secrets on standard output: %q", out)
	}
	secretsFile := filepath.Join(work, "devices.secrets.csv")
	st, err := os.Stat(secretsFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets file: %v %v", st, err)
	}
	f, err := os.Open(secretsFile)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	_ = f.Close()
	if err != nil || len(recs) != 3 {
		t.Fatalf("secrets file: %q %v", recs, err)
	}
	for _, r := range recs[1:] {
		srv.enroll(t, r[0], r[1])
	}
	before, _ := os.ReadFile(secretsFile)
	if _, errOut, err := runErr("device", "import", "--data", dir, csvFile); err == nil || !strings.Contains(errOut, "never overwritten") {
		t.Fatalf("a second import: %v %s", err, errOut)
	}
	if after, _ := os.ReadFile(secretsFile); !bytes.Equal(before, after) {
		t.Fatal("a second import changed the secrets file")
	}

	simSecret := addDevice(t, dir, "dev-sim", "pat-sim")
	certs := filepath.Join(work, "sim-certs")
	for i := range 2 {
		out, errOut, err := runErr("simulate", "--server", srv.url, "--ca", filepath.Join(dir, "ca.crt"),
			"--device", "dev-sim:pat-sim:"+simSecret, "--certs", certs, "--duration", "3s")
		if err != nil || !strings.HasPrefix(out, "devices 1 | accepted ") || strings.HasPrefix(out, "devices 1 | accepted 0 ") {
			t.Fatalf("simulate run %d did not enroll and stream (the second must reuse the saved certificate): %v\n%s\n%s", i+1, err, out, errOut)
		}
	}
}
