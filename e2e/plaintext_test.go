package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNoPlaintextInDataDir writes observations with distinctive patient ids and values, then
// reads every file of the data dir (database, WAL and all) while the server runs and after it
// stops, and fails if any of them appears in plaintext.
func TestNoPlaintextInDataDir(t *testing.T) {
	dir := initDir(t)
	const patient = "zqpatient-8841x"
	const device = "plain-dev-1"
	secret := addDevice(t, dir, device, patient)
	srv := startServer(t, dir)
	cert := srv.enroll(t, device, secret)
	c := srv.client(&cert)
	values := []string{"71.375", "88.625", "93.4375"}
	for _, v := range values {
		status, body, _, err := post(context.Background(), c, srv.url+"/fhir/Observation", observation(patient, device, v, time.Now()))
		if err != nil || status != 201 {
			t.Fatalf("post: %d %v %s", status, err, body)
		}
	}
	// A Bundle too, with a code and display that appear nowhere else.
	bundle := `{"resourceType":"Bundle","type":"batch","entry":[{"fullUrl":"urn:uuid:6b1c1e4a-2f1d-4a51-9a53-0c2f5e9d0a11","request":{"method":"POST","url":"Observation"},"resource":` +
		strings.Replace(string(observation(patient, device, "64.8125", time.Now())), `"display":"Heart rate"`, `"display":"Pulse rate zqdisplay"`, 1) + `}]}`
	status, body, _, err := post(context.Background(), c, srv.url+"/fhir", []byte(bundle))
	if err != nil || status != 200 {
		t.Fatalf("post bundle: %d %v %s", status, err, body)
	}
	secrets := append([]string{patient, "Patient/" + patient, "8867-4", "zqdisplay", "64.8125", "beats/minute"}, values...)
	check := func(when string) {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, s := range secrets {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("%s: %q found in plaintext in %s", when, s, path)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	check("while serving")
	srv.kill()
	check("after kill -9")
	srv = startServer(t, dir)
	srv.stop(t)
	check("after a clean stop")

	// And the data is all there, decrypted, through export.
	out := run(t, "export", "--data", dir, "--patient", patient)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(values)+1 {
		t.Fatalf("export gave %d resources, want %d", len(lines), len(values)+1)
	}
	for _, l := range lines {
		var o map[string]any
		if err := json.Unmarshal([]byte(l), &o); err != nil || o["resourceType"] != "Observation" {
			t.Fatalf("export line %q is not an Observation", l)
		}
	}
}

// TestKeyRotationKeepsDataReadable rotates the key-encryption key between writes and checks
// that old and new data stay readable and that no data key is left under the old key.
func TestKeyRotationKeepsDataReadable(t *testing.T) {
	dir := initDir(t)
	secret := addDevice(t, dir, "rot-dev", "rot-pat")
	srv := startServer(t, dir)
	cert := srv.enroll(t, "rot-dev", secret)
	c := srv.client(&cert)
	for i := 0; i < 3; i++ {
		if status, body, _, err := post(context.Background(), c, srv.url+"/fhir/Observation", observation("rot-pat", "rot-dev", "70", time.Now())); err != nil || status != 201 {
			t.Fatalf("post: %d %v %s", status, err, body)
		}
	}
	srv.stop(t)
	run(t, "keys", "rotate", "--data", dir)
	if _, err := os.Stat(filepath.Join(dir, "keys", "kek-2.key")); err != nil {
		t.Fatalf("no new key-encryption key: %v", err)
	}
	if got := exportIDs(t, dir); len(got) != 3 {
		t.Fatalf("after rotation export gives %d resources, want 3", len(got))
	}
	// Every data key is now wrapped under kek-2: the old key can be retired.
	if err := os.Rename(filepath.Join(dir, "keys", "kek-1.key"), filepath.Join(t.TempDir(), "kek-1.key")); err != nil {
		t.Fatal(err)
	}
	if got := exportIDs(t, dir); len(got) != 3 {
		t.Fatalf("without kek-1 export gives %d resources, want 3", len(got))
	}
	srv = startServer(t, dir)
	c = srv.client(&cert)
	for i := 0; i < 2; i++ {
		if status, body, _, err := post(context.Background(), c, srv.url+"/fhir/Observation", observation("rot-pat", "rot-dev", "71", time.Now())); err != nil || status != 201 {
			t.Fatalf("post after rotation: %d %v %s", status, err, body)
		}
	}
	srv.stop(t)
	if got := exportIDs(t, dir); len(got) != 5 {
		t.Fatalf("export gives %d resources, want 5", len(got))
	}
}
