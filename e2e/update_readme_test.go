package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeUpdateRecipe runs the README's "Updating devices" block verbatim with bash on a
// fresh data dir: a release live at threshold 1, the root rotated to keys of threshold 2, a
// release published by one key holder and made live by the other's signature.
func TestReadmeUpdateRecipe(t *testing.T) {
	needTools(t, "bash")
	work := t.TempDir()
	data := filepath.Join(work, "vg-data")
	if out, err := exec.Command(bin, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	r := recipe(t, "update")
	if strings.Contains(r, "vg-data") {
		t.Error("the update recipe names a data dir of its own instead of VG_DATA")
	}
	cmd := exec.Command("bash", "-c", r)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "VG_DATA="+data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("update recipe: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "waiting for signatures (1 of 2)") || !strings.Contains(stderr.String(), "Signed pump-a/2.2.0/pump-fw-2.2.0.bin (2 of 2 signatures): live.") {
		t.Errorf("the recipe's messages do not show the threshold at work:\n%s", stderr.String())
	}
	root, err := os.ReadFile(filepath.Join(work, "root.json"))
	if err != nil || !json.Valid(bytes.TrimSpace(root)) || !bytes.Contains(root, []byte(`"_type":"root"`)) {
		t.Fatalf("root.json is not root metadata: %v %.80s", err, root)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var last struct {
		Version    string
		Live       bool
		Signatures int
		Threshold  int
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Version != "2.2.0" || !last.Live || last.Signatures != 2 || last.Threshold != 2 {
		t.Fatalf("the last status line is not release 2.2.0 live with 2 of 2 signatures: %v\n%s", err, stdout.String())
	}

	// The Rollouts recipe, verbatim, against the release the update recipe made live.
	for i := 1; i <= 4; i++ {
		if out, err := exec.Command(bin, "device", "add", "--data", data, "--id", fmt.Sprintf("pump-%d", i), "--patient", "patient-1", "--model", "pump-a").CombinedOutput(); err != nil {
			t.Fatalf("device add: %v\n%s", err, out)
		}
	}
	cmd = exec.Command("bash", "-c", recipe(t, "rollout"))
	cmd.Dir, cmd.Env = work, append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"), "VG_DATA="+data)
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("rollout recipe: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "pump-a 2.2.0: active") {
		t.Errorf("the rollout recipe's status does not show the rollout active:\n%s", stdout.String())
	}
}
