package e2e_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/pki"
)

// bin is the vitalgate binary built once for all tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vitalgate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "vitalgate")
	build := exec.Command("go", "build", "-o", bin, "../cmd/vitalgate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building vitalgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// run runs a vitalgate command and returns its standard output; it fails the test on a
// non-zero exit.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := runErr(args...)
	if err != nil {
		t.Fatalf("vitalgate %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func runErr(args ...string) (string, string, error) {
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// initDir creates a data dir and returns its path.
func initDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	var res struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(run(t, "init", "--data", dir, "--json")), &res); err != nil || res.ClientSecret == "" {
		t.Fatalf("init --json gave no secret: %v", err)
	}
	return dir
}

// addDevice registers a device and returns its enrollment secret.
func addDevice(t testing.TB, dir, id, patient string) string {
	t.Helper()
	secret := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", id, "--patient", patient))
	if len(secret) != 43 {
		t.Fatalf("device add printed %q, want the secret alone", secret)
	}
	return secret
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// server is a running `vitalgate serve` process.
type server struct {
	cmd    *exec.Cmd
	url    string
	pool   *x509.CertPool
	stderr *syncBuffer
	done   chan error
}

// startServer starts `vitalgate serve` on a free port and waits until it answers.
func startServer(t testing.TB, dir string) *server {
	t.Helper()
	return startServerAt(t, dir, freeAddr(t))
}

func startServerAt(t testing.TB, dir, addr string, extra ...string) *server {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	s := &server{url: "https://" + addr, pool: pool, stderr: &syncBuffer{}, done: make(chan error, 1)}
	s.cmd = exec.Command(bin, append([]string{"serve", "--data", dir, "--addr", addr}, extra...)...)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	t.Cleanup(func() { s.kill() })
	c := s.client(nil)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("server exited early: %v\n%s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy: %v\n%s", err, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *server) kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop(t testing.TB) {
	t.Helper()
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("server exit: %v\n%s", err, s.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30 s of SIGINT")
	}
}

// client returns an HTTPS client that trusts the server's CA and presents cert, if any.
func (s *server) client(cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{RootCAs: s.pool, MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 8}}
}

// enroll enrolls a device over EST with a fresh P-256 key and returns its TLS certificate.
func (s *server) enroll(t testing.TB, id, secret string) tls.Certificate {
	t.Helper()
	key, err := pki.GenerateDeviceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(id, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", s.url+"/.well-known/est/simpleenroll", bytes.NewReader(pki.EncodeBase64(csr)))
	req.SetBasicAuth(id, secret)
	req.Header.Set("Content-Type", "application/pkcs10")
	resp, err := s.client(nil).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("simpleenroll: %d %s", resp.StatusCode, body)
	}
	der, err := pki.DecodeBase64(body)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCertsOnly(der)
	if err != nil || len(certs) != 1 {
		t.Fatalf("certs-only: %v (%d certs)", err, len(certs))
	}
	return tls.Certificate{Certificate: [][]byte{certs[0].Raw}, PrivateKey: key, Leaf: certs[0]}
}

// observation returns a heart-rate Observation for patient from device, with the given value.
func observation(patient, device string, value string, at time.Time) []byte {
	return []byte(`{"resourceType":"Observation","status":"final",` +
		`"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],` +
		`"code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},` +
		`"subject":{"reference":"Patient/` + patient + `"},"device":{"reference":"Device/` + device + `"},` +
		`"effectiveDateTime":"` + at.UTC().Format(time.RFC3339) + `",` +
		`"valueQuantity":{"value":` + value + `,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}`)
}

// post sends a FHIR POST and returns status and body.
func post(ctx context.Context, c *http.Client, url string, body []byte) (int, []byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// exportIDs runs `vitalgate export` and returns how often each resource id appears.
func exportIDs(t testing.TB, dir string, args ...string) map[string]int {
	t.Helper()
	out := run(t, append([]string{"export", "--data", dir}, args...)...)
	ids := make(map[string]int)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("export line is not JSON: %v", err)
		}
		ids[r.ID]++
	}
	return ids
}

// syncBuffer is a bytes.Buffer safe for the process-output goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every 50 ms until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
