package rollout_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/rollout"
	"github.com/vitalgate/vitalgate/sqlite"
)

// releases is an in-test release repository: the approved releases of each model.
type releases struct {
	mu       sync.Mutex
	approved map[string]string // MODEL/VERSION -> target
}

func (r *releases) Approved(_ context.Context, model, version string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.approved[model+"/"+version]; ok {
		return t, nil
	}
	return "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no approved release %s %s", model, version)
}

func (r *releases) approve(model, version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.approved[model+"/"+version] = model + "/" + version + "/firmware.bin"
}

func (r *releases) withdraw(model, version string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.approved, model+"/"+version)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t        testing.TB
	store    *sqlite.DB
	svc      *rollout.Service
	releases *releases
	clock    *clock
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)} // a Wednesday
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	rel := &releases{approved: map[string]string{}}
	rel.approve("VM-100", "2.0.0")
	return &env{t: t, store: db, releases: rel, clock: c,
		svc: &rollout.Service{Store: db, Releases: rel, Now: c.Now}}
}

// devices registers n active devices of model in site, named prefix-0..n-1.
func (e *env) devices(prefix, model, site string, n int) []string {
	e.t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if err := e.store.CreateDevice(context.Background(), vitalgate.Device{ID: id, Site: site, Model: model,
			Status: vitalgate.DeviceActive, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// data records what ingest records for a device's message: stored (outcome 0) or refused
// (outcome 4), the signal of the health gate.
func (e *env) data(device string, outcome string) {
	e.t.Helper()
	entry := audit.Entry{Time: e.clock.Now(), Action: audit.ActionCreate, Type: "rest", Subtype: "create",
		AgentType: audit.AgentDevice, AgentID: device, Outcome: outcome}
	if outcome == audit.OutcomeSuccess {
		entry.Resources = []string{"Observation/x"}
	}
	if _, err := e.store.AppendAudit(context.Background(), entry.Marshal()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) report(device, version, state string) {
	e.t.Helper()
	if err := e.svc.Report(context.Background(), device, rollout.Report{Version: version, State: state}); err != nil {
		e.t.Fatalf("report %s %s %s: %v", device, version, state, err)
	}
}

func (e *env) offered(device string) bool {
	e.t.Helper()
	o, ok, err := e.svc.Offer(context.Background(), device)
	if err != nil {
		e.t.Fatalf("offer %s: %v", device, err)
	}
	if ok && (o.Target != o.Model+"/"+o.Version+"/firmware.bin") {
		e.t.Fatalf("offer %s: %+v is not the approved target", device, o)
	}
	return ok
}

func (e *env) tick() {
	e.t.Helper()
	if err := e.svc.Tick(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) rollout(model string) vitalgate.Rollout {
	e.t.Helper()
	r, err := e.store.LatestRollout(context.Background(), model)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) members(r vitalgate.Rollout, group int) []string {
	e.t.Helper()
	rows, err := e.store.RolloutDevices(context.Background(), r.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, u := range rows {
		if u.Group == group {
			ids = append(ids, u.DeviceID)
		}
	}
	return ids
}

// auditDescs returns the OutcomeDesc of every "update" entry, in log order.
func (e *env) auditDescs() []string {
	e.t.Helper()
	var out []string
	err := e.store.AuditEntries(context.Background(), 0, 1<<62, func(rec vitalgate.AuditRecord) error {
		en, err := audit.UnmarshalEntry(rec.Data)
		if err == nil && en.Type == "update" {
			out = append(out, en.Subtype+": "+en.OutcomeDesc)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if vitalgate.ErrorCode(err) != code {
		t.Fatalf("%s: %v (code %s), want %s", what, err, vitalgate.ErrorCode(err), code)
	}
}

// TestTwoGroupsPauseResume: the first group's failure passes the error threshold and
// pauses the rollout (nothing is offered); resume accepts the failure, the rest of the
// group passes its health gate, the second group starts and the rollout completes.
func TestTwoGroupsPauseResume(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.devices("vm", "VM-100", "default", 10)
	e.devices("pump", "PUMP-1", "default", 2)
	r, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", HealthWindow: time.Hour, Silence: 20 * time.Minute,
		Groups: []vitalgate.RolloutGroup{{Percent: 50, ErrorPercent: 10, SuccessPercent: 100}, {Percent: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	first, second := e.members(r, 0), e.members(r, 1)
	if len(first) != 5 || len(second) != 5 {
		t.Fatalf("groups of %d and %d devices, want 5 and 5", len(first), len(second))
	}
	for _, d := range first {
		if !e.offered(d) {
			t.Fatalf("%s (group 1) is offered nothing", d)
		}
	}
	for _, d := range append(slices.Clone(second), "pump-0") {
		if e.offered(d) {
			t.Fatalf("%s (not in a started group) is offered the release", d)
		}
	}
	for _, d := range first[:4] {
		e.report(d, "2.0.0", "downloading")
		e.report(d, "2.0.0", "installed")
		e.report(d, "2.0.0", "healthy")
	}
	if err := e.svc.Report(ctx, first[4], rollout.Report{Version: "2.0.0", State: "failed", Reason: "flash write error"}); err != nil {
		t.Fatal(err)
	}
	if got := e.rollout("VM-100"); got.State != vitalgate.RolloutPaused || !strings.Contains(got.Reason, "1 of 5 devices failed") {
		t.Fatalf("after 1 of 5 failed (threshold 10%%): %s %q, want paused", got.State, got.Reason)
	}
	if e.offered(second[0]) || e.offered(first[0]) {
		t.Fatal("a paused rollout offers the release")
	}
	if _, err := e.svc.Resume(ctx, "op", "VM-100"); err != nil {
		t.Fatal(err)
	}
	// The four keep sending valid data through the health window.
	for range 4 {
		e.clock.Add(15 * time.Minute)
		for _, d := range first[:4] {
			e.data(d, audit.OutcomeSuccess)
		}
		e.tick()
	}
	got := e.rollout("VM-100")
	if got.State != vitalgate.RolloutActive || got.Current != 1 {
		t.Fatalf("after group 1 passed: %s, group %d, want active in group 2 (%q)", got.State, got.Current+1, got.Reason)
	}
	for _, d := range second {
		if !e.offered(d) {
			t.Fatalf("%s (group 2, started) is offered nothing", d)
		}
		e.report(d, "2.0.0", "installed")
		e.report(d, "2.0.0", "healthy")
	}
	for range 5 {
		e.clock.Add(15 * time.Minute)
		for _, d := range second {
			e.data(d, audit.OutcomeSuccess)
		}
		e.tick()
	}
	if got := e.rollout("VM-100"); got.State != vitalgate.RolloutCompleted {
		t.Fatalf("after group 2 passed: %s %q, want completed", got.State, got.Reason)
	}
	if e.offered(first[0]) {
		t.Fatal("a device that installed the release is offered it again")
	}
	if e.offered(first[4]) {
		t.Fatal("a device that failed the release is offered it again")
	}
	descs := strings.Join(e.auditDescs(), "\n")
	for _, want := range []string{"rollout-start: VM-100 2.0.0 to 10 devices in 2 groups", "rollout-pause: 2.0.0: group 1: 1 of 5 devices failed",
		"rollout-resume: VM-100 2.0.0: resumed, 1 failures of group 1 accepted", "rollout-advance: 2.0.0: group 1 met its success threshold (4 of 5 passed); group 2 started",
		"report: VM-100 2.0.0 failed (reason kept with the device's rollout record)", "rollout-complete"} {
		if !strings.Contains(descs, want) {
			t.Errorf("audit log lacks %q:\n%s", want, descs)
		}
	}
	if strings.Contains(descs, "flash write error") {
		t.Error("the device's free-text reason reached the audit log")
	}
	v, err := e.svc.InstalledVersion(ctx, first[0])
	if err != nil || v != "2.0.0" {
		t.Fatalf("installed version %q, %v", v, err)
	}
}

// TestHealthGate: after installed a device must report healthy within Silence, then keep
// sending valid data, with no refused message, for the health window.
func TestHealthGate(t *testing.T) {
	tests := []struct {
		name   string
		steps  func(e *env, d string)
		state  vitalgate.DeviceUpdateState
		reason string
	}{
		{"passes", func(e *env, d string) {
			e.report(d, "2.0.0", "installed")
			e.report(d, "2.0.0", "healthy")
			for range 7 {
				e.clock.Add(5 * time.Minute)
				e.data(d, audit.OutcomeSuccess)
				e.tick()
			}
		}, vitalgate.UpdatePassed, ""},
		{"no healthy report", func(e *env, d string) {
			e.report(d, "2.0.0", "installed")
			e.clock.Add(11 * time.Minute)
			e.data(d, audit.OutcomeSuccess)
			e.tick()
		}, vitalgate.UpdateFailed, "no healthy report within 10m0s of installing"},
		{"goes silent", func(e *env, d string) {
			e.report(d, "2.0.0", "installed")
			e.report(d, "2.0.0", "healthy")
			e.clock.Add(5 * time.Minute)
			e.data(d, audit.OutcomeSuccess)
			e.tick()
			e.clock.Add(11 * time.Minute)
			e.tick()
		}, vitalgate.UpdateFailed, "sent no valid data for more than 10m0s after the update"},
		{"sends refused data", func(e *env, d string) {
			e.report(d, "2.0.0", "installed")
			e.report(d, "2.0.0", "healthy")
			e.clock.Add(time.Minute)
			e.data(d, audit.OutcomeSuccess)
			e.data(d, audit.OutcomeMinorFailure)
			e.tick()
		}, vitalgate.UpdateFailed, "sent data that was refused after the update"},
		{"refused data before the update does not count", func(e *env, d string) {
			e.data(d, audit.OutcomeMinorFailure)
			e.clock.Add(time.Second)
			e.report(d, "2.0.0", "installed")
			e.report(d, "2.0.0", "healthy")
			for range 4 {
				e.clock.Add(8 * time.Minute)
				e.data(d, audit.OutcomeSuccess)
				e.tick()
			}
		}, vitalgate.UpdatePassed, ""},
		{"rolls back", func(e *env, d string) {
			e.report(d, "2.0.0", "installed")
			e.report(d, "2.0.0", "rolled-back")
		}, vitalgate.UpdateRolledBack, "no reason given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.devices("vm", "VM-100", "default", 1)
			r, err := e.svc.Start(context.Background(), "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", HealthWindow: 30 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			tt.steps(e, "vm-0")
			u, err := e.store.DeviceUpdate(context.Background(), r.ID, "vm-0")
			if err != nil {
				t.Fatal(err)
			}
			if u.State != tt.state || u.Reason != tt.reason {
				t.Fatalf("device %s %q, want %s %q", u.State, u.Reason, tt.state, tt.reason)
			}
			want := vitalgate.RolloutCompleted
			if tt.state.Failed() {
				want = vitalgate.RolloutPaused
			}
			if got := e.rollout("VM-100"); got.State != want {
				t.Fatalf("rollout %s (%q), want %s", got.State, got.Reason, want)
			}
		})
	}
}

// TestReportForAnotherDevice: a report naming another device is refused and audited.
func TestReportForAnotherDevice(t *testing.T) {
	e := newEnv(t)
	e.devices("vm", "VM-100", "default", 2)
	err := e.svc.Report(context.Background(), "vm-0", rollout.Report{Version: "2.0.0", State: "installed", Device: "vm-1"})
	wantCode(t, "report for vm-1 by vm-0", err, vitalgate.EFORBIDDEN)
	if !strings.Contains(vitalgate.ErrorMessage(err), "reports only its own updates") {
		t.Errorf("message %q does not say why", vitalgate.ErrorMessage(err))
	}
	if got := e.auditDescs(); !slices.Equal(got, []string{"report: report for another device refused"}) {
		t.Errorf("audit = %q", got)
	}
	if _, err := e.store.DeviceVersion(context.Background(), "vm-1"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("the refused report recorded a version: %v", err)
	}
	// Naming itself is fine.
	if err := e.svc.Report(context.Background(), "vm-0", rollout.Report{Version: "2.0.0", State: "installed", Device: "vm-0"}); err != nil {
		t.Fatal(err)
	}
}

// TestBadInput: each mistake is a clear error, and nothing is recorded.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.devices("vm", "VM-100", "default", 2)
	e.devices("pump", "PUMP-1", "default", 1)
	reports := []struct {
		rep  rollout.Report
		code string
	}{
		{rollout.Report{Version: "", State: "installed"}, vitalgate.EINVALID},
		{rollout.Report{Version: "2.0.0", State: "done"}, vitalgate.EINVALID},
		{rollout.Report{Version: "2.0.0\n", State: "installed"}, vitalgate.EINVALID},
		{rollout.Report{Version: "2.0.0", State: "failed", Reason: strings.Repeat("x", 501)}, vitalgate.EINVALID},
	}
	for _, r := range reports {
		wantCode(t, fmt.Sprintf("report %+v", r.rep), e.svc.Report(ctx, "vm-0", r.rep), r.code)
	}
	wantCode(t, "report by an unknown device", e.svc.Report(ctx, "ghost", rollout.Report{Version: "2.0.0", State: "installed"}), vitalgate.ENOTFOUND)
	plans := []struct {
		name string
		plan rollout.Plan
		code string
	}{
		{"not approved", rollout.Plan{Model: "VM-100", Version: "3.0.0"}, vitalgate.ENOTFOUND},
		{"percent shrinks", rollout.Plan{Model: "VM-100", Version: "2.0.0", Groups: []vitalgate.RolloutGroup{{Percent: 50}, {Percent: 20}}}, vitalgate.EINVALID},
		{"percent over 100", rollout.Plan{Model: "VM-100", Version: "2.0.0", Groups: []vitalgate.RolloutGroup{{Percent: 150}}}, vitalgate.EINVALID},
		{"unknown device", rollout.Plan{Model: "VM-100", Version: "2.0.0", Groups: []vitalgate.RolloutGroup{{Devices: []string{"ghost"}}}}, vitalgate.ENOTFOUND},
		{"device of another model", rollout.Plan{Model: "VM-100", Version: "2.0.0", Groups: []vitalgate.RolloutGroup{{Devices: []string{"pump-0"}}}}, vitalgate.EUNPROCESSABLE},
		{"device in two groups", rollout.Plan{Model: "VM-100", Version: "2.0.0", Groups: []vitalgate.RolloutGroup{{Devices: []string{"vm-0"}}, {Devices: []string{"vm-0"}}}}, vitalgate.EINVALID},
		{"bad model", rollout.Plan{Model: "VM 100", Version: "2.0.0"}, vitalgate.EINVALID},
	}
	for _, p := range plans {
		_, err := e.svc.Start(ctx, "op", p.plan)
		wantCode(t, p.name, err, p.code)
	}
	if got := e.auditDescs(); len(got) != 0 {
		t.Errorf("refused plans and reports were audited as acts: %q", got)
	}
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0"})
	wantCode(t, "second live rollout", err, vitalgate.ECONFLICT)
	_, err = e.svc.Approve(ctx, "op", "VM-100")
	wantCode(t, "approve with no group waiting", err, vitalgate.ECONFLICT)
	_, err = e.svc.Resume(ctx, "op", "VM-100")
	wantCode(t, "resume an active rollout", err, vitalgate.ECONFLICT)
	_, err = e.svc.Pause(ctx, "op", "PUMP-1", "")
	wantCode(t, "pause a model with no rollout", err, vitalgate.ENOTFOUND)
}

// TestApprovalAbortAndWithdrawal: a group marked for approval waits for it; a critical
// rollout does not; abort offers nothing; a release the repository no longer approves is
// never offered.
func TestApprovalAbortAndWithdrawal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := e.devices("vm", "VM-100", "default", 3)
	r, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", HealthWindow: -1,
		Groups: []vitalgate.RolloutGroup{{Devices: []string{ids[0]}, SuccessPercent: 100}, {Percent: 100, Approval: true}}})
	if err != nil {
		t.Fatal(err)
	}
	e.report(ids[0], "2.0.0", "installed")
	e.report(ids[0], "2.0.0", "healthy") // no health window: passed at once
	if got := e.rollout("VM-100"); got.State != vitalgate.RolloutWaiting || got.Reason != "group 2 waits for approval" {
		t.Fatalf("after the canary passed: %s %q", got.State, got.Reason)
	}
	if e.offered(ids[1]) {
		t.Fatal("a group waiting for approval is offered the release")
	}
	if _, err := e.svc.Approve(ctx, "op", "VM-100"); err != nil {
		t.Fatal(err)
	}
	if !e.offered(ids[1]) || !e.offered(ids[2]) {
		t.Fatal("the approved group is offered nothing")
	}
	e.releases.withdraw("VM-100", "2.0.0")
	if e.offered(ids[1]) {
		t.Fatal("a release the repository no longer approves is offered")
	}
	e.releases.approve("VM-100", "2.0.0")
	if _, err := e.svc.Abort(ctx, "op", "VM-100", "wrong build"); err != nil {
		t.Fatal(err)
	}
	if e.offered(ids[1]) {
		t.Fatal("an aborted rollout offers the release")
	}
	if got := e.rollout(r.Model); got.Reason != "aborted by op: wrong build" {
		t.Errorf("reason %q", got.Reason)
	}
	// A critical rollout of the same release skips the approval.
	e.clock.Add(time.Second)
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", Critical: true,
		Groups: []vitalgate.RolloutGroup{{Percent: 100, Approval: true}}}); err != nil {
		t.Fatal(err)
	}
	if !e.offered(ids[1]) {
		t.Fatal("a critical rollout waits for approval")
	}
}

// TestMaintenanceWindow: outside its site's window a device is offered nothing, unless the
// rollout is critical; other sites are not affected.
func TestMaintenanceWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.store.CreateSite(ctx, vitalgate.Site{ID: "north", Name: "North"}); err != nil {
		t.Fatal(err)
	}
	e.devices("vm", "VM-100", "default", 1)
	e.devices("nv", "VM-100", "north", 1)
	// 03:00 UTC now; the default site's window is 22:00-02:00 (past midnight).
	start, length, err := rollout.ParseClockRange("22:00-02:00")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.SetWindow(ctx, "op", vitalgate.MaintenanceWindow{Site: "default", Start: start, Length: length}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "window of an unknown site", e.svc.SetWindow(ctx, "op", vitalgate.MaintenanceWindow{Site: "nowhere", Start: start, Length: length}), vitalgate.ENOTFOUND)
	wantCode(t, "unknown zone", e.svc.SetWindow(ctx, "op", vitalgate.MaintenanceWindow{Site: "north", Start: start, Length: length, Zone: "Mars/Olympus"}), vitalgate.EINVALID)
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	if e.offered("vm-0") {
		t.Fatal("offered outside the site's maintenance window")
	}
	if !e.offered("nv-0") {
		t.Fatal("a site without a window is offered nothing")
	}
	e.clock.Add(20 * time.Hour) // 23:00
	if !e.offered("vm-0") {
		t.Fatal("offered nothing inside the maintenance window")
	}
	e.clock.Add(4 * time.Hour) // 03:00 again
	if _, err := e.svc.Abort(ctx, "op", "VM-100", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", Critical: true}); err != nil {
		t.Fatal(err)
	}
	if !e.offered("vm-0") {
		t.Fatal("a critical rollout waits for the maintenance window")
	}
}

// TestInWindow: windows by time of day, day of week, past midnight and time zone.
func TestInWindow(t *testing.T) {
	weekdays, err := rollout.ParseDays("mon-fri")
	if err != nil {
		t.Fatal(err)
	}
	h := time.Hour
	tests := []struct {
		name string
		w    vitalgate.MaintenanceWindow
		at   string
		want bool
	}{
		{"inside", vitalgate.MaintenanceWindow{Start: 2 * h, Length: 2 * h}, "2026-12-02T03:00:00Z", true},
		{"at the start", vitalgate.MaintenanceWindow{Start: 2 * h, Length: 2 * h}, "2026-12-02T02:00:00Z", true},
		{"at the end", vitalgate.MaintenanceWindow{Start: 2 * h, Length: 2 * h}, "2026-12-02T04:00:00Z", false},
		{"past midnight, after it", vitalgate.MaintenanceWindow{Start: 22 * h, Length: 4 * h}, "2026-12-02T01:00:00Z", true},
		{"past midnight, before it", vitalgate.MaintenanceWindow{Start: 22 * h, Length: 4 * h}, "2026-12-02T21:00:00Z", false},
		{"weekday on a Saturday", vitalgate.MaintenanceWindow{Start: 2 * h, Length: 2 * h, Days: weekdays}, "2026-12-05T03:00:00Z", false},
		{"weekday on a Friday", vitalgate.MaintenanceWindow{Start: 2 * h, Length: 2 * h, Days: weekdays}, "2026-12-04T03:00:00Z", true},
		{"Friday night's window on Saturday morning", vitalgate.MaintenanceWindow{Start: 23 * h, Length: 3 * h, Days: weekdays}, "2026-12-05T01:00:00Z", true},
		{"time zone", vitalgate.MaintenanceWindow{Start: 2 * h, Length: h, Zone: "Europe/Berlin"}, "2026-12-02T01:30:00Z", true},
		{"time zone, UTC hours", vitalgate.MaintenanceWindow{Start: 2 * h, Length: h, Zone: "Europe/Berlin"}, "2026-12-02T02:30:00Z", false},
		{"no window", vitalgate.MaintenanceWindow{}, "2026-12-02T12:00:00Z", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, _ := time.Parse(time.RFC3339, tt.at)
			if got := rollout.InWindow(tt.w, at); got != tt.want {
				t.Fatalf("InWindow(%s, %s) = %v", rollout.DescribeWindow(tt.w), tt.at, got)
			}
		})
	}
	for _, bad := range []string{"noon", "25:00-02:00", "02:00"} {
		if _, _, err := rollout.ParseClockRange(bad); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Errorf("ParseClockRange(%q) = %v", bad, err)
		}
	}
	if _, err := rollout.ParseDays("mon-funday"); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("ParseDays(mon-funday) = %v", err)
	}
}

// TestAssignmentStable: percentage groups take exact shares, by a hash of the device id,
// the same on every start; a device enrolled after the start joins the group its hash
// falls in, the same on every offer.
func TestAssignmentStable(t *testing.T) {
	groups := func(e *env) [][]string {
		r, err := e.svc.Start(context.Background(), "op", rollout.Plan{Model: "VM-100", Version: "2.0.0",
			Groups: []vitalgate.RolloutGroup{{Devices: []string{"vm-7"}}, {Percent: 10}, {Percent: 60}, {Percent: 100}}})
		if err != nil {
			t.Fatal(err)
		}
		return [][]string{e.members(r, 0), e.members(r, 1), e.members(r, 2), e.members(r, 3)}
	}
	a, b := newEnv(t), newEnv(t)
	a.devices("vm", "VM-100", "default", 21)
	b.devices("vm", "VM-100", "default", 21)
	ga, gb := groups(a), groups(b)
	sizes := []int{len(ga[0]), len(ga[1]), len(ga[2]), len(ga[3])}
	if !slices.Equal(sizes, []int{1, 2, 10, 8}) { // 1 listed, then of 20: ceil(2), ceil(12)-2, the rest
		t.Fatalf("group sizes %v, want [1 2 10 8]", sizes)
	}
	for i := range ga {
		if !slices.Equal(ga[i], gb[i]) {
			t.Fatalf("group %d differs between two starts: %v and %v", i+1, ga[i], gb[i])
		}
	}
	// Late devices: the same answer every time.
	late := a.devices("late", "VM-100", "default", 30)
	first := map[string]bool{}
	for _, d := range late {
		first[d] = a.offered(d)
	}
	for _, d := range late {
		if a.offered(d) != first[d] {
			t.Fatalf("late device %s: the offer changed", d)
		}
	}
}

// TestRollbackRestoresVersion: rolled-back restores the version the device ran before.
func TestRollbackRestoresVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.devices("vm", "VM-100", "default", 1)
	e.report("vm-0", "1.0.0", "installed") // the version it runs, before any rollout
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	e.report("vm-0", "2.0.0", "installed")
	if v, _ := e.svc.InstalledVersion(ctx, "vm-0"); v != "2.0.0" {
		t.Fatalf("installed %q", v)
	}
	e.report("vm-0", "2.0.0", "rolled-back")
	if v, _ := e.svc.InstalledVersion(ctx, "vm-0"); v != "1.0.0" {
		t.Fatalf("after the rollback %q, want 1.0.0", v)
	}
}

// TestLatency: the times to 50, 90 and 100 % installed, the failure rate and the devices
// behind, from the rollout's start.
func TestLatency(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ids := e.devices("vm", "VM-100", "default", 10)
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0", Groups: []vitalgate.RolloutGroup{{Percent: 100, ErrorPercent: 100}}}); err != nil {
		t.Fatal(err)
	}
	for i, d := range ids[:9] {
		e.clock.Add(time.Minute)
		if i == 8 {
			e.report(d, "2.0.0", "failed")
			continue
		}
		e.report(d, "2.0.0", "installed")
	}
	ls, err := e.svc.Latencies(ctx)
	if err != nil || len(ls) != 1 {
		t.Fatalf("Latencies = %v, %v", ls, err)
	}
	l := ls[0]
	if l.Targeted != 10 || l.Installed != 8 || l.Failed != 1 || l.Behind != 2 || l.To50 != 5*time.Minute || l.To90 >= 0 || l.To100 >= 0 {
		t.Fatalf("latency %+v", l)
	}
	if l.FailureRate != 1.0/9 {
		t.Errorf("failure rate %v, want 1/9", l.FailureRate)
	}
	e.clock.Add(time.Minute)
	e.report(ids[9], "2.0.0", "installed")
	e.clock.Add(time.Minute)
	e.report(ids[8], "2.0.0", "installed") // after a failure: still failed
	ls, _ = e.svc.Latencies(ctx)
	if l := ls[0]; l.Installed != 9 || l.To90 != 10*time.Minute || l.To100 >= 0 {
		t.Fatalf("latency %+v", l)
	}
}

// TestDeviceStates: what device list shows of each device's software: the version it
// reported installed and its state in its model's newest rollout; a device with neither
// has no entry.
func TestDeviceStates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.devices("vm", "VM-100", "default", 3)
	e.devices("other", "", "default", 1)
	e.report("vm-0", "1.0.0", "installed") // before any rollout
	if _, err := e.svc.Start(ctx, "op", rollout.Plan{Model: "VM-100", Version: "2.0.0",
		Groups: []vitalgate.RolloutGroup{{Devices: []string{"vm-0", "vm-1"}, ErrorPercent: 100}}}); err != nil {
		t.Fatal(err)
	}
	e.report("vm-0", "2.0.0", "installed")
	if err := e.svc.Report(ctx, "vm-1", rollout.Report{Version: "2.0.0", State: "failed", Reason: "disk full"}); err != nil {
		t.Fatal(err)
	}
	all, err := e.store.Devices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.DeviceStates(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]rollout.DeviceState{
		"vm-0": {Version: "2.0.0", Rollout: "2.0.0", State: vitalgate.UpdateInstalled},
		"vm-1": {Rollout: "2.0.0", State: vitalgate.UpdateFailed, Reason: "disk full"},
	}
	if len(got) != len(want) {
		t.Errorf("DeviceStates = %+v, want %+v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %+v, want %+v", id, got[id], w)
		}
	}
}

// TestSiteRollout: a rollout of one site targets that site's devices of the model only:
// its percentages are shares of them, a device of another site is neither assigned, nor
// offered (not even one enrolled later), nor may it be listed; an unknown site is refused;
// the operator's start is in the site's audit trail. Without a site every site's devices
// take part (TestMaintenanceWindow: each within its own site's window).
func TestSiteRollout(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, id := range []string{"north", "south"} {
		if err := e.store.CreateSite(ctx, vitalgate.Site{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	north := e.devices("n", "VM-100", "north", 4)
	south := e.devices("s", "VM-100", "south", 3)
	plan := rollout.Plan{Model: "VM-100", Version: "2.0.0", Site: "north", Groups: []vitalgate.RolloutGroup{{Percent: 50}, {Percent: 100}}}

	bad := plan
	bad.Site = "west"
	_, err := e.svc.Start(ctx, "op", bad)
	wantCode(t, "unknown site", err, vitalgate.ENOTFOUND)
	bad.Site = "North!"
	_, err = e.svc.Start(ctx, "op", bad)
	wantCode(t, "bad site id", err, vitalgate.EINVALID)
	bad = plan
	bad.Groups = append([]vitalgate.RolloutGroup{{Devices: []string{south[0]}}}, plan.Groups...)
	_, err = e.svc.Start(ctx, "op", bad)
	wantCode(t, "a listed device of another site", err, vitalgate.EUNPROCESSABLE)

	r, err := e.svc.Start(ctx, "op", plan)
	if err != nil {
		t.Fatal(err)
	}
	if r.Site != "north" || e.rollout("VM-100").Site != "north" || latencySite(t, e) != "north" {
		t.Fatalf("rollout site %q, stored %q", r.Site, e.rollout("VM-100").Site)
	}
	g1, g2 := e.members(r, 0), e.members(r, 1)
	if len(g1) != 2 || len(g2) != 2 {
		t.Fatalf("groups %v %v: want half of north's 4 devices each", g1, g2)
	}
	for _, id := range append(g1, g2...) {
		if !slices.Contains(north, id) {
			t.Errorf("device %s of another site is in the rollout", id)
		}
	}
	for _, id := range g1 {
		if !e.offered(id) {
			t.Errorf("north device %s of the started group is offered nothing", id)
		}
	}
	// South's devices, and one enrolled in south after the start, are offered nothing,
	// and their reports do not count in north's rollout.
	late := e.devices("late", "VM-100", "south", 5)
	for _, id := range append(south, late...) {
		if e.offered(id) {
			t.Errorf("device %s of site south is offered north's rollout", id)
		}
	}
	e.report(south[0], "2.0.0", "installed")
	if rows, err := e.store.RolloutDevices(ctx, r.ID); err != nil || len(rows) != 4 {
		t.Errorf("rollout rows %v, %v: want north's 4 only", rows, err)
	}
	found := false
	if err := e.store.AuditSearch(ctx, vitalgate.AuditQuery{Site: "north", Limit: 50}, func(rec vitalgate.AuditRecord) error {
		en, err := audit.UnmarshalEntry(rec.Data)
		found = found || err == nil && en.Subtype == "rollout-start" && strings.Contains(en.OutcomeDesc, "of site north")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Error("the start of north's rollout is not in north's audit trail")
	}
}

// latencySite returns the site of the only rollout's patch-latency figures.
func latencySite(t *testing.T, e *env) string {
	t.Helper()
	ls, err := e.svc.Latencies(context.Background())
	if err != nil || len(ls) != 1 {
		t.Fatalf("Latencies = %v, %v", ls, err)
	}
	return ls[0].Site
}
