package access_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// TestSiteScoping: a principal reads and searches within its site only. Another site's
// record answers exactly as a missing one, and the attempt is audited as cross-site in the
// audit trail of the site it was aimed at; a deployment-wide principal reads no patient data.
func TestSiteScoping(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := vault.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, keys, nil, nil)
	for _, s := range []string{"a", "b"} {
		if err := store.CreateSite(ctx, vitalgate.Site{ID: s, Name: "Site " + s}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	// The same patient id in both sites: two patients, one observation each.
	for _, s := range []string{"a", "b"} {
		pidx := v.SitePatientIndex(s, "pat-1")
		body, err := v.SealIn(ctx, s, pidx, "Observation", "obs-"+s, 1, []byte(`{"resourceType":"Observation","id":"obs-`+s+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: "obs-" + s, Version: 1, Site: s,
			PatientIndex: pidx, Effective: now, LastUpdated: now, Body: body}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.CreateDevice(ctx, vitalgate.Device{ID: "dev-a", Site: "a", Status: vitalgate.DeviceActive, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	alog := audit.NewLog(store, signer, "test", "n", nil)
	alog.SetRefusalWindow(0)
	s := &access.Service{Store: store, Vault: v, Audit: alog}
	scopes := []string{"system/Observation.rs", "system/Device.rs"}
	inA := vitalgate.Principal{Kind: "client", Site: "a", ID: "ehr-a", Role: vitalgate.RoleEHRSystem, Scopes: scopes}
	inB := vitalgate.Principal{Kind: "client", Site: "b", ID: "ehr-b", Role: vitalgate.RoleEHRSystem, Scopes: scopes}
	everywhere := vitalgate.Principal{Kind: "client", Site: vitalgate.AllSites, ID: "all", Role: vitalgate.RoleEHRSystem, Scopes: scopes}

	if _, _, err := s.Read(ctx, inA, "Observation", "obs-a"); err != nil {
		t.Errorf("a reads its own: %v", err)
	}
	_, _, crossErr := s.Read(ctx, inB, "Observation", "obs-a")
	_, _, missingErr := s.Read(ctx, inB, "Observation", "obs-none")
	if vitalgate.ErrorCode(crossErr) != vitalgate.ENOTFOUND || strings.Replace(vitalgate.ErrorMessage(crossErr), "obs-a", "X", 1) != strings.Replace(vitalgate.ErrorMessage(missingErr), "obs-none", "X", 1) {
		t.Errorf("another site's record: %v; a missing one: %v (want the same answer)", crossErr, missingErr)
	}
	if _, err := s.ReadDevice(ctx, inB, "dev-a"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("b reads a's device: %v", err)
	}
	if _, err := s.ReadOrganization(ctx, inB, "a"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("b reads a's Organization: %v", err)
	}
	if body, err := s.ReadOrganization(ctx, inB, "b"); err != nil || !strings.Contains(string(body), `"name":"Site b"`) {
		t.Errorf("b reads its Organization: %s %v", body, err)
	}
	for _, p := range []vitalgate.Principal{inA, inB} {
		page, err := s.Search(ctx, p, access.Query{Type: "Observation", PatientID: "pat-1", Count: 10})
		if err != nil || len(page.Resources) != 1 || !strings.Contains(string(page.Resources[0]), "obs-"+p.Site) {
			t.Errorf("site %s searches pat-1: %d results, %v", p.Site, len(page.Resources), err)
		}
	}
	if _, _, err := s.Read(ctx, everywhere, "Observation", "obs-a"); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("a deployment-wide principal reads patient data: %v", err)
	}
	if _, err := s.Search(ctx, everywhere, access.Query{Type: "Observation", PatientID: "pat-1", Count: 10}); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("a deployment-wide principal searches patient data: %v", err)
	}

	// b's attempts on a's records are in a's audit trail, as cross-site refusals.
	var got []string
	if err := store.AuditSearch(ctx, vitalgate.AuditQuery{Site: "a", AgentID: "ehr-b", Limit: 10}, func(r vitalgate.AuditRecord) error {
		e, err := audit.UnmarshalEntry(r.Data)
		if err != nil {
			return err
		}
		if e.Outcome != audit.OutcomeMinorFailure || !strings.Contains(e.OutcomeDesc, "cross-site") {
			t.Errorf("entry %+v is not a cross-site refusal", e)
		}
		got = append(got, strings.Join(e.Resources, ","))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("a's audit holds %q of b's attempts, want the Observation, Device and Organization", got)
	}
}
