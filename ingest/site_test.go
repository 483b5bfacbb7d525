package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/hl7v2"
)

// TestSites: resources take their site from the device or the creating client, carry it in
// meta.tag, and never cross: a device of one site is refused a patient of another (by
// reference, by PID-3 identifier, or as a shared device that identifies its patients), and
// Patient identifiers are unique per site.
func TestSites(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	if err := e.store.CreateSite(ctx, vitalgate.Site{ID: "b", Name: "B"}); err != nil {
		t.Fatal(err)
	}
	adminB := vitalgate.Principal{Kind: "client", Site: "b", ID: "admin-b", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Patient.c"}}
	// The MRN of the default site's patient a is free in b.
	pb, err := e.svc.CreatePatient(ctx, adminB, []byte(`{"resourceType":"Patient","identifier":[{"system":"`+mrnSystem+`","value":"mrn-a"}]}`))
	if err != nil {
		t.Fatalf("the same identifier in another site: %v", err)
	}
	if _, err := e.svc.CreatePatient(ctx, adminB, []byte(`{"resourceType":"Patient","identifier":[{"system":"`+mrnSystem+`","value":"mrn-a"}]}`)); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Errorf("the same identifier twice in one site: %v", err)
	}
	if !strings.Contains(string(pb.Body), `{"system":"urn:vitalgate:site","code":"b"}`) {
		t.Errorf("the Patient does not carry its site: %s", pb.Body)
	}
	everywhere := vitalgate.Principal{Kind: "client", Site: vitalgate.AllSites, ID: "x", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Patient.c"}}
	if _, err := e.svc.CreatePatient(ctx, everywhere, []byte(`{"resourceType":"Patient"}`)); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("a Patient created by a client of no one site: %v", err)
	}

	// dev-b of b, assigned to b's patient; a shared device of b.
	e.reg.devices["dev-b"] = vitalgate.Device{ID: "dev-b", Site: "b", Status: vitalgate.DeviceActive}
	e.reg.assignments = append(e.reg.assignments, vitalgate.Assignment{DeviceID: "dev-b",
		PatientIndex: e.vault.SitePatientIndex("b", pb.ID), From: e.now.Add(-time.Hour)})
	e.reg.devices["gl-b"] = vitalgate.Device{ID: "gl-b", Site: "b", Model: "gluco", Status: vitalgate.DeviceActive}
	e.reg.bindings = map[string]vitalgate.Binding{"gluco": vitalgate.BindingIdentified}
	at := e.now.Add(-time.Minute)

	c, err := e.svc.CreateObservation(ctx, "dev-b", obs(t, pb.ID, at, nil))
	if err != nil {
		t.Fatalf("dev-b for its patient: %v", err)
	}
	r, err := e.store.Resource(ctx, "Observation", c.ID)
	if err != nil || r.Site != "b" || !strings.Contains(string(c.Body), `"code":"b"`) {
		t.Errorf("the observation of dev-b: site %q, body %s, %v", r.Site, c.Body, err)
	}
	// A sender cannot claim another site in meta.tag.
	c, err = e.svc.CreateObservation(ctx, "dev-b", obs(t, pb.ID, at.Add(time.Second), func(o map[string]any) {
		o["meta"] = map[string]any{"tag": []any{map[string]any{"system": "urn:vitalgate:site", "code": vitalgate.DefaultSite}}}
	}))
	if err != nil || strings.Contains(string(c.Body), `"code":"default"`) {
		t.Errorf("a claimed site tag: %s %v", c.Body, err)
	}
	if _, err := e.svc.CreateObservation(ctx, "dev-b", obs(t, e.pat["a"], at, nil)); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("dev-b for the default site's patient: %v", err)
	}
	// PID-3 resolves within the device's site: mrn-b exists only in the default site.
	hd := hl7v2.HD{UniversalID: "1.2.3.4", UniversalIDType: "ISO"}
	if _, err := e.svc.ResolvePatient(ctx, "dev-b", "mrn-b", hd); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("PID-3 naming another site's patient: %v", err)
	}
	if id, err := e.svc.ResolvePatient(ctx, "dev-b", "mrn-a", hd); err != nil || id != pb.ID {
		t.Errorf("PID-3 mrn-a from site b = %q, %v; want b's patient %s", id, err, pb.ID)
	}
	if id, err := e.svc.ResolvePatient(ctx, "dev-1", "mrn-a", hd); err != nil || id != e.pat["a"] {
		t.Errorf("PID-3 mrn-a from the default site = %q, %v; want %s", id, err, e.pat["a"])
	}

	// The shared device identifies its patients: b's, never the default site's or an unknown one.
	pb2, err := e.svc.CreatePatient(ctx, adminB, []byte(`{"resourceType":"Patient","identifier":[{"system":"`+mrnSystem+`","value":"mrn-b2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{pb.ID, pb2.ID} {
		if _, err := e.svc.CreateObservation(ctx, "gl-b", obs(t, p, at, nil)); err != nil {
			t.Errorf("shared device for %s of its site: %v", p, err)
		}
	}
	_, other := e.svc.CreateObservation(ctx, "gl-b", obs(t, e.pat["a"], at, nil))
	_, unknown := e.svc.CreateObservation(ctx, "gl-b", obs(t, "nobody", at, nil))
	if vitalgate.ErrorCode(other) != vitalgate.EFORBIDDEN || vitalgate.ErrorMessage(other) != vitalgate.ErrorMessage(unknown) {
		t.Errorf("shared device for another site's patient: %v; for an unknown one: %v (want the same refusal)", other, unknown)
	}
	// Each identified write is audited with how its patient was resolved, in its site.
	n := 0
	if err := e.store.AuditSearch(ctx, vitalgate.AuditQuery{Site: "b", AgentID: "gl-b", Limit: 10}, func(r vitalgate.AuditRecord) error {
		en, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			return err
		}
		if en.Action == audit.ActionCreate && en.Outcome == audit.OutcomeSuccess {
			if en.OutcomeDesc != "patient identified by subject reference in site b" {
				t.Errorf("identified write audited as %q", en.OutcomeDesc)
			}
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d identified writes audited, want 2", n)
	}
}
