package registry_test

import (
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
)

// TestSites: a device belongs to one site, is assigned only to patients of that site, and is
// administered only by clients of that site; every refusal is audited.
func TestSites(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("CreateSite", e.store.CreateSite(ctx, vitalgate.Site{ID: "b", Name: "B"}))
	// A Patient of site b, stored as ingest stores one.
	must("CreateResources", e.store.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Patient", ID: "pat-b1", Version: 1,
		Site: "b", PatientIndex: e.vault.SitePatientIndex("b", "pat-b1"), Body: []byte("sealed")}}))
	e.add("dev-1", "pat-a")

	_, _, err := e.reg.AddToSite(ctx, op, "nowhere", "dev-x", "pat-a", "m", time.Hour)
	wantCode(t, "AddToSite to an unknown site", err, vitalgate.ENOTFOUND)
	_, _, err = e.reg.AddToSite(ctx, op, vitalgate.DefaultSite, "dev-x", "pat-b1", "m", time.Hour)
	wantCode(t, "AddToSite assigned to another site's Patient", err, vitalgate.EFORBIDDEN)
	d, _, err := e.reg.AddToSite(ctx, op, "b", "dev-b", "pat-b1", "m", time.Hour)
	must("AddToSite", err)
	if d.Site != "b" || string(d.PatientIndex) != string(e.vault.SitePatientIndex("b", "pat-b1")) {
		t.Errorf("device %+v: site or patient index not of site b", d)
	}
	if string(e.vault.SitePatientIndex("b", "pat-a")) == string(e.vault.PatientIndex("pat-a")) {
		t.Error("a patient id has the same blind index in two sites")
	}
	if string(e.vault.SitePatientIndex(vitalgate.DefaultSite, "pat-a")) != string(e.vault.PatientIndex("pat-a")) {
		t.Error("the default site's blind index is not the one written before sites")
	}

	clientA := vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "admin-a", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Device.rus"}}
	clientB := vitalgate.Principal{Kind: "client", Site: "b", ID: "admin-b", Role: vitalgate.RoleAdmin, Scopes: []string{"system/Device.rus"}}
	e.clock.Advance(time.Second)
	_, err = e.reg.Assign(ctx, op, "dev-1", "pat-b1")
	wantCode(t, "Assign to another site's Patient", err, vitalgate.EFORBIDDEN)
	_, err = e.reg.Assign(ctx, clientB, "dev-1", "pat-c")
	wantCode(t, "Assign by a client of another site", err, vitalgate.ENOTFOUND)
	wantCode(t, "Revoke by a client of another site", e.reg.Revoke(ctx, clientA, "dev-b"), vitalgate.ENOTFOUND)
	if _, err := e.reg.Assign(ctx, clientB, "dev-b", "pat-b2"); err != nil {
		t.Errorf("Assign by a client of the device's site: %v", err)
	}
	_, _, err = e.reg.AddToSite(ctx, clientA, "b", "dev-y", "pat-b1", "m", time.Hour)
	wantCode(t, "AddToSite by a client of another site", err, vitalgate.ENOTFOUND)

	// Every refusal is in the audit log, in the site of the device or record concerned.
	var refusedB, refusedDefault int
	for _, q := range []vitalgate.AuditQuery{{Site: "b", Outcome: audit.OutcomeMinorFailure, Limit: 100}, {Site: vitalgate.DefaultSite, Outcome: audit.OutcomeMinorFailure, Limit: 100}} {
		must("AuditSearch", e.store.AuditSearch(ctx, q, func(r vitalgate.AuditRecord) error {
			if q.Site == "b" {
				refusedB++
			} else {
				refusedDefault++
			}
			return nil
		}))
	}
	// Default: AddToSite for b's Patient, Assign to b's Patient, Assign by b's client.
	// b: Revoke by a's client, AddToSite by a's client.
	if refusedDefault != 3 || refusedB != 2 {
		t.Errorf("refusals audited: %d of the default site, %d of b; want 3 and 2", refusedDefault, refusedB)
	}
}

// TestModelBinding: an identified device needs no assigned patient; an assigned one does;
// a change of a model's binding holds within the staleness bound.
func TestModelBinding(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	if err := e.store.CreateModel(ctx, vitalgate.DeviceModel{ID: "gluco", Binding: vitalgate.BindingIdentified}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.AddToSite(ctx, op, vitalgate.DefaultSite, "gl-1", "", "gluco", time.Hour); err != nil {
		t.Fatalf("an identified device without a patient: %v", err)
	}
	_, _, err := e.reg.AddToSite(ctx, op, vitalgate.DefaultSite, "bp-1", "", "bp-cuff", time.Hour)
	wantCode(t, "an assigned device without a patient", err, vitalgate.EINVALID)
	d, err := e.reg.Sender(ctx, "gl-1")
	if err != nil {
		t.Fatalf("Sender of an identified device: %v", err)
	}
	if b, err := e.reg.Binding(ctx, d); err != nil || b != vitalgate.BindingIdentified {
		t.Errorf("Binding = %q, %v", b, err)
	}
	if b, _ := e.reg.Binding(ctx, vitalgate.Device{Model: "not-registered"}); b != vitalgate.BindingAssigned {
		t.Errorf("a model that is not registered binds %q", b)
	}
	if err := e.store.UpdateModel(ctx, vitalgate.DeviceModel{ID: "gluco", Binding: vitalgate.BindingAssigned}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(e.reg.MaxStaleness() + time.Second)
	_, err = e.reg.Sender(ctx, "gl-1")
	wantCode(t, "Sender once the model binds assigned patients", err, vitalgate.EFORBIDDEN)
}

// TestSiteBinding: a site's own binding of a model holds for that site's devices only, and
// within the staleness bound once it changes.
func TestSiteBinding(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	if err := e.store.CreateSite(ctx, vitalgate.Site{ID: "north", Name: "North"}); err != nil {
		t.Fatal(err)
	}
	m := vitalgate.DeviceModel{ID: "gluco", Binding: vitalgate.BindingAssigned,
		SiteBindings: map[string]vitalgate.Binding{"north": vitalgate.BindingIdentified}}
	if err := e.store.CreateModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.AddToSite(ctx, op, "north", "gl-n", "", "gluco", time.Hour); err != nil {
		t.Fatalf("an identified device of north without a patient: %v", err)
	}
	_, _, err := e.reg.AddToSite(ctx, op, vitalgate.DefaultSite, "gl-d", "", "gluco", time.Hour)
	wantCode(t, "the default site's device of the model without a patient", err, vitalgate.EINVALID)
	for _, c := range []struct {
		d    vitalgate.Device
		want vitalgate.Binding
	}{
		{vitalgate.Device{Site: "north", Model: "gluco"}, vitalgate.BindingIdentified},
		{vitalgate.Device{Site: vitalgate.DefaultSite, Model: "gluco"}, vitalgate.BindingAssigned},
		{vitalgate.Device{Model: "gluco"}, vitalgate.BindingAssigned}, // a record of no site is the default's
	} {
		if b, err := e.reg.Binding(ctx, c.d); err != nil || b != c.want {
			t.Errorf("Binding(%q) = %q %v, want %q", c.d.Site, b, err, c.want)
		}
	}
	m.SiteBindings = nil
	if err := e.store.UpdateModel(ctx, m); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(e.reg.MaxStaleness() + time.Second)
	_, err = e.reg.Sender(ctx, "gl-n")
	wantCode(t, "Sender once north's setting is gone", err, vitalgate.EFORBIDDEN)
}
