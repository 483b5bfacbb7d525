package e2e_test

import (
	"context"
	"testing"
	"time"
)

// TestDeviceAssignFromCLI: reassigning a device with `vitalgate device assign` takes effect
// for its next observation, on a running server.
func TestDeviceAssignFromCLI(t *testing.T) {
	dir := initDir(t)
	secret := addDevice(t, dir, "as-dev", "as-old")
	srv := startServer(t, dir)
	cert := srv.enroll(t, "as-dev", secret)
	c := srv.client(&cert)
	ctx := context.Background()
	if status, body, _, _ := post(ctx, c, srv.url+"/fhir/Observation", observation("as-old", "as-dev", "70", time.Now())); status != 201 {
		t.Fatalf("before: %d %s", status, body)
	}
	run(t, "device", "assign", "--data", dir, "--id", "as-dev", "--patient", "as-new")
	// Readings bind to the patient assigned when they were measured, at the second the
	// timestamp gives: one measured in the second after the reassignment is the new patient's.
	after := time.Now().Add(time.Second)
	if status, _, _, _ := post(ctx, c, srv.url+"/fhir/Observation", observation("as-old", "as-dev", "70", after)); status != 403 {
		t.Fatalf("old patient after reassignment: %d, want 403", status)
	}
	if status, body, _, _ := post(ctx, c, srv.url+"/fhir/Observation", observation("as-new", "as-dev", "70", after)); status != 201 {
		t.Fatalf("new patient after reassignment: %d %s", status, body)
	}
}
