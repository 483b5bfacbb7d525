package auth_test

import (
	"context"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

// TestTokensCarryTheSite: a client's token names its site, which every request's
// authentication returns; its grant is audited in that site; a client of no site gets no
// token; ClientAdmin registers clients of existing sites only, deployment-wide ones only as
// auditors.
func TestTokensCarryTheSite(t *testing.T) {
	e := mustService(t)
	ctx := context.Background()
	if err := e.store.CreateSite(ctx, vitalgate.Site{ID: "b", Name: "B"}); err != nil {
		t.Fatal(err)
	}
	secret := e.addClient(vitalgate.Client{ID: "ehr-b", Site: "b", Role: vitalgate.RoleEHRSystem})
	from := e.size()
	tok, err := e.svc.IssueToken(ctx, basic("ehr-b", secret))
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Authenticate(ctx, tok.AccessToken)
	if err != nil || c.Site != "b" {
		t.Fatalf("Authenticate = site %q, %v; want b", c.Site, err)
	}
	if es := e.entries(from); len(es) != 1 || es[0].Site != "b" {
		t.Errorf("the grant's audit entries: %+v", es)
	}

	a := &auth.ClientAdmin{Store: e.store, Operator: "op", Hash: fast}
	tests := []struct {
		name string
		c    vitalgate.Client
		code string
	}{
		{"an existing site", vitalgate.Client{ID: "c1", Site: "b", Role: vitalgate.RoleClinician}, ""},
		{"no site: the default", vitalgate.Client{ID: "c2", Role: vitalgate.RoleEHRSystem}, ""},
		{"an unknown site", vitalgate.Client{ID: "c3", Site: "nowhere", Role: vitalgate.RoleEHRSystem}, vitalgate.ENOTFOUND},
		{"a bad site id", vitalgate.Client{ID: "c4", Site: "Not A Site", Role: vitalgate.RoleEHRSystem}, vitalgate.EINVALID},
		{"a deployment-wide auditor", vitalgate.Client{ID: "c5", Site: vitalgate.AllSites, Role: vitalgate.RoleAuditor}, ""},
		{"a deployment-wide EHR", vitalgate.Client{ID: "c6", Site: vitalgate.AllSites, Role: vitalgate.RoleEHRSystem}, vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Add(ctx, tt.c)
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("Add = %v, want code %q", err, tt.code)
			}
			if err != nil {
				return
			}
			got, err := e.store.Client(ctx, tt.c.ID)
			if err != nil || got.Site != vitalgate.StoredSite(tt.c.Site) {
				t.Errorf("stored client of site %q, %v", got.Site, err)
			}
		})
	}
	// A care team is indexed within the clinician's site.
	a.Index = func(site, p string) []byte { return []byte(site + "/" + p) }
	if err := a.SetCareTeam(ctx, "c1", []string{"p1"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.store.Client(ctx, "c1"); len(got.PatientIndexes) != 1 || string(got.PatientIndexes[0]) != "b/p1" {
		t.Errorf("care team indexes %q, want b/p1", got.PatientIndexes)
	}
}
