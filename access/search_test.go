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
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// TestSearchAcrossPatientsSkipsHidden pages through a search across patients (the kind
// Patient?identifier= is) as a clinician who may see only some of the matches, the hidden
// ones first in id order. The security review got an empty page with a next link whose
// cursor was then refused; every page must hold what the clinician may see, and every next
// cursor must work.
func TestSearchAcrossPatientsSkipsHidden(t *testing.T) {
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
	const token = "http://loinc.org|8867-4"
	now := time.Now().UTC().Truncate(time.Microsecond)
	var rs []vitalgate.SealedResource
	for _, o := range []struct{ id, patient string }{
		{"a1", "pat-hidden"}, {"a2", "pat-hidden"}, {"a3", "pat-hidden"}, {"b1", "pat-1"}, {"b2", "pat-1"}, {"c1", "pat-hidden"},
	} {
		pidx := v.PatientIndex(o.patient)
		sealed, err := v.Seal(ctx, pidx, "Observation", o.id, 1, []byte(`{"resourceType":"Observation","id":"`+o.id+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, vitalgate.SealedResource{Type: "Observation", ID: o.id, Version: 1, PatientIndex: pidx,
			CodeIndexes: [][]byte{v.CodeIndex(token)}, Effective: now, LastUpdated: now, Body: sealed})
	}
	if err := store.CreateResources(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, vitalgate.Client{ID: "dr", Role: vitalgate.RoleClinician,
		PatientIndexes: [][]byte{v.PatientIndex("pat-1")}}); err != nil {
		t.Fatal(err)
	}
	s := &access.Service{Store: store, Vault: v}
	dr := vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "dr", Role: vitalgate.RoleClinician, Scopes: []string{"user/Observation.rs"}}

	tests := []struct {
		name  string
		count int
		pages [][]string
	}{
		{"one per page", 1, [][]string{{"b1"}, {"b2"}}},
		{"two per page", 2, [][]string{{"b1", "b2"}}},
		{"more than there are", 10, [][]string{{"b1", "b2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := access.Query{Type: "Observation", Token: token, ByPatientToken: true, Count: tt.count}
			var pages [][]string
			for range 10 {
				p, err := s.Search(ctx, dr, q)
				if err != nil {
					t.Fatalf("page %d: %v", len(pages)+1, err)
				}
				var got []string
				for _, b := range p.Resources {
					for _, id := range []string{"a1", "a2", "a3", "b1", "b2", "c1"} {
						if strings.Contains(string(b), `"id":"`+id+`"`) {
							got = append(got, id)
						}
					}
				}
				pages = append(pages, got)
				if p.Next == "" {
					break
				}
				q.Cursor = p.Next
			}
			if !slices.EqualFunc(pages, tt.pages, slices.Equal[[]string]) {
				t.Errorf("pages %q, want %q", pages, tt.pages)
			}
		})
	}
}
