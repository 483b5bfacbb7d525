package e2e_test

import (
	"bytes"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIDevIDRecipe runs the README's zero-touch recipe verbatim against a running server:
// the maker's CA is registered with the model, the device registered by its serial number
// enrolls with its IDevID and no secret, and the operational certificate it got sends an
// observation while the IDevID itself is refused. An IDevID of an unregistered device fails
// the handshake, and the server log says why.
func TestIDevIDRecipe(t *testing.T) {
	needTools(t, "bash", "openssl", "curl")
	dir := initDir(t)
	srv := startServer(t, dir)
	work := t.TempDir()
	cmd := exec.Command("bash", "-c", recipe(t, "idevid")) // no -e: the recipe stops on errors itself
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VG_DATA="+dir, "VG_HOST=localhost", "VG_PORT="+strings.TrimPrefix(srv.url, "https://127.0.0.1:"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("IDevID recipe: %v\nstdout: %s\nstderr: %s\nserver: %s", err, stdout.String(), stderr.String(), srv.stderr.String())
	}
	if !strings.Contains(stdout.String(), "CN = PX-0042") && !strings.Contains(stdout.String(), "CN=PX-0042") {
		t.Fatalf("the recipe's certificate is not the device's: %s", stdout.String())
	}
	load := func(certFile, keyFile string) *tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(work, certFile), filepath.Join(work, keyFile))
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	obs := observation("patient-0042", "PX-0042", "71", time.Now())
	if status, body, _, err := post(t.Context(), srv.client(load("device.crt", "device.key")), srv.url+"/fhir/Observation", obs); err != nil || status != 201 {
		t.Fatalf("the enrolled device's observation: %d %s %v", status, body, err)
	}
	if status, _, _, err := post(t.Context(), srv.client(load("idevid.crt", "idevid.key")), srv.url+"/fhir/Observation", obs); err == nil && status != 401 {
		t.Fatalf("the IDevID itself sent data: %d", status)
	}

	// An IDevID of a device nobody registered: the handshake fails, the log says why.
	stranger := exec.Command("bash", "-c", `set -e
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout s.key -subj "/CN=Pulse oximeter/serialNumber=PX-9999" -out s.csr 2>/dev/null
openssl x509 -req -in s.csr -CA maker-ca.crt -CAkey maker-ca.key -days 30 -out s.crt 2>/dev/null`)
	stranger.Dir = work
	if out, err := stranger.CombinedOutput(); err != nil {
		t.Fatalf("making a second IDevID: %v %s", err, out)
	}
	if _, _, _, err := post(t.Context(), srv.client(load("s.crt", "s.key")), srv.url+"/.well-known/est/simpleenroll", []byte("x")); err == nil {
		t.Fatal("an unregistered device's IDevID passed the handshake")
	}
	waitFor(t, 5*time.Second, "the refusal in the server log", func() bool {
		return strings.Contains(srv.stderr.String(), "IDevID of an unregistered device")
	})
}
