package e2e_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/updateclient"
)

// TestUpdatesAcrossPostgresNodes: two `vitalgate serve` nodes on one PostgreSQL database
// (copies of one data dir). A release is published and rolled out through node A's data dir
// while both run; a device enrolled through node B is offered it by B, verifies it through
// TUF and streams the target from B over mutual TLS, byte for byte what was published.
func TestUpdatesAcrossPostgresNodes(t *testing.T) {
	dsn, schema := testPostgres(t)
	t.Setenv("VITALGATE_E2E_DSN", dsn)
	dirA := filepath.Join(t.TempDir(), "node-a")
	run(t, "init", "--data", dirA, "--store", "env:VITALGATE_E2E_DSN", "--schema", schema, "--json")
	run(t, "model", "add", "--data", dirA, "--id", "pump-a", "--binding", "assigned")
	secret := strings.TrimSpace(run(t, "device", "add", "--data", dirA, "--id", "pump-1", "--patient", "pat-1", "--model", "pump-a"))
	dirB := copyDir(t, dirA) // the same keys (online update keys included), CA and store.json
	startServer(t, dirA)
	b := startServer(t, dirB)

	work := t.TempDir()
	keys := filepath.Join(work, "keys")
	run(t, "update", "keys", "init", "--out", keys)
	fw := bytes.Repeat([]byte("pump firmware 3.0.0 across nodes\n"), 100_000) // 3.3 MB: four chunks
	fwFile := filepath.Join(work, "pump.bin")
	if err := os.WriteFile(fwFile, fw, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "update", "publish", "--data", dirA, "--keys", keys, "--model", "pump-a", "--version", "3.0.0", fwFile)
	run(t, "update", "rollout", "--data", dirA, "--model", "pump-a", "--version", "3.0.0", "--health-window", "0")
	root := []byte(run(t, "update", "root", "--data", dirA))

	cert := b.enroll(t, "pump-1", secret)
	httpc := b.client(&cert)
	httpc.Timeout = 0
	state := t.TempDir()
	c, err := updateclient.New(updateclient.Config{ServerURL: b.url, HTTPClient: httpc, TrustedRoot: root,
		MetadataDir: filepath.Join(state, "metadata"), TargetsDir: filepath.Join(state, "targets"), Model: "pump-a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	o, ok, err := c.Offer(ctx)
	if err != nil || !ok || o.Version != "3.0.0" {
		t.Fatalf("node B's offer: %+v %v %v", o, ok, err)
	}
	tgt, err := c.Verify(ctx, o)
	if err != nil {
		t.Fatalf("verify through node B: %v", err)
	}
	p, err := c.Download(ctx, tgt)
	if err != nil {
		t.Fatalf("download through node B: %v", err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, fw) {
		t.Fatalf("the image from node B differs from the one published through node A (%v)", err)
	}
	if err := c.Report(ctx, updateclient.Report{Version: "3.0.0", State: updateclient.StateHealthy}); err != nil {
		t.Fatal(err)
	}
	if st := run(t, "update", "rollout", "status", "--data", dirA, "--model", "pump-a"); !strings.Contains(st, "completed") {
		t.Errorf("node B's report did not complete the rollout seen through node A:\n%s", st)
	}
}
