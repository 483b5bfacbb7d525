package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	vgnode "github.com/vitalgate/vitalgate/node"
)

// TestGoldenPatientErasure: the help of every patient subcommand; a request prints its id
// alone on standard output; its requester cannot approve it; a legal hold blocks the
// approval until released; another operator's approval erases the patient and says what to
// do on the other nodes; a second approval, an unknown request and a missing flag are
// refused in plain words. The operator is $USER.
func TestGoldenPatientErasure(t *testing.T) {
	tmp := t.TempDir()
	dir := tmp + "/data"
	if code, _, errOut := runAt("init", "--data", dir); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	seedPatients(t, dir, "patient-0001", "patient-0002")
	transcript := ""
	reqID := ""
	run := func(user string, args ...string) {
		t.Setenv("USER", user)
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, "REQ", reqID)
		}
		code, out, errOut := runAt(args...)
		if args[0] == "patient" && len(args) > 1 && args[1] == "erase" && strings.HasPrefix(out, "er-") && reqID == "" {
			reqID = strings.TrimSpace(out)
		}
		got := fmt.Sprintf("$ USER=%s vitalgate %s\nexit %d\n--- stdout\n%s--- stderr\n%s", user, strings.Join(args, " "), code, out, errOut)
		if reqID != "" {
			got = strings.ReplaceAll(got, reqID, "er-REQUEST")
		}
		transcript += got
	}
	run("alice", "patient", "--help")
	run("alice", "patient", "erase", "--help")
	run("alice", "patient", "hold", "--help")
	run("alice", "patient", "release-hold", "--help")
	run("alice", "patient", "erase", "--data", dir, "--id", "patient-0001")
	run("alice", "patient", "erase", "--data", dir, "--id", "patient-0001", "--reason", "the patient's request under GDPR Art. 17")
	run("alice", "patient", "erase", "--data", dir, "--approve", "REQ")
	run("carol", "patient", "hold", "--data", dir, "--id", "patient-0001", "--reason", "litigation")
	run("bob", "patient", "erase", "--data", dir, "--approve", "REQ")
	run("carol", "patient", "release-hold", "--data", dir, "--id", "patient-0001")
	run("carol", "patient", "release-hold", "--data", dir, "--id", "patient-0001")
	run("bob", "patient", "erase", "--data", dir, "--approve", "REQ")
	run("bob", "patient", "erase", "--data", dir, "--approve", "REQ")
	run("bob", "patient", "erase", "--data", dir, "--approve", "er-0000000000000000")
	if !regexp.MustCompile(`^er-[0-9a-f]{16}$`).MatchString(reqID) {
		t.Fatalf("request id %q", reqID)
	}
	golden(t, "patient-erasure", strings.ReplaceAll(transcript, dir, "DIR"))
	code, _, errOut := runAt("audit", "verify", "--data", dir)
	if code != 0 {
		t.Fatalf("audit verify after the erasure: %s", errOut)
	}
}

// seedPatients stores one sealed Observation for each patient, as ingest would.
func seedPatients(t *testing.T, dir string, patients ...string) {
	t.Helper()
	ctx := context.Background()
	n, err := vgnode.Open(ctx, dir, vgnode.Env{Now: func() time.Time { return goldenClock }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, p := range patients {
		idx := n.Vault.PatientIndex(p)
		body, err := n.Vault.Seal(ctx, idx, "Observation", "obs-"+p, 1, []byte(`{"resourceType":"Observation"}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Store.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: "obs-" + p, Version: 1,
			Site: vitalgate.DefaultSite, PatientIndex: idx, Body: body, LastUpdated: goldenClock, Effective: goldenClock}}); err != nil {
			t.Fatal(err)
		}
	}
}
