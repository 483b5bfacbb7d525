package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpdateRolloutEndToEnd is issue 18's path through the built binary: a release is
// published for one model and rolled out in two groups to simulated devices over mutual
// TLS; the first group's failure pauses the rollout, resume lets the second group update,
// verified through TUF by the device client, and the rollout completes with its
// patch-latency figures in update rollout status.
func TestUpdateRolloutEndToEnd(t *testing.T) {
	dir := initDir(t)
	work := t.TempDir()
	run(t, "model", "add", "--data", dir, "--id", "pump-a", "--binding", "assigned")
	keys := filepath.Join(work, "keys")
	run(t, "update", "keys", "init", "--out", keys)
	fw := filepath.Join(work, "pump.bin")
	if err := os.WriteFile(fw, []byte(strings.Repeat("pump firmware 2.0.0\n", 10_000)), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "update", "publish", "--data", dir, "--keys", keys, "--model", "pump-a", "--version", "2.0.0", fw)
	rootFile := filepath.Join(work, "root.json")
	if err := os.WriteFile(rootFile, []byte(run(t, "update", "root", "--data", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, id := range []string{"pump-1", "pump-2"} {
		secrets[id] = strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", id, "--patient", "pat-"+id, "--model", "pump-a"))
	}
	run(t, "update", "rollout", "--data", dir, "--model", "pump-a", "--version", "2.0.0",
		"--devices", "pump-1", "--devices", "pump-2", "--errors", "0", "--health-window", "0")
	srv := startServer(t, dir)
	simulate := func(id string, extra ...string) string {
		args := append([]string{"simulate", "--server", srv.url, "--ca", filepath.Join(dir, "ca.crt"),
			"--device", id + ":pat-" + id + ":" + secrets[id], "--certs", filepath.Join(work, "certs-"+id),
			"--update", "--model", "pump-a", "--tuf-root", rootFile, "--update-dir", filepath.Join(work, "upd-"+id),
			"--poll", "200ms", "--interval", "200ms", "--duration", "4s"}, extra...)
		out, errOut, err := runErr(args...)
		if err != nil {
			t.Fatalf("simulate %s: %v\n%s\n%s", id, err, out, errOut)
		}
		return errOut
	}
	status := func() string { return run(t, "update", "rollout", "status", "--data", dir, "--model", "pump-a") }

	// Group 1's device installs and then fails its health check: the rollout pauses and
	// group 2 is offered nothing.
	simulate("pump-1", "--update-fail", "health")
	if st := status(); !strings.Contains(st, "paused") {
		t.Fatalf("a failed group did not pause the rollout:\n%s", st)
	}
	simulate("pump-2")
	if st := status(); !strings.Contains(st, "paused") || strings.Contains(st, "completed") {
		t.Fatalf("the paused rollout went on:\n%s", st)
	}
	// Resume: group 2 updates (verified through TUF) and the rollout completes.
	run(t, "update", "rollout", "resume", "--data", dir, "--model", "pump-a")
	simulate("pump-2")
	waitFor(t, 10*time.Second, "the rollout to complete", func() bool { return strings.Contains(status(), "completed") })
	st := status()
	// pump-2 installed (50 % of the targeted devices); pump-1, which failed, is behind.
	if !strings.Contains(st, "patch latency from the rollout's start: 50% ") || strings.Contains(st, "50% -,") ||
		!strings.Contains(st, "failure rate 50%; 1 of 2 devices behind") {
		t.Fatalf("update rollout status shows no patch latency:\n%s", st)
	}
	if us := run(t, "update", "status", "--data", dir, "--model", "pump-a"); !strings.Contains(us, "Patch latency from the release going live") ||
		!strings.Contains(us, "pump-a 2.0.0 (completed): 50% ") || !strings.Contains(us, "100% not yet; failure rate 50%; 1 of 2 devices behind") {
		t.Errorf("update status shows no patch latency:\n%s", us)
	}
	// device list shows what the devices reported: pump-2 runs 2.0.0, pump-1 failed it.
	list := run(t, "device", "list", "--data", dir)
	for _, want := range []string{"2.0.0 passed its health gate", "2.0.0 failed"} {
		if !strings.Contains(list, want) {
			t.Errorf("device list lacks %q:\n%s", want, list)
		}
	}
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, "pump-2 ") && !strings.Contains(line, "pump-a  2.0.0") {
			t.Errorf("device list shows no installed version for pump-2:\n%s", list)
		}
	}
	installed, err := os.ReadFile(filepath.Join(work, "upd-pump-2", "pump-2", "installed.json"))
	if err != nil {
		matches, _ := filepath.Glob(filepath.Join(work, "upd-pump-2", "*", "installed.json"))
		if len(matches) == 0 {
			t.Fatalf("the device recorded no installed version: %v", err)
		}
		installed, _ = os.ReadFile(matches[0])
	}
	if !strings.Contains(string(installed), "2.0.0") {
		t.Fatalf("installed.json: %s", installed)
	}
}
