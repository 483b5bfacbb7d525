package access_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/fhir"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// TestSearchLaboratoryCategory: a search with Category finds a patient's laboratory results
// (the category tokens ingest indexes them by), with or without a code, and never a vital
// sign with the same code; the scope of each resource type is checked on its own.
func TestSearchLaboratoryCategory(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	keys, err := vault.CreateKeyring(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, keys, nil, nil)
	now := time.Now().UTC().Truncate(time.Microsecond)
	pidx := v.SitePatientIndex(vitalgate.DefaultSite, "pat-1")
	const glucose = "http://loinc.org|2339-0"
	var rs []vitalgate.SealedResource
	for _, o := range []struct {
		typ, id string
		tokens  []string
	}{
		{"Observation", "vital-glucose", []string{glucose}},
		{"Observation", "lab-glucose", []string{glucose, fhir.CategoryToken(fhir.CategoryLaboratory, ""), fhir.CategoryToken(fhir.CategoryLaboratory, glucose)}},
		{"Observation", "lab-potassium", []string{fhir.CategoryToken(fhir.CategoryLaboratory, ""), fhir.CategoryToken(fhir.CategoryLaboratory, "http://loinc.org|6298-4")}},
		{"DiagnosticReport", "report-1", []string{"http://loinc.org|24336-0"}},
	} {
		sealed, err := v.SealIn(ctx, vitalgate.DefaultSite, pidx, o.typ, o.id, 1, []byte(`{"resourceType":"`+o.typ+`","id":"`+o.id+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		var codes [][]byte
		for _, tk := range o.tokens {
			codes = append(codes, v.CodeIndex(tk))
		}
		rs = append(rs, vitalgate.SealedResource{Type: o.typ, ID: o.id, Version: 1, Site: vitalgate.DefaultSite, PatientIndex: pidx,
			CodeIndexes: codes, Effective: now, LastUpdated: now, Body: sealed})
	}
	if err := store.CreateResources(ctx, rs); err != nil {
		t.Fatal(err)
	}
	s := &access.Service{Store: store, Vault: v}
	ehr := vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "ehr", Role: vitalgate.RoleEHRSystem,
		Scopes: []string{"system/Observation.rs", "system/DiagnosticReport.rs"}}
	obsOnly := ehr
	obsOnly.Scopes = []string{"system/Observation.rs"}
	tests := []struct {
		name string
		p    vitalgate.Principal
		q    access.Query
		want []string
		code string
	}{
		{"laboratory", ehr, access.Query{Type: "Observation", Category: fhir.CategoryLaboratory}, []string{"lab-glucose", "lab-potassium"}, ""},
		{"laboratory glucose", ehr, access.Query{Type: "Observation", Category: fhir.CategoryLaboratory, Token: glucose}, []string{"lab-glucose"}, ""},
		{"glucose of any category", ehr, access.Query{Type: "Observation", Token: glucose}, []string{"lab-glucose", "vital-glucose"}, ""},
		{"reports", ehr, access.Query{Type: "DiagnosticReport"}, []string{"report-1"}, ""},
		{"reports without their scope", obsOnly, access.Query{Type: "DiagnosticReport"}, nil, vitalgate.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.PatientID, tt.q.Count = "pat-1", 10
			page, err := s.Search(ctx, tt.p, tt.q)
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("Search: %v, want code %q", err, tt.code)
			}
			var got []string
			for _, b := range page.Resources {
				_, rest, _ := strings.Cut(string(b), `"id":"`)
				id, _, _ := strings.Cut(rest, `"`)
				got = append(got, id)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %q, want %q", got, tt.want)
			}
		})
	}
}
