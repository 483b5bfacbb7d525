package e2e_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fipsEnv is the environment of every vitalgate process on a FIPS data dir.
var fipsEnv = append(os.Environ(), "GODEBUG=fips140=only")

// runEnv runs a vitalgate command with env and returns its standard output and error
// output.
func runEnv(env []string, args ...string) (string, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func mustRunFIPS(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runEnv(fipsEnv, args...)
	if err != nil {
		t.Fatalf("GODEBUG=fips140=only vitalgate %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// startServerEnv starts `vitalgate serve` with env and waits until it answers.
func startServerEnv(t *testing.T, dir string, env []string) *server {
	t.Helper()
	addr := freeAddr(t)
	s := &server{url: "https://" + addr, stderr: &syncBuffer{}, done: make(chan error, 1)}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	s.pool = x509.NewCertPool()
	s.pool.AppendCertsFromPEM(caPEM)
	s.cmd = exec.Command(bin, "serve", "--data", dir, "--addr", addr)
	s.cmd.Env = env
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(s.kill)
	waitFor(t, 30*time.Second, "the FIPS server to answer", func() bool {
		select {
		case err := <-s.done:
			t.Fatalf("server exited early: %v\n%s", err, s.stderr.String())
		default:
		}
		resp, err := s.client(nil).Get(s.url + "/healthz")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

// TestFIPSDataDirEndToEnd runs the main path on a FIPS data dir with every vitalgate
// process under GODEBUG=fips140=only: init --fips, serve (the mode in /readyz), device add
// and EST enrollment, an observation over mutual TLS, an API client's token (PBKDF2 secret
// checks), a search, a de-identified export with a sealed mapping, a key rotation and
// audit verify. Then the refusals: the FIPS data dir without fips140=only, and a standard
// data dir under it.
func TestFIPSDataDirEndToEnd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fips-data")
	var res struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(mustRunFIPS(t, "init", "--fips", "--data", dir, "--json")), &res); err != nil || res.ClientSecret == "" {
		t.Fatalf("init --fips --json: %v", err)
	}
	rec, err := os.ReadFile(filepath.Join(dir, "crypto.json"))
	if err != nil || !strings.Contains(string(rec), `"secret_hash": "pbkdf2-sha256"`) || !strings.Contains(string(rec), `"godebug": "fips140=only"`) {
		t.Fatalf("crypto.json: %s %v", rec, err)
	}
	secret := strings.TrimSpace(mustRunFIPS(t, "device", "add", "--data", dir, "--id", "mon-1", "--patient", "pat-1"))
	ehrSecret := strings.TrimSpace(mustRunFIPS(t, "client", "add", "--data", dir, "--id", "ehr-1", "--role", "ehr-system"))

	s := startServerEnv(t, dir, fipsEnv)
	resp, err := s.client(nil).Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(body), "crypto: fips140=only; secrets pbkdf2-sha256 (FIPS data dir)") {
		t.Fatalf("/readyz: %q", body)
	}
	cert := s.enroll(t, "mon-1", secret)
	ctx := context.Background()
	status, b, _, err := post(ctx, s.client(&cert), s.url+"/fhir/Observation", observation("pat-1", "mon-1", "72", time.Now().Add(-time.Minute)))
	if err != nil || status != 201 {
		t.Fatalf("observation over mutual TLS: %d %s %v", status, b, err)
	}
	tok := clientToken(t, s, "ehr-1", ehrSecret)
	req, _ := http.NewRequest("GET", s.url+"/fhir/Observation?patient=pat-1", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "8867-4") {
		t.Fatalf("search: %d %s", resp.StatusCode, body)
	}
	s.stop(t)

	mapping := filepath.Join(t.TempDir(), "pseudonyms.sealed")
	out := mustRunFIPS(t, "export", "--data", dir, "--deidentify", "--pseudonyms", mapping, "--shift-dates")
	if strings.Count(out, "\n") < 1 || strings.Contains(out, "pat-1") || strings.Contains(out, "mon-1") {
		t.Fatalf("de-identified export:\n%s", out)
	}
	if again := mustRunFIPS(t, "export", "--data", dir, "--deidentify", "--pseudonyms", mapping, "--shift-dates"); again != out {
		t.Fatalf("a second export sharing the mapping differs:\n%s\n%s", out, again)
	}
	mustRunFIPS(t, "keys", "rotate", "--data", dir)
	mustRunFIPS(t, "audit", "verify", "--data", dir)

	// Without fips140=only the FIPS data dir is refused, with the fix in the message.
	for _, env := range [][]string{append(os.Environ(), "GODEBUG=fips140=off"), append(os.Environ(), "GODEBUG=fips140=on")} {
		_, errOut, err := runEnv(env, "serve", "--data", dir, "--addr", freeAddr(t))
		if err == nil || !strings.Contains(errOut, "GODEBUG=fips140=only") {
			t.Fatalf("serve on a FIPS data dir with %s: %v\n%s", env[len(env)-1], err, errOut)
		}
	}
	// A standard data dir is refused under fips140=only, and so is init without --fips.
	std := initDir(t)
	if _, errOut, err := runEnv(fipsEnv, "serve", "--data", std, "--addr", freeAddr(t)); err == nil || !strings.Contains(errOut, "init --fips") {
		t.Fatalf("serve on a standard data dir under fips140=only: %v\n%s", err, errOut)
	}
	if _, errOut, err := runEnv(fipsEnv, "init", "--data", filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(errOut, "init --fips") {
		t.Fatalf("init without --fips under fips140=only: %v\n%s", err, errOut)
	}
}

// clientToken gets an access token for an API client with client_secret_basic.
func clientToken(t *testing.T, s *server, id, secret string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(body, &tr) != nil || tr.AccessToken == "" {
		t.Fatalf("token for %s: %d %s", id, resp.StatusCode, body)
	}
	return tr.AccessToken
}
