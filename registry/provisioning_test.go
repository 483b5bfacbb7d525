package registry_test

import (
	"bytes"
	"encoding/csv"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/registry"
)

// auditSubtypes returns the subtypes of the audit log's entries, in order.
func (e *env) auditSubtypes() []string {
	e.t.Helper()
	size, err := e.store.AuditSize(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	err = e.store.AuditEntries(e.t.Context(), 0, size, func(r vitalgate.AuditRecord) error {
		en, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			return err
		}
		out = append(out, en.Subtype)
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestReissue: a lost secret is replaced (the old one stops working, the new one enrolls
// once); an enrolled device is refused until it is revoked; a revoked device is provisioned
// again (active, its old certificate still refused); an unknown device is ENOTFOUND; a
// client without the Device update scope is refused; each reissue is audited.
func TestReissue(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	old := e.add("dev-1", "pat-1")
	_, fresh, err := e.reg.Reissue(ctx, op, "dev-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fresh == old || len(fresh) != 43 {
		t.Fatalf("reissued secret %q", fresh)
	}
	_, err = e.reg.Enroll(ctx, enrollee("dev-1", "192.0.2.1"), old, csr(t, "dev-1"))
	wantCode(t, "enroll with the replaced secret", err, vitalgate.EUNAUTHORIZED)
	cert, err := e.reg.Enroll(ctx, enrollee("dev-1", "192.0.2.1"), fresh, csr(t, "dev-1"))
	if err != nil {
		t.Fatalf("enroll with the reissued secret: %v", err)
	}

	_, _, err = e.reg.Reissue(ctx, op, "dev-1", 0)
	wantCode(t, "reissue for an enrolled device", err, vitalgate.ECONFLICT)
	if !strings.Contains(vitalgate.ErrorMessage(err), "revoke it first") {
		t.Errorf("message %q does not say to revoke first", vitalgate.ErrorMessage(err))
	}

	if err := e.reg.Revoke(ctx, op, "dev-1"); err != nil {
		t.Fatal(err)
	}
	d, again, err := e.reg.Reissue(ctx, op, "dev-1", 0)
	if err != nil {
		t.Fatalf("reissue for a revoked device: %v", err)
	}
	if d.Status != vitalgate.DeviceActive || !d.EnrollExpiresAt.Equal(e.clock.Now().Add(registry.DefaultEnrollTTL)) {
		t.Fatalf("re-provisioned device %+v", d)
	}
	if _, err := e.reg.AuthorizeHandshake(ctx, cert); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
		t.Fatalf("the certificate revoked before the reissue is accepted again: %v", err)
	}
	if _, err := e.reg.Enroll(ctx, enrollee("dev-1", "192.0.2.1"), again, csr(t, "dev-1")); err != nil {
		t.Fatalf("a re-provisioned device cannot enroll: %v", err)
	}

	_, _, err = e.reg.Reissue(ctx, op, "nobody", 0)
	wantCode(t, "reissue for an unknown device", err, vitalgate.ENOTFOUND)
	_, _, err = e.reg.Reissue(ctx, op, "dev-1", 31*24*time.Hour)
	wantCode(t, "reissue beyond the longest life", err, vitalgate.EINVALID)
	reader := vitalgate.Principal{Kind: "client", ID: "ehr", Role: vitalgate.RoleEHRSystem, Scopes: []string{"system/Device.rs"}}
	_, _, err = e.reg.Reissue(ctx, reader, "dev-1", 0)
	wantCode(t, "reissue by a client without Device.u", err, vitalgate.EFORBIDDEN)

	var n int
	for _, s := range e.auditSubtypes() {
		if s == "device-reissue" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d device-reissue audit entries, want 2 (one per reissue)", n)
	}
}

// TestEnrollRefusalIsLogged: every refused enrollment leaves its reason in the server log
// (for the operator), while the caller gets the same vague answer; the secret never reaches
// the log.
func TestEnrollRefusalIsLogged(t *testing.T) {
	var logBuf bytes.Buffer
	e := mustEnv(t, func(c *registry.Config) { c.Logger = slog.New(slog.NewJSONHandler(&logBuf, nil)) })
	ctx := t.Context()
	secret := e.add("dev-1", "pat-1")
	expiring := e.add("dev-2", "pat-2")
	used := e.add("dev-3", "pat-3")
	revoked := e.add("dev-4", "pat-4")
	if _, err := e.reg.Enroll(ctx, enrollee("dev-3", "192.0.2.1"), used, csr(t, "dev-3")); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Revoke(ctx, op, "dev-4"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, secret, cn, reason string
		advance                      time.Duration
	}{
		{"unknown", "nobody", secret, "nobody", "unknown device id", 0},
		{"wrong", "dev-1", "not-the-secret", "dev-1", "wrong enrollment secret", 0},
		{"used", "dev-3", used, "dev-3", "was used already", 0},
		{"revoked", "dev-4", revoked, "dev-4", "device is revoked", 0},
		{"CN mismatch", "dev-1", secret, "someone-else", "certificate request refused", 0},
		{"expired", "dev-2", expiring, "dev-2", "expired at", registry.DefaultEnrollTTL},
	}
	var answer string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.clock.Advance(tt.advance)
			logBuf.Reset()
			_, err := e.reg.Enroll(ctx, enrollee(tt.id, "192.0.2.7"), tt.secret, csr(t, tt.cn))
			if err == nil {
				t.Fatal("enrollment accepted")
			}
			if tt.name != "CN mismatch" {
				if answer == "" {
					answer = vitalgate.ErrorMessage(err)
				} else if vitalgate.ErrorMessage(err) != answer {
					t.Errorf("the caller's answer %q differs from %q: it must not tell the reasons apart", vitalgate.ErrorMessage(err), answer)
				}
			}
			line := logBuf.String()
			if !strings.Contains(line, `"msg":"enrollment refused"`) || !strings.Contains(line, tt.reason) ||
				!strings.Contains(line, `"device":"`+tt.id+`"`) || !strings.Contains(line, `"remote":"192.0.2.7"`) {
				t.Errorf("log %q does not give the reason %q", line, tt.reason)
			}
			if strings.Contains(line, tt.secret) {
				t.Errorf("the secret reached the log: %s", line)
			}
		})
	}
}

// TestImport: a CSV of devices is registered whole, each secret written once as it is
// added; a file with a bad row or an id already registered registers nothing.
func TestImport(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	rows, err := registry.ParseImportCSV(strings.NewReader("\ufeffid, patient ,model\nimp-1,pat-1,VM-100\nimp-2,pat-2,\n"))
	if err != nil {
		t.Fatal(err)
	}
	var secrets bytes.Buffer
	n, err := e.reg.Import(ctx, op, rows, time.Hour, &secrets)
	if err != nil || n != 2 {
		t.Fatalf("import: %d, %v", n, err)
	}
	recs, err := csv.NewReader(&secrets).ReadAll()
	if err != nil || len(recs) != 3 || recs[0][0] != "id" || recs[1][0] != "imp-1" || recs[2][0] != "imp-2" {
		t.Fatalf("secrets file %q: %v", recs, err)
	}
	for _, r := range recs[1:] {
		if _, err := e.reg.Enroll(ctx, enrollee(r[0], "192.0.2.1"), r[1], csr(t, r[0])); err != nil {
			t.Fatalf("%s cannot enroll with its imported secret: %v", r[0], err)
		}
	}
	d, err := e.store.Device(ctx, "imp-1")
	if err != nil || d.Model != "VM-100" {
		t.Fatalf("imp-1: %+v %v", d, err)
	}

	again, _ := registry.ParseImportCSV(strings.NewReader("id,patient\nimp-3,pat-3\nimp-1,pat-1\n"))
	secrets.Reset()
	if n, err := e.reg.Import(ctx, op, again, 0, &secrets); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT || n != 0 || secrets.Len() != 0 {
		t.Fatalf("import with a registered id: %d, %v, %q", n, err, secrets.String())
	}
	if _, err := e.store.Device(ctx, "imp-3"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Fatalf("imp-3 was registered from a refused file: %v", err)
	}
}

// TestParseImportCSV: what is wrong with an import file is named with its line.
func TestParseImportCSV(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"no patient column", "id,model\na,b\n", "column patient"},
		{"unknown column", "id,patient,colour\n", `unknown column "colour"`},
		{"bad id", "id,patient\nbad id!,p\n", "line 2"},
		{"bad patient", "id,patient\ndev,\n", "line 2: patient id"},
		{"duplicate", "id,patient\na,p\nb,p\na,q\n", `line 4: device "a" is on line 2`},
		{"header only", "id,patient\n", "no devices"},
		{"ragged", "id,patient\na,p,x\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registry.ParseImportCSV(strings.NewReader(tt.in))
			if vitalgate.ErrorCode(err) != vitalgate.EINVALID || !strings.Contains(vitalgate.ErrorMessage(err), tt.want) {
				t.Fatalf("error %v, want EINVALID with %q", err, tt.want)
			}
		})
	}
}

// FuzzParseImportCSV: no import file makes the parser panic, and what it accepts has valid
// ids only, without duplicates.
func FuzzParseImportCSV(f *testing.F) {
	f.Add("id,patient,model\nmonitor-0001,patient-0001,VM-100\n")
	f.Add("patient,id\np,d\n\"q\",\"e\"\n")
	f.Add("id,patient\n\"a\nb\",p\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := registry.ParseImportCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r.ID == "" || r.PatientID == "" || seen[r.ID] || strings.ContainsAny(r.ID+r.PatientID, " ,\n\"") {
				t.Fatalf("accepted row %+v", r)
			}
			seen[r.ID] = true
		}
	})
}

// TestOverview: the operator's device list has each device's patient, latest certificate
// and last successful act, and the listing is audited; only an operator may list.
func TestOverview(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	cert := e.enroll("dev-1")
	e.add("dev-2", "pat-2")
	rows, err := e.reg.Overview(ctx, op)
	if err != nil || len(rows) != 2 {
		t.Fatalf("overview: %v %v", rows, err)
	}
	r1, r2 := rows[0], rows[1]
	if r1.ID != "dev-1" || r1.PatientID != "pat-dev-1" || !r1.Enrolled() || !r1.Cert.NotAfter.Equal(cert.NotAfter.UTC()) || !r1.LastSeen.Equal(e.clock.Now()) {
		t.Errorf("dev-1 row %+v", r1)
	}
	if r2.ID != "dev-2" || r2.PatientID != "pat-2" || r2.Enrolled() || r2.Cert.Serial != "" || !r2.LastSeen.IsZero() {
		t.Errorf("dev-2 row %+v", r2)
	}
	if s := e.auditSubtypes(); s[len(s)-1] != "device-list" {
		t.Errorf("the listing is not audited: %v", s)
	}
	_, err = e.reg.Overview(ctx, vitalgate.Principal{Kind: "client", ID: "ehr", Scopes: []string{"system/Device.rs"}})
	wantCode(t, "overview by a client", err, vitalgate.EFORBIDDEN)
}

// TestPatientStored tells a stored Patient from an id no Patient has.
func TestPatientStored(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	now := e.clock.Now()
	pidx := e.vault.PatientIndex("pat-1")
	body, err := e.vault.Seal(ctx, pidx, "Patient", "pat-1", 1, []byte(`{"resourceType":"Patient","id":"pat-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	r := vitalgate.SealedResource{Type: "Patient", ID: "pat-1", Version: 1, PatientIndex: pidx, Effective: now, LastUpdated: now, Body: body}
	if err := e.store.CreateResources(ctx, []vitalgate.SealedResource{r}, []byte(`{"e":1}`)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"pat-1": true, "pat-2": false} {
		got, err := registry.PatientStored(ctx, e.store, id)
		if err != nil || got != want {
			t.Errorf("PatientStored(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
}
