package access_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// MustService returns an access service over a real store holding n observations of pat-1.
func MustService(t *testing.T, n int) *access.Service {
	t.Helper()
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
	pidx := v.PatientIndex("pat-1")
	var rs []vitalgate.SealedResource
	base := time.Now().UTC().Truncate(time.Microsecond)
	for i := 0; i < n; i++ {
		id := "obs-" + string(rune('a'+i))
		body := []byte(`{"resourceType":"Observation","id":"` + id + `"}`)
		sealed, err := v.Seal(ctx, pidx, "Observation", id, 1, body)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, vitalgate.SealedResource{Type: "Observation", ID: id, Version: 1, PatientIndex: pidx,
			Effective: base.Add(time.Duration(i) * time.Minute), LastUpdated: base, Body: sealed})
	}
	if err := store.CreateResources(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, vitalgate.Client{ID: "dr", Role: vitalgate.RoleClinician, PatientIndexes: [][]byte{pidx}}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateClient(ctx, vitalgate.Client{ID: "dr-other", Role: vitalgate.RoleClinician}); err != nil {
		t.Fatal(err)
	}
	return &access.Service{Store: store, Vault: v}
}

var ehr = vitalgate.Principal{Kind: "client", Site: vitalgate.DefaultSite, ID: "ehr", Role: vitalgate.RoleEHRSystem, Scopes: []string{"system/Observation.rs"}}

func TestSearchPagesWithTamperProofCursor(t *testing.T) {
	s := MustService(t, 5)
	ctx := context.Background()
	q := access.Query{Type: "Observation", PatientID: "pat-1", Count: 2, Desc: true}
	var got []string
	for pages := 0; pages < 10; pages++ {
		p, err := s.Search(ctx, ehr, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Resources {
			got = append(got, string(r))
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if len(got) != 5 || !strings.Contains(got[0], "obs-e") || !strings.Contains(got[4], "obs-a") {
		t.Fatalf("pages gave %v, want obs-e..obs-a newest first", got)
	}

	first, _ := s.Search(ctx, ehr, access.Query{Type: "Observation", PatientID: "pat-1", Count: 2, Desc: true})
	tests := []struct {
		name string
		q    access.Query
	}{
		{"flipped character", access.Query{Type: "Observation", PatientID: "pat-1", Count: 2, Desc: true,
			Cursor: flip(first.Next)}},
		{"cursor of another patient's search", access.Query{Type: "Observation", PatientID: "pat-2", Count: 2, Desc: true, Cursor: first.Next}},
		{"cursor with another order", access.Query{Type: "Observation", PatientID: "pat-1", Count: 2, Cursor: first.Next}},
		{"garbage", access.Query{Type: "Observation", PatientID: "pat-1", Count: 2, Cursor: "!!!"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Search(ctx, ehr, tt.q); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
				t.Fatalf("err = %v, want EINVALID", err)
			}
		})
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	return string(b)
}

func TestScopesAndCareTeams(t *testing.T) {
	s := MustService(t, 1)
	ctx := context.Background()
	tests := []struct {
		name string
		p    vitalgate.Principal
		code string
	}{
		{"system scope", ehr, ""},
		{"no search scope", vitalgate.Principal{Site: vitalgate.DefaultSite, ID: "x", Role: vitalgate.RoleEHRSystem, Scopes: []string{"system/Observation.r"}}, vitalgate.EFORBIDDEN},
		{"other resource scope", vitalgate.Principal{Site: vitalgate.DefaultSite, ID: "x", Role: vitalgate.RoleEHRSystem, Scopes: []string{"system/Patient.rs"}}, vitalgate.EFORBIDDEN},
		{"clinician of the care team", vitalgate.Principal{Site: vitalgate.DefaultSite, ID: "dr", Role: vitalgate.RoleClinician, Scopes: []string{"user/Observation.rs"}}, ""},
		{"clinician outside the care team", vitalgate.Principal{Site: vitalgate.DefaultSite, ID: "dr-other", Role: vitalgate.RoleClinician, Scopes: []string{"user/Observation.rs"}}, vitalgate.EFORBIDDEN},
		{"emergency access", vitalgate.Principal{Site: vitalgate.DefaultSite, ID: "dr-other", Role: vitalgate.RoleClinician, Scopes: []string{"user/Observation.rs"}, Emergency: true, EmergencyReason: "arrest"}, ""},
		{"unregistered clinician", vitalgate.Principal{Site: vitalgate.DefaultSite, ID: "ghost", Role: vitalgate.RoleClinician, Scopes: []string{"user/Observation.rs"}}, vitalgate.EFORBIDDEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Search(ctx, tt.p, access.Query{Type: "Observation", PatientID: "pat-1", Count: 10})
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("err = %v, want code %q", err, tt.code)
			}
			_, _, err = s.Read(ctx, tt.p, "Observation", "obs-a")
			if tt.name != "no search scope" && vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("read: err = %v, want code %q", err, tt.code)
			}
		})
	}
}
