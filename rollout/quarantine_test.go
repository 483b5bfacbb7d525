package rollout_test

import (
	"context"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rollout"
)

// TestQuarantinedDeviceIsOfferedNothing: a quarantined device's rollout is paused for it (it
// is offered nothing) while the others' goes on, and it is offered the release again once
// released.
func TestQuarantinedDeviceIsOfferedNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := e.devices("vm", "VM-100", "default", 2)
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", HealthWindow: -1,
		Groups: []vitalgate.RolloutGroup{{Percent: 100}}}); err != nil {
		t.Fatal(err)
	}
	if !e.offered(ids[0]) || !e.offered(ids[1]) {
		t.Fatal("the rollout offers nothing before the quarantine")
	}
	if err := e.store.QuarantineDevice(ctx, ids[0], e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if e.offered(ids[0]) {
		t.Error("a quarantined device is offered the release")
	}
	if !e.offered(ids[1]) {
		t.Error("the quarantine of one device paused the others'")
	}
	if err := e.store.ReleaseDevice(ctx, ids[0], e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if !e.offered(ids[0]) {
		t.Error("a released device is not offered the release again")
	}
}
