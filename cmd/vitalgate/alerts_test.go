package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/detect"
)

// raiseAlert raises a revoked-certificate alert on device dev in the data dir, as a
// running server's detection would.
func raiseAlert(t *testing.T, dir, dev string) string {
	t.Helper()
	m := &Main{}
	n, err := m.openDataDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	d, err := m.cliDetect(n)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	var id string
	for i := range 5 {
		as, err := d.Observe(context.Background(), detect.Signal{Kind: detect.KindCertRefused, At: at.Add(time.Duration(i) * time.Second),
			Device: dev, Source: "198.51.100.7", Reason: "client certificate has been revoked"})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			id = a.ID
		}
	}
	if id == "" {
		t.Fatal("no alert raised")
	}
	return id
}

// TestAlertsAndQuarantineCommands: alerts list (text and --json), ack and resolve change the
// stored alert; device quarantine and release change the device; each refuses what it must.
func TestAlertsAndQuarantineCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if code, _, errOut := runCmd(t, "init", "--data", dir); code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "device", "add", "--data", dir, "--id", "dev-1", "--patient", "pat-1"); code != 0 {
		t.Fatalf("device add: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "alerts", "list", "--data", dir); code != 0 || !strings.Contains(errOut, "No alerts") {
		t.Fatalf("empty list: %d %s", code, errOut)
	}
	id := raiseAlert(t, dir, "dev-1")
	steps := []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"list", []string{"alerts", "list", "--data", dir}, 0, "revoked-certificate-retry"},
		{"list open", []string{"alerts", "list", "--data", dir, "--status", "open", "--json"}, 0, `"status":"open"`},
		{"bad status", []string{"alerts", "list", "--data", dir, "--status", "gone"}, 1, "--status must be"},
		{"ack", []string{"alerts", "ack", "--data", dir, "--id", id, "--note", "looking"}, 0, "Acknowledged alert " + id},
		{"ack twice", []string{"alerts", "ack", "--data", dir, "--id", id}, 1, "acknowledged already"},
		{"resolve", []string{"alerts", "resolve", "--data", dir, "--id", id, "--note", "device retired"}, 0, "Resolved alert"},
		{"resolve unknown", []string{"alerts", "resolve", "--data", dir, "--id", "nope"}, 1, "no alert"},
		{"quarantine without reason", []string{"device", "quarantine", "--data", dir, "--id", "dev-1"}, 1, "--reason is required"},
		{"quarantine", []string{"device", "quarantine", "--data", dir, "--id", "dev-1", "--reason", "alert " + id}, 0, "Quarantined device dev-1"},
		{"quarantine twice", []string{"device", "quarantine", "--data", dir, "--id", "dev-1", "--reason", "again"}, 1, "not active"},
		{"release", []string{"device", "release", "--data", dir, "--id", "dev-1", "--reason", "false alarm"}, 0, "Released device dev-1"},
		{"release twice", []string{"device", "release", "--data", dir, "--id", "dev-1", "--reason", "again"}, 1, "not quarantined"},
		{"quarantine unknown", []string{"device", "quarantine", "--data", dir, "--id", "dev-x", "--reason", "x"}, 1, "no device"},
	}
	for _, s := range steps {
		code, out, errOut := runCmd(t, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.want) {
			t.Errorf("%s: exit %d (want %d), output %q %q, want %q", s.name, code, s.code, out, errOut, s.want)
		}
	}
	_, out, _ := runCmd(t, "alerts", "list", "--data", dir, "--json")
	var a alertJSON
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if a.ID != id || a.Status != string(vitalgate.AlertResolved) || a.Note != "device retired" || a.Device != "dev-1" || a.Evidence["count"] != "5" {
		t.Fatalf("listed alert %+v", a)
	}
	_, auditOut, _ := runCmd(t, "audit", "export", "--data", dir)
	for _, want := range []string{"device-quarantine", "device-release", "alert-ack", "alert-resolve", "false alarm"} {
		if !strings.Contains(auditOut, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
}
