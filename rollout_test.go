package vitalgate_test

import (
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// TestPrepareRolloutWrite: the checks both stores make before a rollout write, and the zero
// times set to now in a copy, the caller's write left as it was.
func TestPrepareRolloutWrite(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	earlier := now.Add(-time.Hour)
	valid := func() vitalgate.RolloutWrite {
		return vitalgate.RolloutWrite{
			Rollout: &vitalgate.Rollout{ID: "r1", Model: "m", Version: "2", State: vitalgate.RolloutActive,
				Groups: []vitalgate.RolloutGroup{{Percent: 10, SuccessPercent: 90, ErrorPercent: 10}}, CreatedAt: earlier},
			Create:   true,
			Devices:  []vitalgate.DeviceUpdate{{RolloutID: "r1", DeviceID: "d1", State: vitalgate.UpdateAssigned}},
			Versions: []vitalgate.DeviceVersion{{DeviceID: "d1", Model: "m", Version: "1"}},
		}
	}
	w := valid()
	got, groups, err := vitalgate.PrepareRolloutWrite(w, now)
	if err != nil {
		t.Fatal(err)
	}
	if groups == "" || got.Rollout.CreatedAt != earlier || got.Rollout.UpdatedAt != now ||
		got.Devices[0].UpdatedAt != now || got.Versions[0].UpdatedAt != now {
		t.Fatalf("prepared: groups %q, rollout %v/%v, device %v, version %v", groups,
			got.Rollout.CreatedAt, got.Rollout.UpdatedAt, got.Devices[0].UpdatedAt, got.Versions[0].UpdatedAt)
	}
	if !w.Rollout.UpdatedAt.IsZero() || !w.Devices[0].UpdatedAt.IsZero() || !w.Versions[0].UpdatedAt.IsZero() {
		t.Fatal("PrepareRolloutWrite changed the caller's write")
	}

	for name, spoil := range map[string]func(*vitalgate.RolloutWrite){
		"rollout without groups":       func(w *vitalgate.RolloutWrite) { w.Rollout.Groups = nil },
		"device update without device": func(w *vitalgate.RolloutWrite) { w.Devices[0].DeviceID = "" },
		"version without version":      func(w *vitalgate.RolloutWrite) { w.Versions[0].Version = "" },
	} {
		w := valid()
		spoil(&w)
		if _, _, err := vitalgate.PrepareRolloutWrite(w, now); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Errorf("%s: err = %v, want EINVALID", name, err)
		}
	}
}
