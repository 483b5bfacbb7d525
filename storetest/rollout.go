package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// rolloutTests are the conformance tests of vitalgate.RolloutStore (migrations sqlite 0015
// and 0023, postgres 0012 and 0020): rollouts with one live per model and optimistic revisions, the devices'
// rows, installed versions, maintenance windows, and audit entries atomic with each write.
func (s *suite) rolloutTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Rollout/CreateGetLatest", s.testRolloutCreate},
		{"Rollout/OneLivePerModel", s.testRolloutOneLive},
		{"Rollout/Revision", s.testRolloutRevision},
		{"Rollout/DevicesAndVersions", s.testRolloutDevices},
		{"Rollout/MaintenanceWindows", s.testMaintenanceWindows},
	}
}

// rolloutStore opens a store that must implement vitalgate.RolloutStore.
func (s *suite) rolloutStore(t *testing.T) (vitalgate.Store, vitalgate.RolloutStore) {
	t.Helper()
	st := s.store(t)
	rs, ok := st.(vitalgate.RolloutStore)
	if !ok {
		t.Fatalf("%T does not implement vitalgate.RolloutStore", st)
	}
	return st, rs
}

func testRollout(id, model string, minute int) vitalgate.Rollout {
	return vitalgate.Rollout{ID: id, Model: model, Version: "2.0.0", Target: model + "/2.0.0/fw.bin",
		State: vitalgate.RolloutActive, Groups: []vitalgate.RolloutGroup{
			{Devices: []string{"d-1"}, SuccessPercent: 100, ErrorPercent: 0, StartedAt: at(minute)},
			{Percent: 100, SuccessPercent: 90, ErrorPercent: 10, Approval: true}},
		HealthWindow: 30 * time.Minute, Silence: 5 * time.Minute, CreatedBy: "op",
		CreatedAt: at(minute), UpdatedAt: at(minute)}
}

func rolloutEntry(minute int) []byte {
	return audit.Entry{Time: at(minute), Action: "E", Type: "update", Outcome: "0", AgentType: audit.AgentOperator, AgentID: "op"}.Marshal()
}

func (s *suite) testRolloutCreate(t *testing.T) {
	st, rs := s.rolloutStore(t)
	r := testRollout("r-1", "VM-100", 1)
	must(t, "WriteRollout(create)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r, Create: true}, rolloutEntry(1)))
	if n := auditSize(t, st); n != 1 {
		t.Errorf("audit size %d after a create with one entry, want 1", n)
	}
	got, err := rs.Rollout(ctxT(t), "r-1")
	must(t, "Rollout", err)
	if got.Model != r.Model || got.Version != r.Version || got.Target != r.Target || got.State != r.State ||
		got.HealthWindow != r.HealthWindow || got.Silence != r.Silence || got.CreatedBy != "op" || got.Revision != 1 ||
		len(got.Groups) != 2 || !slices.Equal(got.Groups[0].Devices, []string{"d-1"}) || got.Groups[1].Percent != 100 ||
		!got.Groups[1].Approval || got.Groups[1].SuccessPercent != 90 || got.Groups[1].ErrorPercent != 10 {
		t.Errorf("Rollout = %+v, want %+v", got, r)
	}
	checkTime(t, "Groups[0].StartedAt", got.Groups[0].StartedAt, at(1))
	checkTime(t, "CreatedAt", got.CreatedAt, at(1))
	_, err = rs.Rollout(ctxT(t), "nope")
	wantCode(t, "Rollout(unknown)", err, vitalgate.ENOTFOUND)
	_, err = rs.LatestRollout(ctxT(t), "other-model")
	wantCode(t, "LatestRollout(no rollout)", err, vitalgate.ENOTFOUND)

	// A second, later rollout of the model once the first is over; another model's.
	r.State = vitalgate.RolloutCompleted
	must(t, "WriteRollout(complete)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r}))
	r2 := testRollout("r-2", "VM-100", 5)
	must(t, "WriteRollout(second)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r2, Create: true}))
	r3 := testRollout("r-3", "PUMP", 9)
	r3.Site = "north" // one site's devices only (sqlite 0023, postgres 0020)
	must(t, "WriteRollout(other model)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r3, Create: true}))
	if got, err := rs.LatestRollout(ctxT(t), "PUMP"); err != nil || got.Site != "north" {
		t.Errorf("LatestRollout(PUMP) = %+v, %v; want site north", got, err)
	}
	if got, err := rs.Rollout(ctxT(t), "r-2"); err != nil || got.Site != "" {
		t.Errorf("Rollout(r-2) = %+v, %v; want every site", got, err)
	}
	latest, err := rs.LatestRollout(ctxT(t), "VM-100")
	must(t, "LatestRollout", err)
	if latest.ID != "r-2" {
		t.Errorf("LatestRollout = %s, want r-2", latest.ID)
	}
	ids := func(rs []vitalgate.Rollout) (out []string) {
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	all, err := rs.Rollouts(ctxT(t), "", 10)
	must(t, "Rollouts", err)
	if got := ids(all); !slices.Equal(got, []string{"r-3", "r-2", "r-1"}) {
		t.Errorf("Rollouts = %v, want newest first", got)
	}
	some, err := rs.Rollouts(ctxT(t), "VM-100", 1)
	must(t, "Rollouts(model, 1)", err)
	if got := ids(some); !slices.Equal(got, []string{"r-2"}) {
		t.Errorf("Rollouts(VM-100, 1) = %v", got)
	}
	bad := testRollout("r-bad", "VM-100", 1)
	bad.Groups = nil
	wantCode(t, "WriteRollout(no group)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &bad, Create: true}), vitalgate.EINVALID)
}

func (s *suite) testRolloutOneLive(t *testing.T) {
	st, rs := s.rolloutStore(t)
	r := testRollout("r-1", "VM-100", 1)
	must(t, "WriteRollout", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r, Create: true}))
	before := auditSize(t, st)
	for _, state := range []vitalgate.RolloutState{vitalgate.RolloutActive, vitalgate.RolloutPaused, vitalgate.RolloutWaiting} {
		r.State = state
		must(t, "WriteRollout("+string(state)+")", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r}))
		r2 := testRollout("r-2", "VM-100", 2)
		wantCode(t, "second live rollout while the first is "+string(state),
			rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r2, Create: true}, rolloutEntry(2)), vitalgate.ECONFLICT)
	}
	if n := auditSize(t, st); n != before {
		t.Errorf("a refused write appended %d audit entries", n-before)
	}
	wantCode(t, "same id again", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r, Create: true}), vitalgate.ECONFLICT)
	r.State = vitalgate.RolloutAborted
	must(t, "WriteRollout(abort)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r}))
	r2 := testRollout("r-2", "VM-100", 2)
	must(t, "a new rollout once the first is aborted", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r2, Create: true}))
}

func (s *suite) testRolloutRevision(t *testing.T) {
	st, rs := s.rolloutStore(t)
	r := testRollout("r-1", "VM-100", 1)
	must(t, "WriteRollout", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r, Create: true}))
	a, b := r, r // two evaluations that read revision 1
	a.State, a.Reason, a.Current, a.UpdatedAt = vitalgate.RolloutPaused, "paused by op", 1, at(3)
	must(t, "WriteRollout(revision 1)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &a}))
	before := auditSize(t, st)
	b.State = vitalgate.RolloutCompleted
	u := vitalgate.DeviceUpdate{RolloutID: "r-1", DeviceID: "d-1", State: vitalgate.UpdateHealthy}
	wantCode(t, "WriteRollout(stale revision)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &b, Devices: []vitalgate.DeviceUpdate{u}}, rolloutEntry(3)), vitalgate.ECONFLICT)
	if n := auditSize(t, st); n != before {
		t.Errorf("a refused write appended %d audit entries", n-before)
	}
	if _, err := rs.DeviceUpdate(ctxT(t), "r-1", "d-1"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("the device row of a refused write was kept: %v", err)
	}
	got, err := rs.Rollout(ctxT(t), "r-1")
	must(t, "Rollout", err)
	if got.State != vitalgate.RolloutPaused || got.Reason != "paused by op" || got.Current != 1 || got.Revision != 2 {
		t.Errorf("Rollout = %+v, want paused at revision 2", got)
	}
	checkTime(t, "UpdatedAt", got.UpdatedAt, at(3))
	missing := testRollout("ghost", "VM-100", 1)
	wantCode(t, "WriteRollout(update of no rollout)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &missing}), vitalgate.ENOTFOUND)
}

func (s *suite) testRolloutDevices(t *testing.T) {
	_, rs := s.rolloutStore(t)
	r := testRollout("r-1", "VM-100", 1)
	devs := []vitalgate.DeviceUpdate{
		{RolloutID: "r-1", DeviceID: "d-2", Group: 1, State: vitalgate.UpdateAssigned, UpdatedAt: at(1)},
		{RolloutID: "r-1", DeviceID: "d-1", Group: 0, State: vitalgate.UpdateAssigned, UpdatedAt: at(1)},
	}
	must(t, "WriteRollout", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Rollout: &r, Create: true, Devices: devs}))
	// d-1 reports installed: its row is replaced and its version recorded, together.
	up := vitalgate.DeviceUpdate{RolloutID: "r-1", DeviceID: "d-1", Group: 0, State: vitalgate.UpdateInstalled, InstalledAt: at(4), UpdatedAt: at(4)}
	must(t, "WriteRollout(report)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Devices: []vitalgate.DeviceUpdate{up},
		Versions: []vitalgate.DeviceVersion{{DeviceID: "d-1", Model: "VM-100", Version: "2.0.0", UpdatedAt: at(4)}}}))
	got, err := rs.DeviceUpdate(ctxT(t), "r-1", "d-1")
	must(t, "DeviceUpdate", err)
	if got.State != vitalgate.UpdateInstalled || got.Group != 0 || !got.HealthyAt.IsZero() {
		t.Errorf("DeviceUpdate = %+v", got)
	}
	checkTime(t, "InstalledAt", got.InstalledAt, at(4))
	up.State, up.HealthyAt, up.DoneAt, up.Reason = vitalgate.UpdateFailed, at(5), at(6), "went silent"
	must(t, "WriteRollout(fail)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{Devices: []vitalgate.DeviceUpdate{up}}))
	all, err := rs.RolloutDevices(ctxT(t), "r-1")
	must(t, "RolloutDevices", err)
	if len(all) != 2 || all[0].DeviceID != "d-1" || all[1].DeviceID != "d-2" || all[0].State != vitalgate.UpdateFailed ||
		all[0].Reason != "went silent" || all[1].Group != 1 {
		t.Fatalf("RolloutDevices = %+v", all)
	}
	checkTime(t, "DoneAt", all[0].DoneAt, at(6))
	checkTime(t, "HealthyAt", all[0].HealthyAt, at(5))
	if none, err := rs.RolloutDevices(ctxT(t), "nope"); err != nil || len(none) != 0 {
		t.Errorf("RolloutDevices(unknown) = %v, %v", none, err)
	}
	v, err := rs.DeviceVersion(ctxT(t), "d-1")
	must(t, "DeviceVersion", err)
	if v.Version != "2.0.0" || v.Model != "VM-100" {
		t.Errorf("DeviceVersion = %+v", v)
	}
	must(t, "WriteRollout(newer version)", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{
		Versions: []vitalgate.DeviceVersion{{DeviceID: "d-1", Model: "VM-100", Version: "1.9.0", Previous: "2.0.0", UpdatedAt: at(7)}}}))
	if v, _ := rs.DeviceVersion(ctxT(t), "d-1"); v.Version != "1.9.0" || v.Previous != "2.0.0" {
		t.Errorf("DeviceVersion after a rollback = %q, want 1.9.0", v.Version)
	}
	_, err = rs.DeviceVersion(ctxT(t), "d-2")
	wantCode(t, "DeviceVersion(never reported)", err, vitalgate.ENOTFOUND)
	wantCode(t, "device row without a device", rs.WriteRollout(ctxT(t), vitalgate.RolloutWrite{
		Devices: []vitalgate.DeviceUpdate{{RolloutID: "r-1", State: vitalgate.UpdateAssigned}}}), vitalgate.EINVALID)
}

func (s *suite) testMaintenanceWindows(t *testing.T) {
	st, rs := s.rolloutStore(t)
	_, err := rs.MaintenanceWindow(ctxT(t), "default")
	wantCode(t, "MaintenanceWindow(none)", err, vitalgate.ENOTFOUND)
	w := vitalgate.MaintenanceWindow{Site: "default", Start: 2 * time.Hour, Length: 90 * time.Minute,
		Days: []time.Weekday{time.Monday, time.Saturday}, Zone: "Europe/Berlin", UpdatedAt: at(1)}
	must(t, "SetMaintenanceWindow", rs.SetMaintenanceWindow(ctxT(t), w, rolloutEntry(1)))
	must(t, "SetMaintenanceWindow(b)", rs.SetMaintenanceWindow(ctxT(t), vitalgate.MaintenanceWindow{Site: "b", Start: 0, Length: 24 * time.Hour}))
	got, err := rs.MaintenanceWindow(ctxT(t), "default")
	must(t, "MaintenanceWindow", err)
	if got.Start != w.Start || got.Length != w.Length || !slices.Equal(got.Days, w.Days) || got.Zone != w.Zone {
		t.Errorf("MaintenanceWindow = %+v, want %+v", got, w)
	}
	w.Start = 3 * time.Hour
	must(t, "SetMaintenanceWindow(replace)", rs.SetMaintenanceWindow(ctxT(t), w))
	all, err := rs.MaintenanceWindows(ctxT(t))
	must(t, "MaintenanceWindows", err)
	if len(all) != 2 || all[0].Site != "b" || all[1].Start != 3*time.Hour {
		t.Errorf("MaintenanceWindows = %+v", all)
	}
	before := auditSize(t, st)
	wantCode(t, "window longer than a day", rs.SetMaintenanceWindow(ctxT(t), vitalgate.MaintenanceWindow{Site: "b", Length: 25 * time.Hour}, rolloutEntry(2)), vitalgate.EINVALID)
	if n := auditSize(t, st); n != before {
		t.Errorf("a refused window appended %d audit entries", n-before)
	}
	must(t, "SetMaintenanceWindow(remove)", rs.SetMaintenanceWindow(ctxT(t), vitalgate.MaintenanceWindow{Site: "b"}))
	_, err = rs.MaintenanceWindow(ctxT(t), "b")
	wantCode(t, "MaintenanceWindow(removed)", err, vitalgate.ENOTFOUND)
}
