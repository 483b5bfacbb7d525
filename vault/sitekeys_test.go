package vault_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// TestSiteKeys: a site with its own KEK wraps its patients' data keys with it; rotating it
// rewraps that site's keys only, the deployment's rotation skips it, and a vault without the
// site's key files cannot open its data (while every other site's stays readable).
func TestSiteKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keysDir := filepath.Join(dir, "keys")
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := vault.CreateKeyring(keysDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := vault.CreateSiteKeys(keysDir, "a", nil); err != nil {
		t.Fatal(err)
	}
	if code := vitalgate.ErrorCode(vault.CreateSiteKeys(keysDir, "a", nil)); code != vitalgate.ECONFLICT {
		t.Errorf("second CreateSiteKeys: %q, want conflict", code)
	}
	for _, s := range []vitalgate.Site{{ID: "a", Name: "A", OwnKeys: true}, {ID: "b", Name: "B"}} {
		if err := store.CreateSite(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	v := vault.New(store, keys, nil, nil)
	v.FollowKeyDir(keysDir, 0)
	seal1 := func(site, patient string) vitalgate.SealedResource {
		t.Helper()
		pidx := v.SitePatientIndex(site, patient)
		body, err := v.SealIn(ctx, site, pidx, "Observation", site+patient, 1, []byte("of "+site))
		if err != nil {
			t.Fatalf("seal for site %s: %v", site, err)
		}
		return vitalgate.SealedResource{Type: "Observation", ID: site + patient, Version: 1, Site: site, PatientIndex: pidx, Body: body}
	}
	ra, rb, rd := seal1("a", "p1"), seal1("b", "p1"), seal1(vitalgate.DefaultSite, "p1")
	wrapped := func(site string, r vitalgate.SealedResource) string {
		t.Helper()
		k, err := store.DataKey(ctx, r.PatientIndex)
		if err != nil || k.Site != site {
			t.Fatalf("data key of %s: site %q, %v", r.ID, k.Site, err)
		}
		id, _ := seal.SealedKeyID(k.Wrapped)
		return id + ":" + string(k.Wrapped)
	}
	wa, wb, wd := wrapped("a", ra), wrapped("b", rb), wrapped(vitalgate.DefaultSite, rd)

	// The deployment's rotation leaves a's key; a's rotation leaves b's and the default's.
	if _, err := vault.AddKEK(keysDir, nil); err != nil {
		t.Fatal(err)
	}
	v2, _ := vault.LoadKeyring(keysDir)
	dep := vault.New(store, v2, nil, nil)
	dep.FollowKeyDir(keysDir, 0)
	if n, err := dep.Rotate(ctx); err != nil || n != 2 {
		t.Fatalf("deployment Rotate = %d, %v; want the 2 keys of b and the default site", n, err)
	}
	if wrapped("a", ra) != wa {
		t.Error("the deployment's rotation rewrapped a site's own key")
	}
	if wrapped("b", rb) == wb || wrapped(vitalgate.DefaultSite, rd) == wd {
		t.Error("the deployment's rotation left a key of a site that shares the deployment's KEK")
	}
	wb, wd = wrapped("b", rb), wrapped(vitalgate.DefaultSite, rd)
	if _, err := dep.NewSiteKEK(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if n, err := dep.RotateSite(ctx, "a"); err != nil || n != 1 {
		t.Fatalf("RotateSite(a) = %d, %v", n, err)
	}
	if wrapped("a", ra) == wa || wrapped("b", rb) != wb || wrapped(vitalgate.DefaultSite, rd) != wd {
		t.Error("RotateSite(a) did not rewrap exactly a's key")
	}
	if _, err := dep.RotateSite(ctx, "b"); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("RotateSite of a site without its own keys: %v", err)
	}
	// Every site's data still opens, on a vault that held the old keys and on a new one.
	for _, vv := range []*vault.Vault{v, dep} {
		for _, r := range []vitalgate.SealedResource{ra, rb, rd} {
			if got, err := vv.Open(ctx, r); err != nil || !bytes.Equal(got, []byte("of "+r.Site)) {
				t.Errorf("open %s after the rotations: %q, %v", r.ID, got, err)
			}
		}
	}
	// A node without a's key directory cannot open a's data, and says what to copy.
	other := filepath.Join(t.TempDir(), "keys")
	copyKeys(t, keysDir, other, "index.key", "kek-1.key", "kek-2.key")
	kr, err := vault.LoadKeyring(other)
	if err != nil {
		t.Fatal(err)
	}
	node2 := vault.New(store, kr, nil, nil)
	node2.FollowKeyDir(other, 0)
	if _, err := node2.Open(ctx, ra); vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE {
		t.Errorf("a node without a's keys opens a's data: %v", err)
	}
	if got, err := node2.Open(ctx, rb); err != nil || !bytes.Equal(got, []byte("of b")) {
		t.Errorf("a node without a's keys cannot open b's data: %v", err)
	}
}
