package auditquery_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auditquery"
)

// TestSiteAuditors: a site auditor searches and proves its site's entries only; a deployment
// auditor sees every entry; a client of no site sees nothing. Refusals are recorded.
func TestSiteAuditors(t *testing.T) {
	f := newFixture(t) // entries 0..3, of no site
	ctx := context.Background()
	t0 := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	for i, site := range []string{"a", "b", "a"} { // entries 4, 5, 6
		if err := f.log.Log.Append(ctx, audit.Entry{Time: t0.Add(time.Duration(i) * time.Minute), Action: "R", Type: "rest",
			AgentType: "client", AgentID: "ehr-" + site, Site: site}); err != nil {
			t.Fatal(err)
		}
	}
	auditorOf := func(site string) vitalgate.Principal {
		p := auditor
		p.ID, p.Site = "aud-"+site, site
		return p
	}
	tests := []struct {
		name string
		p    vitalgate.Principal
		q    auditquery.Query
		want []string
	}{
		{"site a", auditorOf("a"), auditquery.Query{}, []string{"6", "4"}},
		{"site b", auditorOf("b"), auditquery.Query{}, []string{"5"}},
		{"site b asks for a's agent", auditorOf("b"), auditquery.Query{Agent: "ehr-a"}, nil},
		{"the deployment", auditor, auditquery.Query{}, []string{"6", "5", "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := f.svc.Search(ctx, tt.p, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			// The search entries recorded by the searches before are of the auditors' sites:
			// keep the entries this test wrote.
			var got []string
			for _, id := range ids(evs) {
				if id >= "4" && id <= "6" && len(id) == 1 {
					got = append(got, id)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Search = %v, want %v", got, tt.want)
			}
		})
	}
	if _, err := f.svc.Search(ctx, auditorOf(""), auditquery.Query{}); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Errorf("an auditor of no site: %v", err)
	}
	if inc, err := f.svc.Inclusion(ctx, auditorOf("a"), 4, 7); err != nil || !strings.Contains(string(inc.Entry), `"site":"a"`) {
		t.Errorf("a's auditor proves a's entry: %v", err)
	}
	for _, idx := range []uint64{0, 5} { // of no site, of b
		if _, err := f.svc.Inclusion(ctx, auditorOf("a"), idx, 7); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			t.Errorf("a's auditor proves entry %d: %v, want not found", idx, err)
		}
	}
	if _, err := f.svc.Inclusion(ctx, auditor, 5, 7); err != nil {
		t.Errorf("the deployment auditor proves b's entry: %v", err)
	}
	// The refused proofs are in a's audit trail.
	refused := 0
	if err := f.store.AuditSearch(ctx, vitalgate.AuditQuery{Site: "a", AgentID: "aud-a", Outcome: audit.OutcomeMinorFailure, Limit: 10},
		func(vitalgate.AuditRecord) error { refused++; return nil }); err != nil {
		t.Fatal(err)
	}
	if refused == 0 {
		t.Error("the refused inclusion proofs are not audited")
	}
}
