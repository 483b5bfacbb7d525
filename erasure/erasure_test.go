package erasure_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/erasure"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// TestApproveShredsOnSQLite: two people, a legal hold blocks, and after approval the
// patient's data key is gone, the old KEK file is destroyed, and another patient still reads.
func TestApproveShredsOnSQLite(t *testing.T) {
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
	v := vault.New(store, keys, nil, nil)
	v.FollowKeyDir(keysDir, 0)
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	alog := audit.NewLog(store, signer, "test", "cli", nil)

	var bodies []vitalgate.SealedResource
	for _, p := range []string{"gone", "kept"} {
		idx := v.SitePatientIndex(vitalgate.DefaultSite, p)
		body, err := v.SealIn(ctx, vitalgate.DefaultSite, idx, "Observation", "obs-"+p, 1, []byte(`{"secret":"`+p+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		r := vitalgate.SealedResource{Type: "Observation", ID: "obs-" + p, Version: 1, Site: vitalgate.DefaultSite, PatientIndex: idx, Body: body}
		if err := store.CreateResources(ctx, []vitalgate.SealedResource{r}); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, r)
	}
	goneKey, err := store.DataKey(ctx, bodies[0].PatientIndex)
	if err != nil {
		t.Fatal(err)
	}

	svc := erasure.New(store, v, alog, nil)
	id, err := svc.Request(ctx, "alice", vitalgate.DefaultSite, "gone", "patient's request")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "alice", id); vitalgate.ErrorCode(err) != vitalgate.EFORBIDDEN {
		t.Fatalf("Approve by the requester = %v, want EFORBIDDEN", err)
	}
	if err := svc.Hold(ctx, "carol", vitalgate.DefaultSite, "gone", "litigation"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, "bob", id); vitalgate.ErrorCode(err) != vitalgate.ECONFLICT {
		t.Fatalf("Approve under a hold = %v, want ECONFLICT", err)
	}
	if err := svc.ReleaseHold(ctx, "carol", vitalgate.DefaultSite, "gone"); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Approve(ctx, "bob", id)
	if err != nil {
		t.Fatal(err)
	}
	if res.DataKeys != 1 || res.Resources != 1 || res.Rewrapped != 1 || len(res.Destroyed) != 1 {
		t.Fatalf("Approve = %+v", res)
	}
	if _, err := os.Stat(filepath.Join(keysDir, "kek-1.key")); !os.IsNotExist(err) {
		t.Fatalf("kek-1.key after erasure: %v, want it destroyed", err)
	}
	// The other patient still reads, through a fresh vault over the keys left on disk.
	left, err := vault.LoadKeyring(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	fresh := vault.New(store, left, nil, nil)
	if _, err := fresh.Open(ctx, bodies[1]); err != nil {
		t.Fatalf("the other patient no longer reads: %v", err)
	}
	// The erased patient's old wrapped key (a copy in a backup) unwraps under no key left.
	if _, err := left.UnwrapDataKey(goneKey.Wrapped, append([]byte("vitalgate data key v1|"), goneKey.PatientIndex...)); err == nil {
		t.Fatal("the erased patient's wrapped data key still unwraps with the keys left")
	}
	if _, err := audit.Verify(ctx, audit.StoreLog{Store: store}, nil, signer.Verifier(), nil); err != nil {
		t.Fatalf("audit verify after erasure: %v", err)
	}
}
