package simulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/simulator"
	"github.com/vitalgate/vitalgate/updateclient"
	"github.com/vitalgate/vitalgate/updateclient/tuftest"
)

// updateRig is a fake Vitalgate server (EST, FHIR) plus an update server over the same CA,
// serving a TUF repository for model "monitor".
type updateRig struct {
	f    *fakeServer
	repo *tuftest.Repo
	srv  *tuftest.Server
	up   simulator.UpdateConfig
}

func newUpdateRig(t *testing.T, fail string) *updateRig {
	t.Helper()
	f := newFakeServer(t)
	repo := tuftest.NewRepo(t, time.Now(), "monitor")
	srv := tuftest.NewServerWithCA(t, repo.Dir, f.ca.cert, f.ca.key)
	return &updateRig{f: f, repo: repo, srv: srv, up: simulator.UpdateConfig{
		Model: "monitor", ServerURL: srv.URL(), TrustedRoot: repo.RootBytes(), Dir: t.TempDir(),
		PollInterval: 20 * time.Millisecond, Fail: fail,
		Retry: updateclient.Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond},
	}}
}

// publish adds a release and offers it.
func (r *updateRig) publish(version string, data []byte) string {
	tp := r.repo.AddRelease("monitor", version, "image.swu", data)
	r.srv.SetOffer(fmt.Appendf(nil, `{"model":"monitor","version":%q,"target":%q,"critical":false}`, version, tp))
	return tp
}

func (r *updateRig) enrolledUpdater(t *testing.T, id string) *simulator.Updater {
	t.Helper()
	d, err := simulator.NewDevice(r.f.config(), r.f.addDevice(id, "patient-"+id, "monitor"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	if err := d.Enroll(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, err := d.NewUpdater(r.up)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// states returns the states device id reported, in order, with the reasons of failures.
func (r *updateRig) states(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, rep := range r.srv.Reports() {
		if rep.Device != id {
			continue
		}
		var body updateclient.Report
		if err := json.Unmarshal(rep.Body, &body); err != nil {
			t.Fatalf("report %s: %v", rep.Body, err)
		}
		s := body.Version + " " + string(body.State)
		if body.Reason != "" {
			s += ": " + body.Reason
		}
		out = append(out, s)
	}
	return out
}

func TestUpdatePoll(t *testing.T) {
	tests := []struct {
		name      string
		fail      string
		tamper    bool
		want      []string // reports, reason prefixes for failures
		installed string
	}{
		{"healthy", simulator.FailNone, false, []string{"1.0.0 downloading", "1.0.0 installed", "1.0.0 healthy"}, "1.0.0"},
		{"installation fails", simulator.FailInstall, false, []string{"1.0.0 downloading", "1.0.0 failed: simulated installation failure"}, ""},
		{"health check fails", simulator.FailHealth, false, []string{"1.0.0 downloading", "1.0.0 installed", "1.0.0 failed: simulated health check failure"}, "1.0.0"},
		{"health check fails, rolled back", simulator.FailRollback, false, []string{"1.0.0 downloading", "1.0.0 installed", "1.0.0 rolled-back: simulated health check failure after installing; previous version (none) restored"}, ""},
		{"tampered image refused", simulator.FailNone, true, []string{"1.0.0 downloading", "1.0.0 failed: download failed: updateclient: target hash does not match"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newUpdateRig(t, tt.fail)
			tp := rig.publish("1.0.0", []byte(strings.Repeat("firmware ", 1000)))
			if tt.tamper {
				if err := os.WriteFile(rig.repo.ServedFile(tp), []byte(strings.Repeat("malware! ", 1000)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			u := rig.enrolledUpdater(t, "mon-1")
			evs, err := u.Poll(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := rig.states(t, "mon-1")
			if len(got) != len(tt.want) || len(evs) != len(tt.want) {
				t.Fatalf("reports %q (events %v), want %q", got, evs, tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("report %d = %q, want %q...", i, got[i], tt.want[i])
				}
			}
			if u.Installed() != tt.installed {
				t.Errorf("installed %q, want %q", u.Installed(), tt.installed)
			}
			// The same offer is not acted on twice.
			if evs, err := u.Poll(context.Background()); err != nil || len(evs) != 0 {
				t.Errorf("second poll: events %v, err %v", evs, err)
			}
		})
	}
}

func TestUpdateInstalledSurvivesRestart(t *testing.T) {
	rig := newUpdateRig(t, simulator.FailNone)
	rig.publish("1.0.0", []byte("v1"))
	u := rig.enrolledUpdater(t, "mon-1")
	if _, err := u.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(rig.up.Dir, "mon-1", "installed.json"))
	if err != nil || !strings.Contains(string(b), `"version":"1.0.0"`) {
		t.Fatalf("installed.json = %s, %v", b, err)
	}
	// A new agent for the same device (a restart) knows the installed version.
	d, err := simulator.NewDevice(rig.f.config(), rig.f.addDevice("mon-1", "p", "monitor"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := d.NewUpdater(rig.up)
	if err != nil {
		t.Fatal(err)
	}
	if again.Installed() != "1.0.0" {
		t.Fatalf("after a restart the device has %q installed", again.Installed())
	}
}

func TestUpdateNoUpdatesOnServer(t *testing.T) {
	rig := newUpdateRig(t, simulator.FailNone)
	// The fake Vitalgate server has no /updates/ routes: its answer is 404.
	rig.up.ServerURL = ""
	u := rig.enrolledUpdater(t, "mon-1")
	_, err := u.Poll(context.Background())
	if !errors.Is(err, simulator.ErrNoUpdates) {
		t.Fatalf("err = %v, want ErrNoUpdates", err)
	}
	if !strings.Contains(err.Error(), "has no updates") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("message %q does not say plainly what happened", err)
	}
}

func TestUpdateConfigValidate(t *testing.T) {
	good := simulator.UpdateConfig{Model: "m", TrustedRoot: []byte("{}"), Dir: "d"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*simulator.UpdateConfig){
		"no model":      func(u *simulator.UpdateConfig) { u.Model = "" },
		"no root":       func(u *simulator.UpdateConfig) { u.TrustedRoot = nil },
		"no dir":        func(u *simulator.UpdateConfig) { u.Dir = "" },
		"unknown fail":  func(u *simulator.UpdateConfig) { u.Fail = "sometimes" },
		"negative poll": func(u *simulator.UpdateConfig) { u.PollInterval = -1 },
		"negative skew": func(u *simulator.UpdateConfig) { u.ClockSkew = -1 },
	} {
		u := good
		mod(&u)
		if u.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestRunWithUpdates runs two groups of devices, one healthy and one failing, against the
// same rollout, and checks every device reports and keeps sending vitals.
func TestRunWithUpdates(t *testing.T) {
	rig := newUpdateRig(t, simulator.FailNone)
	rig.publish("2.0.0", []byte(strings.Repeat("image ", 5000)))
	groups := []struct {
		fail    string
		devices []string
		final   string
	}{
		{simulator.FailNone, []string{"a-1", "a-2"}, "2.0.0 healthy"},
		{simulator.FailHealth, []string{"b-1"}, "2.0.0 failed: simulated health check failure after installing"},
	}
	var wg sync.WaitGroup
	for _, g := range groups {
		cfg := rig.f.config()
		for _, id := range g.devices {
			cfg.Devices = append(cfg.Devices, rig.f.addDevice(id, "patient-"+id, "monitor"))
		}
		up := rig.up
		up.Fail = g.fail
		// The deadline only bounds a broken run; the test ends when every device reported.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t.Cleanup(cancel)
		done := map[string]bool{}
		var mu sync.Mutex
		wg.Go(func() {
			err := simulator.RunWithUpdates(ctx, cfg, up, nil, func(e simulator.UpdateEvent) {
				if e.Err != nil {
					t.Errorf("%s", e)
				}
				if e.Version+" "+string(e.State)+optReason(e.Message) == g.final {
					mu.Lock()
					done[e.Device] = true
					if len(done) == len(g.devices) {
						cancel()
					}
					mu.Unlock()
				}
			})
			if err != nil {
				t.Errorf("RunWithUpdates: %v", err)
			}
		})
	}
	wg.Wait()
	for _, g := range groups {
		for _, id := range g.devices {
			got := rig.states(t, id)
			if len(got) == 0 || got[len(got)-1] != g.final {
				t.Errorf("%s reported %q, want it to end with %q", id, got, g.final)
			}
		}
	}
	if rig.f.accepted.Load() == 0 {
		t.Error("no vitals were sent while updating")
	}
}

func optReason(m string) string {
	if m == "" {
		return ""
	}
	return ": " + m
}

func TestUpdateRollbackRestoresPrevious(t *testing.T) {
	rig := newUpdateRig(t, simulator.FailNone)
	rig.publish("1.0.0", []byte("v1"))
	u := rig.enrolledUpdater(t, "mon-1")
	if _, err := u.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The same device, restarted in rollback mode, is offered 2.0.0.
	rig.up.Fail = simulator.FailRollback
	u = rig.enrolledUpdater(t, "mon-1")
	rig.publish("2.0.0", []byte("v2"))
	if _, err := u.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := rig.states(t, "mon-1")
	if last := got[len(got)-1]; last != "2.0.0 rolled-back: simulated health check failure after installing; previous version (1.0.0) restored" {
		t.Fatalf("reports %q", got)
	}
	b, err := os.ReadFile(filepath.Join(rig.up.Dir, "mon-1", "installed.json"))
	if u.Installed() != "1.0.0" || err != nil || !strings.Contains(string(b), `"version":"1.0.0"`) {
		t.Fatalf("installed %q, installed.json %s %v", u.Installed(), b, err)
	}
}
