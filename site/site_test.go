package site_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/site"
	"github.com/vitalgate/vitalgate/sqlite"
)

// keys records the sites it made keys for.
type keys struct{ made []string }

func (k *keys) CreateSiteKeys(s string) error { k.made = append(k.made, s); return nil }

func TestAdmin(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	k := &keys{}
	a := &site.Admin{Store: store, Keys: k, Operator: "op"}
	tests := []struct {
		name, id, siteName string
		own                bool
		code               string
	}{
		{"own keys", "st-marys", "St Mary's Hospital", true, ""},
		{"shared keys", "city", "City Clinic", false, ""},
		{"taken", "st-marys", "Again", true, vitalgate.ECONFLICT},
		{"the default exists", vitalgate.DefaultSite, "Default", false, vitalgate.ECONFLICT},
		{"bad id", "St Marys", "x", false, vitalgate.EINVALID},
		{"every site is no site", vitalgate.AllSites, "x", false, vitalgate.EINVALID},
		{"no name", "nameless", " ", false, vitalgate.EINVALID},
		{"a control character", "ctl", "a\nb", false, vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := a.Add(ctx, tt.id, tt.siteName, tt.own)
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("Add = %v, want code %q", err, tt.code)
			}
			if err == nil && (s.ID != tt.id || s.OwnKeys != tt.own) {
				t.Errorf("Add = %+v", s)
			}
		})
	}
	if len(k.made) != 1 || k.made[0] != "st-marys" {
		t.Errorf("site keys made for %q, want st-marys only", k.made)
	}
	sites, err := a.List(ctx)
	if err != nil || len(sites) != 3 {
		t.Errorf("List = %+v, %v", sites, err)
	}
	if _, err := a.AddModel(ctx, "gluco", vitalgate.BindingIdentified, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddModel(ctx, "gluco", vitalgate.BindingAssigned, nil); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Errorf("second AddModel: %v", err)
	}
	if _, err := a.AddModel(ctx, "cuff", "sometimes", nil); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("AddModel with an unknown binding: %v", err)
	}
	if m, err := a.SetModel(ctx, "gluco", site.ModelChange{Binding: vitalgate.BindingAssigned}); err != nil || m.Binding != vitalgate.BindingAssigned {
		t.Errorf("SetModel = %+v, %v", m, err)
	}
	if _, err := a.SetModel(ctx, "nope", site.ModelChange{Binding: vitalgate.BindingAssigned}); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		t.Errorf("SetModel of an unknown model: %v", err)
	}
	// Every change is audited: two sites, a model added and set.
	if n, err := store.AuditSize(ctx); err != nil || n != 4 {
		t.Errorf("audit size %d, %v; want 4", n, err)
	}
}
