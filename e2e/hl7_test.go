package e2e_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/mllp"
	"github.com/vitalgate/vitalgate/pki"
)

// hl7Ack is what e2e/hl7client/send.mjs prints about an acknowledgement.
type hl7Ack struct {
	MSA1 string   `json:"msa1"`
	Err3 []string `json:"err3"`
	Err8 []string `json:"err8"`
}

// TestHL7SamplesOverMLLPTLS sends the real IHE PCD-01 sample messages with simple-hl7, an
// HL7 v2 client from npm that Vitalgate did not write, through socat (TLS with the device's
// client certificate) to Vitalgate's MLLP/TLS listener: each is acknowledged AA and its
// observations are stored; mutated copies get AE/AR naming the bad field.
func TestHL7SamplesOverMLLPTLS(t *testing.T) {
	needTools(t, "node", "socat")
	if _, err := os.Stat("hl7client/node_modules/simple-hl7"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("simple-hl7 is not installed: .ci/run must run `npm ci` in e2e/hl7client")
		}
		t.Skip("simple-hl7 is not installed: run scripts/test (it runs `npm ci` in e2e/hl7client), or npm ci there")
	}
	dir := filepath.Join(t.TempDir(), "data")
	var init struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(run(t, "init", "--data", dir, "--json")), &init); err != nil {
		t.Fatal(err)
	}
	mllpAddr := freeAddr(t)
	srv := startServerAt(t, dir, freeAddr(t), "--mllp-addr", mllpAddr)

	// An administrator registers the patients the samples name (PID-3 with its assigning
	// authority) and the sending gateways (MSH-3 EUI-64), each assigned to its patient.
	token := adminToken(t, srv, init.ClientSecret)
	gateways := []struct {
		device, authority, mrn string
		files                  []string
	}{
		{"080019FFFF4F6AC0", "A", "AB60001", []string{"01_ipf_pcd01_icu_monitor_awaregateway.hl7"}},
		{"ACDE48234567ABCD", "Imaginary Hospital", "789567", []string{"02_ipf_pcd01_nibp.hl7", "04_ipf_continua_wan_pulse_oximeter.hl7",
			"05_ipf_continua_wan_bp.hl7", "06_ipf_continua_wan_thermometer.hl7"}},
	}
	work := t.TempDir()
	for _, g := range gateways {
		pid := createPatient(t, srv, token, mllp.AuthoritySystem(g.authority), g.mrn)
		secret := addDevice(t, dir, g.device, pid)
		cert := srv.enroll(t, g.device, secret)
		certFile, keyFile := filepath.Join(work, g.device+".crt"), filepath.Join(work, g.device+".key")
		keyPEM, err := pki.MarshalKeyPEM(cert.PrivateKey.(crypto.Signer))
		if err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(certFile, pki.MarshalCertPEM(cert.Leaf), 0o600)
		_ = os.WriteFile(keyFile, keyPEM, 0o600)
		local := freeAddr(t)
		tunnel := exec.Command("socat", "TCP-LISTEN:"+strings.Split(local, ":")[1]+",bind=127.0.0.1,reuseaddr,fork",
			"OPENSSL:"+mllpAddr+",cert="+certFile+",key="+keyFile+",cafile="+filepath.Join(dir, "ca.crt")+",verify=1,openssl-min-proto-version=TLS1.3")
		if err := tunnel.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tunnel.Process.Kill(); _ = tunnel.Wait() })
		waitListening(t, local)

		for _, f := range g.files {
			ack := sendHL7(t, samplePath(t, f), local)
			if ack.MSA1 != "AA" {
				t.Errorf("%s: acknowledged %s %v %v, want AA", f, ack.MSA1, ack.Err3, ack.Err8)
			}
		}
		if g.device != "ACDE48234567ABCD" {
			continue
		}
		// Mutated copies: an unknown unit, a missing patient identifier, another gateway.
		orig, err := os.ReadFile(samplePath(t, "04_ipf_continua_wan_pulse_oximeter.hl7"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct{ name, from, to, field string }{
			{"unknown unit", "262688^MDC_DIM_PERCENT^MDC", "999999^MDC_DIM_NONSENSE^MDC", "OBX"},
			{"no patient identifier", "PID|||789567^^^Imaginary Hospital^PI", "PID|||", "PID"},
			{"another gateway", "AcmeInc^ACDE48234567ABCD^EUI-64", "AcmeInc^FFFF48234567ABCD^EUI-64", "MSH"},
		} {
			if !bytes.Contains(orig, []byte(m.from)) {
				t.Fatalf("%s: sample does not contain %q", m.name, m.from)
			}
			file := filepath.Join(work, strings.ReplaceAll(m.name, " ", "-")+".hl7")
			_ = os.WriteFile(file, bytes.Replace(orig, []byte(m.from), []byte(m.to), 1), 0o600)
			ack := sendHL7(t, file, local)
			if (ack.MSA1 != "AE" && ack.MSA1 != "AR") || len(ack.Err3) == 0 || len(ack.Err8) == 0 {
				t.Errorf("%s: acknowledged %s %v %v, want AE or AR with an ERR segment", m.name, ack.MSA1, ack.Err3, ack.Err8)
			}
			t.Logf("%s: %s %v %q", m.name, ack.MSA1, ack.Err3, ack.Err8)
		}
	}
	srv.stop(t)

	// The stored observations carry the samples' MDC and LOINC codes, values and units.
	out := run(t, "export", "--data", dir)
	for _, want := range []string{`"code":"150456"`, `"unit":"%"`, `"code":"150021"`, `"code":"mm[Hg]"`, `"code":"8310-5"`} {
		if !strings.Contains(out, want) {
			t.Errorf("export lacks %s", want)
		}
	}
}

func adminToken(t *testing.T, s *server, secret string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("admin", secret)
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("admin token: %d %v", resp.StatusCode, err)
	}
	return tok.AccessToken
}

func createPatient(t *testing.T, s *server, token, system, value string) string {
	t.Helper()
	body := `{"resourceType":"Patient","identifier":[{"system":"` + system + `","value":"` + value + `"}]}`
	req, _ := http.NewRequest("POST", s.url+"/fhir/Patient", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create patient: %d %v", resp.StatusCode, err)
	}
	return p.ID
}

// sendHL7 sends the message in file, dated now (see recent), and returns the ACK.
func sendHL7(t *testing.T, file, addr string) hl7Ack {
	t.Helper()
	data, err := os.ReadFile(file) // #nosec G304 -- a test sample
	if err != nil {
		t.Fatal(err)
	}
	dated := filepath.Join(t.TempDir(), filepath.Base(file))
	if err := os.WriteFile(dated, recent(data, time.Now().UTC().Add(-time.Minute)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", "send.mjs", dated, "127.0.0.1", strings.Split(addr, ":")[1])
	cmd.Dir = "hl7client"
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("send %s: %v %s", filepath.Base(file), err, stderr)
	}
	var a hl7Ack
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("send.mjs output %q: %v", out, err)
	}
	return a
}

// recent returns msg with every date-time of minute precision or finer (12 or 14 digits
// starting 19 or 20, as in MSH-7, OBR-7 and OBX-14) set to now: the samples were measured
// years ago, and a reading binds to the patient its device was assigned to when it was
// measured (and only within the backdating bound). Dates alone (a birth date) are kept.
func recent(msg []byte, now time.Time) []byte {
	out := append([]byte(nil), msg...)
	isAlnum := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
	isDigits := func(b []byte) bool {
		for _, c := range b {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(out); {
		if out[i] < '0' || out[i] > '9' || i > 0 && isAlnum(out[i-1]) {
			i++
			continue
		}
		j := i
		for j < len(out) && out[j] >= '0' && out[j] <= '9' {
			j++
		}
		n := j - i
		if (n != 12 && n != 14) || j < len(out) && isAlnum(out[j]) || string(out[i:i+2]) != "19" && string(out[i:i+2]) != "20" {
			i = j
			continue
		}
		// Written in the zone of its offset (+HHMM/-HHMM after an optional fraction), if any.
		k := j
		if k < len(out) && out[k] == '.' {
			for k++; k < len(out) && out[k] >= '0' && out[k] <= '9'; k++ {
			}
		}
		at := now
		if k+5 <= len(out) && (out[k] == '+' || out[k] == '-') && isDigits(out[k+1:k+5]) {
			h, m := int(out[k+1]-'0')*10+int(out[k+2]-'0'), int(out[k+3]-'0')*10+int(out[k+4]-'0')
			off := h*3600 + m*60
			if out[k] == '-' {
				off = -off
			}
			at = now.In(time.FixedZone("", off))
		}
		copy(out[i:j], at.Format("20060102150405")[:n])
		i = j
	}
	return out
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s", addr)
}

// samplePath is the absolute path of a real PCD-01 sample (copies of ../shared/testdata in
// hl7v2/testdata, with their sources).
func samplePath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "hl7v2", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
