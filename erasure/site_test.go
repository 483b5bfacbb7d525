package erasure_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/vault"
)

// seedIn stores, for patient of site, a Patient with an identifier and an Observation.
func (d *deployment) seedIn(t *testing.T, site, patient string) []stored {
	t.Helper()
	ctx := context.Background()
	idx := d.v.SitePatientIndex(site, patient)
	var out []stored
	for _, typ := range []string{"Patient", "Observation"} {
		id := site + "-" + strings.ToLower(typ) + "-" + patient
		plain := []byte(`{"resourceType":"` + typ + `","id":"` + id + `","note":"SECRET of ` + patient + `"}`)
		body, err := d.v.SealIn(ctx, site, idx, typ, id, 1, plain)
		if err != nil {
			t.Fatal(err)
		}
		r := vitalgate.SealedResource{Type: typ, ID: id, Version: 1, Site: site, PatientIndex: idx, Body: body, LastUpdated: d.clock.Now()}
		if typ == "Patient" {
			r.IdentifierIndexes = [][]byte{d.v.IdentifierIndex("urn:mrn|" + patient)}
		} else {
			r.Effective = d.clock.Now()
		}
		if err := d.st.CreateResources(ctx, []vitalgate.SealedResource{r}); err != nil {
			t.Fatal(err)
		}
		out = append(out, stored{r, plain})
	}
	return out
}

// TestSiteErasure (issue 14 item 4, on SQLite and PostgreSQL): erasing a whole site takes
// two people, is blocked by a legal hold on any of its patients, and then leaves nothing of
// the site readable: its data keys and resources are gone, no key left unwraps a copy of its
// wrapped data keys, its devices and their certificates are revoked, its clients disabled
// and the site is marked erased (nothing can be added to it). The other site is untouched
// and the audit log verifies.
func TestSiteErasure(t *testing.T) {
	eachStore(t, func(t *testing.T, st vitalgate.Store) {
		ctx := context.Background()
		d := newDeployment(t, st)
		for _, s := range []vitalgate.Site{{ID: "north", Name: "North", OwnKeys: true}, {ID: "south", Name: "South", OwnKeys: true}} {
			if err := vault.CreateSiteKeys(d.keysDir, s.ID, nil); err != nil {
				t.Fatal(err)
			}
			if err := st.CreateSite(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		gone, kept := d.seedIn(t, "north", "p1"), d.seedIn(t, "south", "p1")
		d.seedIn(t, "north", "p2")
		backup, err := st.DataKey(ctx, gone[0].PatientIndex) // what a database backup holds
		if err != nil {
			t.Fatal(err)
		}
		now := d.clock.Now()
		for _, dev := range []vitalgate.Device{{ID: "bp-n", Site: "north", Status: vitalgate.DeviceActive, PatientIndex: gone[0].PatientIndex,
			EnrollSecretHash: "x", CreatedAt: now, UpdatedAt: now}, {ID: "bp-s", Site: "south", Status: vitalgate.DeviceActive, CreatedAt: now, UpdatedAt: now}} {
			if err := st.CreateDevice(ctx, dev); err != nil {
				t.Fatal(err)
			}
			if err := st.AddCertificate(ctx, vitalgate.Certificate{Serial: map[string]string{"bp-n": "0a01", "bp-s": "0a02"}[dev.ID], DeviceID: dev.ID, NotBefore: now, NotAfter: now.AddDate(1, 0, 0), IssuedAt: now}); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []vitalgate.Client{{ID: "ehr-n", Site: "north", Role: vitalgate.RoleEHRSystem}, {ID: "ehr-s", Site: "south", Role: vitalgate.RoleEHRSystem}} {
			if err := st.CreateClient(ctx, c); err != nil {
				t.Fatal(err)
			}
		}

		if _, err := d.svc.RequestSite(ctx, "alice", vitalgate.DefaultSite, "no"); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Fatalf("erasing the default site: %v, want EINVALID", err)
		}
		if _, err := d.svc.RequestSite(ctx, "alice", "west", "no such site"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			t.Fatalf("erasing a site that does not exist: %v, want ENOTFOUND", err)
		}
		id, err := d.svc.RequestSite(ctx, "alice", "north", "end of contract")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.svc.ApproveSite(ctx, "alice", id); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
			t.Fatalf("the requester approves: %v, want EFORBIDDEN", err)
		}
		if _, err := d.svc.Approve(ctx, "bob", id); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
			t.Fatalf("a site request approved as a patient's: %v, want EINVALID", err)
		}
		if err := d.svc.Hold(ctx, "carol", "north", "p2", "litigation"); err != nil {
			t.Fatal(err)
		}
		if _, err := d.svc.ApproveSite(ctx, "bob", id); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
			t.Fatalf("approved under a legal hold: %v, want ECONFLICT", err)
		}
		if err := d.svc.ReleaseHold(ctx, "carol", "north", "p2"); err != nil {
			t.Fatal(err)
		}
		res, err := d.svc.ApproveSite(ctx, "bob", id)
		if err != nil {
			t.Fatal(err)
		}
		if res.DataKeys != 2 || res.Resources != 4 || res.Devices != 1 || res.Clients != 1 || len(res.Destroyed) != 1 {
			t.Fatalf("site erasure = %+v, want 2 data keys, 4 resources, 1 device, 1 client, 1 KEK destroyed", res)
		}
		if _, err := d.svc.ApproveSite(ctx, "bob", id); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
			t.Fatalf("approved twice: %v, want ECONFLICT", err)
		}

		if _, err := st.DataKey(ctx, gone[0].PatientIndex); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			t.Fatalf("DataKey of the erased site = %v, want ENOTFOUND", err)
		}
		for _, typ := range []string{"Patient", "Observation"} {
			n := 0
			if err := st.Resources(ctx, vitalgate.ResourceFilter{Site: "north", Type: typ}, func(vitalgate.SealedResource) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d %s resources of the erased site are left", n, typ)
			}
		}
		kr, err := vault.LoadSiteKeyring(d.keysDir, "north")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.UnwrapDataKey(backup.Wrapped, append([]byte("vitalgate data key v1|"), gone[0].PatientIndex...)); err == nil {
			t.Fatal("the site's keyring left unwraps a copy of its erased data key")
		}
		dev, err := st.Device(ctx, "bp-n")
		if err != nil || dev.Status != vitalgate.DeviceRevoked || dev.EnrollSecretHash != "" || len(dev.PatientIndex) != 0 {
			t.Fatalf("the erased site's device: %+v %v", dev, err)
		}
		if c, err := st.Certificate(ctx, "0a01"); err != nil || c.RevokedAt.IsZero() {
			t.Fatalf("the erased site's certificate: %+v %v", c, err)
		}
		if c, err := st.Client(ctx, "ehr-n"); err != nil || !c.Disabled {
			t.Fatalf("the erased site's client: %+v %v", c, err)
		}
		site, err := st.Site(ctx, "north")
		if err != nil || vitalgate.CheckSiteOpen(site) == nil {
			t.Fatalf("the erased site is still open: %+v %v", site, err)
		}
		if _, err := d.svc.RequestSite(ctx, "alice", "north", "again"); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
			t.Fatalf("erasing an erased site: %v, want EFORBIDDEN", err)
		}

		// The other site: its device, certificate, client and data as they were.
		if dev, err := st.Device(ctx, "bp-s"); err != nil || dev.Status != vitalgate.DeviceActive {
			t.Fatalf("the other site's device: %+v %v", dev, err)
		}
		if c, err := st.Certificate(ctx, "0a02"); err != nil || !c.RevokedAt.IsZero() {
			t.Fatalf("the other site's certificate: %+v %v", c, err)
		}
		if c, err := st.Client(ctx, "ehr-s"); err != nil || c.Disabled {
			t.Fatalf("the other site's client: %+v %v", c, err)
		}
		if site, err := st.Site(ctx, "south"); err != nil || vitalgate.CheckSiteOpen(site) != nil {
			t.Fatalf("the other site: %+v %v", site, err)
		}
		fresh := d.node(t, st, d.keysDir, d.clock)
		for _, r := range kept {
			got, err := fresh.Open(ctx, r.SealedResource)
			if err != nil || !bytes.Equal(got, r.plain) {
				t.Fatalf("the other site's %s: %v", r.Type, err)
			}
		}
		d.verify(t)
	})
}
