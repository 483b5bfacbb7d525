// Package detecttest is the conformance test of the alert and quarantine store methods
// (vitalgate.AlertStore, vitalgate.QuarantineStore), which both stores run.
package detecttest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
)

// Store is what the conformance test needs: alerts, quarantines and devices.
type Store interface {
	vitalgate.AlertStore
	vitalgate.QuarantineStore
	Device(ctx context.Context, id string) (vitalgate.Device, error)
	CreateDevice(ctx context.Context, d vitalgate.Device, audit ...[]byte) error
}

// TestStore checks st: alerts round-trip with their evidence, list newest first with each
// filter, move between statuses only from the state named; a device is quarantined only
// when active (its enrollment secret voided) and released only when quarantined.
func TestStore(t *testing.T, st Store) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
	mk := func(id, dev, site string, at time.Time) vitalgate.Alert {
		return vitalgate.Alert{ID: id, Rule: "revoked-certificate-retry", RulesVersion: 2, Severity: "high", Category: "identity",
			Description: "d", Device: dev, Client: "c1", Source: "198.51.100.7", Site: site, From: at.Add(-time.Minute), To: at,
			Evidence: map[string]string{"count": "5", "window": "5m0s"}, Status: vitalgate.AlertOpen, CreatedAt: at, UpdatedAt: at}
	}
	for i, a := range []vitalgate.Alert{mk("a1", "d1", "s1", t0), mk("a2", "d2", "s1", t0.Add(time.Minute)), mk("a3", "d1", "s2", t0.Add(2*time.Minute))} {
		if err := st.CreateAlert(ctx, a); err != nil {
			t.Fatalf("create alert %d: %v", i, err)
		}
	}
	if err := st.CreateAlert(ctx, mk("a1", "d1", "s1", t0)); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Errorf("an alert id twice: %v, want ECONFLICT", err)
	}
	got, err := st.Alert(ctx, "a1")
	if err != nil || got.Device != "d1" || got.Evidence["count"] != "5" || !got.From.Equal(t0.Add(-time.Minute)) || !got.To.Equal(t0) ||
		got.RulesVersion != 2 || got.Status != vitalgate.AlertOpen || got.Client != "c1" || got.Source != "198.51.100.7" {
		t.Fatalf("alert a1: %+v %v", got, err)
	}
	if _, err := st.Alert(ctx, "nope"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("unknown alert: %v", err)
	}
	lists := []struct {
		name string
		f    vitalgate.AlertFilter
		want []string
	}{
		{"all, newest first", vitalgate.AlertFilter{}, []string{"a3", "a2", "a1"}},
		{"by device", vitalgate.AlertFilter{Device: "d1"}, []string{"a3", "a1"}},
		{"by site", vitalgate.AlertFilter{Site: "s1"}, []string{"a2", "a1"}},
		{"limit", vitalgate.AlertFilter{Limit: 1}, []string{"a3"}},
		{"by status", vitalgate.AlertFilter{Status: vitalgate.AlertResolved}, nil},
	}
	for _, l := range lists {
		as, err := st.Alerts(ctx, l.f)
		if err != nil {
			t.Fatalf("%s: %v", l.name, err)
		}
		var ids []string
		for _, a := range as {
			ids = append(ids, a.ID)
		}
		if len(ids) != len(l.want) || (len(ids) > 0 && ids[0] != l.want[0]) || (len(ids) > 1 && ids[len(ids)-1] != l.want[len(l.want)-1]) {
			t.Errorf("%s: %v, want %v", l.name, ids, l.want)
		}
	}
	moves := []struct {
		name     string
		id       string
		from, to vitalgate.AlertStatus
		code     string
	}{
		{"ack", "a1", vitalgate.AlertOpen, vitalgate.AlertAcknowledged, ""},
		{"ack again from open", "a1", vitalgate.AlertOpen, vitalgate.AlertAcknowledged, vitalgate.ECONFLICT},
		{"resolve", "a1", vitalgate.AlertAcknowledged, vitalgate.AlertResolved, ""},
		{"unknown", "nope", vitalgate.AlertOpen, vitalgate.AlertResolved, vitalgate.ENOTFOUND},
	}
	for _, m := range moves {
		if err := st.SetAlertStatus(ctx, m.id, m.from, m.to, "tester", "note "+m.name, t0.Add(time.Hour)); vitalgate.ErrorCode(err) != m.code {
			t.Errorf("%s: %v, want %q", m.name, err, m.code)
		}
	}
	if got, _ := st.Alert(ctx, "a1"); got.Status != vitalgate.AlertResolved || got.UpdatedBy != "tester" || got.Note != "note resolve" {
		t.Errorf("after resolve: %+v", got)
	}

	if err := st.CreateDevice(ctx, vitalgate.Device{ID: "qd", Site: vitalgate.DefaultSite, Status: vitalgate.DeviceActive, // #nosec G101 -- a placeholder hash in a store test, no secret
		EnrollSecretHash: "$argon2id$x", EnrollExpiresAt: t0.Add(time.Hour), CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	// blocked checks, after a successful step, whether the device's updates are blocked.
	blocked := func(err error, want bool) error {
		if err != nil {
			return err
		}
		if got, err := st.DeviceUpdatesBlocked(ctx, "qd"); err != nil || got != want {
			return fmt.Errorf("updates blocked %v (%v), want %v", got, err, want)
		}
		return nil
	}
	if _, err := st.DeviceUpdatesBlocked(ctx, "nobody"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("DeviceUpdatesBlocked of an unknown device: %v, want ENOTFOUND", err)
	}
	steps := []struct {
		name string
		do   func() error
		code string
		want vitalgate.DeviceStatus
	}{
		{"release an active device", func() error { return st.ReleaseDevice(ctx, "qd", t0) }, vitalgate.ECONFLICT, vitalgate.DeviceActive},
		{"quarantine", func() error { return st.QuarantineDevice(ctx, "qd", t0) }, "", vitalgate.DeviceQuarantined},
		{"quarantine twice", func() error { return st.QuarantineDevice(ctx, "qd", t0) }, vitalgate.ECONFLICT, vitalgate.DeviceQuarantined},
		{"block its updates", func() error { return blocked(st.BlockDeviceUpdates(ctx, "qd", t0), true) }, "", vitalgate.DeviceQuarantined},
		{"release", func() error { return blocked(st.ReleaseDevice(ctx, "qd", t0), false) }, "", vitalgate.DeviceActive},
		{"block an active device's updates", func() error { return st.BlockDeviceUpdates(ctx, "qd", t0) }, vitalgate.ECONFLICT, vitalgate.DeviceActive},
		{"block an unknown device's updates", func() error { return st.BlockDeviceUpdates(ctx, "nobody", t0) }, vitalgate.ENOTFOUND, vitalgate.DeviceActive},
		{"unknown device", func() error { return st.QuarantineDevice(ctx, "nobody", t0) }, vitalgate.ENOTFOUND, vitalgate.DeviceActive},
	}
	for _, s := range steps {
		if err := s.do(); vitalgate.ErrorCode(err) != s.code {
			t.Errorf("%s: %v, want %q", s.name, err, s.code)
		}
		if d, err := st.Device(ctx, "qd"); err != nil || d.Status != s.want {
			t.Errorf("%s: device %s %v, want %s", s.name, d.Status, err, s.want)
		}
	}
	if d, _ := st.Device(ctx, "qd"); d.EnrollSecretHash != "" {
		t.Error("the quarantine kept the enrollment secret")
	}
}
