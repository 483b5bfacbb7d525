package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
)

// TestKeysRotateWhileServing is finding 9 of issue 13 through the commands: a node opened
// as serve opens it keeps working across `vitalgate keys rotate` on its data dir. A patient
// keyed by another command (device add) before the rotation, and so not cached by the
// server, used to get `unknown key id "kek-2"` until restart.
func TestKeysRotateWhileServing(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := (&Main{Stdout: &out, Stderr: &errOut}).Run(ctx, args); code != 0 {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		return errOut.String()
	}
	run("init", "--data", dir)
	server, err := (&Main{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}}).openDataDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	v := server.vault
	old, err := v.Seal(ctx, v.PatientIndex("pat-1"), "Observation", "o1", 1, []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	run("device", "add", "--data", dir, "--id", "dev-2", "--patient", "pat-2")
	if msg := run("keys", "rotate", "--data", dir); !strings.Contains(msg, "without a restart") || !strings.Contains(msg, "kek-2.key") {
		t.Errorf("keys rotate guidance: %q", msg)
	}
	if _, err := v.Seal(ctx, v.PatientIndex("pat-2"), "Observation", "o2", 1, []byte("after")); err != nil {
		t.Fatalf("write for pat-2 after keys rotate, without restart: %v", err)
	}
	got, err := v.Open(ctx, vitalgate.SealedResource{Type: "Observation", ID: "o1", Version: 1, PatientIndex: v.PatientIndex("pat-1"), Body: old})
	if err != nil || string(got) != "before" {
		t.Fatalf("old data after rotation: %q, %v", got, err)
	}
}
