package erasure_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/erasure"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/vault"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// deployment is one node of a deployment: its key directory, vault and erasure service.
type deployment struct {
	st      vitalgate.Store
	keysDir string
	clock   *clock
	v       *vault.Vault
	svc     *erasure.Service
	verify  func(t *testing.T)
}

func newDeployment(t *testing.T, st vitalgate.Store) *deployment {
	t.Helper()
	d := &deployment{st: st, keysDir: filepath.Join(t.TempDir(), "keys"), clock: &clock{t: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)}}
	if _, err := vault.CreateKeyring(d.keysDir, nil); err != nil {
		t.Fatal(err)
	}
	d.v = d.node(t, st, d.keysDir, d.clock)
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	alog := audit.NewLog(st, signer, "test", "cli", nil)
	d.svc = erasure.New(st, d.v, alog, d.clock.Now)
	d.verify = func(t *testing.T) {
		t.Helper()
		if _, err := audit.Verify(context.Background(), audit.StoreLog{Store: st}, nil, signer.Verifier(), nil); err != nil {
			t.Fatalf("audit verify after erasure: %v", err)
		}
	}
	return d
}

// node returns a vault over st following keysDir, as `serve` runs it.
func (d *deployment) node(t *testing.T, st vault.KeyStore, keysDir string, c *clock) *vault.Vault {
	t.Helper()
	kr, err := vault.LoadKeyring(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(st, kr, c.Now, nil)
	v.FollowKeyDir(keysDir, 0)
	return v
}

// otherNode copies the key directory as it is now to another node's data directory.
func (d *deployment) otherNode(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "keys")
	copyTree(t, d.keysDir, dst)
	return dst
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// stored is one resource as sealed and stored, with its plaintext.
type stored struct {
	vitalgate.SealedResource
	plain []byte
}

// seed stores, for patient, a Patient with an identifier and an Observation with a code.
func (d *deployment) seed(t *testing.T, v *vault.Vault, patient string) []stored {
	t.Helper()
	ctx := context.Background()
	idx := v.SitePatientIndex(vitalgate.DefaultSite, patient)
	var out []stored
	for _, typ := range []string{"Patient", "Observation"} {
		id := strings.ToLower(typ) + "-" + patient
		plain := []byte(`{"resourceType":"` + typ + `","id":"` + id + `","note":"SECRET of ` + patient + `"}`)
		body, err := v.SealIn(ctx, vitalgate.DefaultSite, idx, typ, id, 1, plain)
		if err != nil {
			t.Fatal(err)
		}
		r := vitalgate.SealedResource{Type: typ, ID: id, Version: 1, Site: vitalgate.DefaultSite, PatientIndex: idx, Body: body,
			LastUpdated: d.clock.Now()}
		if typ == "Patient" {
			r.IdentifierIndexes = [][]byte{v.IdentifierIndex("urn:mrn|" + patient)}
		} else {
			r.CodeIndexes = [][]byte{v.CodeIndex("http://loinc.org|8867-4")}
			r.Effective = d.clock.Now()
		}
		if err := d.st.CreateResources(ctx, []vitalgate.SealedResource{r}); err != nil {
			t.Fatal(err)
		}
		out = append(out, stored{r, plain})
	}
	return out
}

func (d *deployment) erase(t *testing.T, patient string) erasure.Result {
	t.Helper()
	ctx := context.Background()
	id, err := d.svc.Request(ctx, "alice", vitalgate.DefaultSite, patient, "the patient's request")
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.svc.Approve(ctx, "bob", id)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// keysLeft returns every key file left under dir (KEKs of every keyring and the index key),
// decoded, by path.
func keysLeft(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".key") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return err
		}
		out[p] = k
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 2 {
		t.Fatalf("keys left in %s: %d, want the new KEK and the index key", dir, len(out))
	}
	return out
}

// TestErasureLeavesNoKeyThatOpensThePatient (issue 17 item 2, on SQLite and PostgreSQL):
// after an approved erasure, the patient's rows are gone, and neither the keyring left nor
// any key file left (every KEK kept, the index key), tried as the KEK of every generation and
// as the data key itself, opens a byte of what a backup kept: the wrapped data key and the
// sealed bodies. The other patient still reads and the audit log verifies.
func TestErasureLeavesNoKeyThatOpensThePatient(t *testing.T) {
	eachStore(t, func(t *testing.T, st vitalgate.Store) {
		ctx := context.Background()
		d := newDeployment(t, st)
		gone, kept := d.seed(t, d.v, "gone"), d.seed(t, d.v, "kept")
		// A second generation first, so that more than one old KEK is destroyed.
		if _, err := vault.AddKEK(d.keysDir, nil); err != nil {
			t.Fatal(err)
		}
		idx := gone[0].PatientIndex
		backup, err := st.DataKey(ctx, idx) // what a backup of the database holds
		if err != nil {
			t.Fatal(err)
		}
		res := d.erase(t, "gone")
		if res.DataKeys != 1 || res.Resources != 2 || len(res.Destroyed) != 2 {
			t.Fatalf("erasure = %+v, want 1 data key, 2 resources, 2 KEKs destroyed", res)
		}

		if _, err := st.DataKey(ctx, idx); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			t.Fatalf("DataKey(erased) = %v, want ENOTFOUND", err)
		}
		n := 0
		if err := st.Resources(ctx, vitalgate.ResourceFilter{Site: vitalgate.DefaultSite, Type: "Observation", PatientIndex: idx}, func(vitalgate.SealedResource) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d Observations of the erased patient are left", n)
		}

		left := keysLeft(t, d.keysDir)
		kr, err := vault.LoadKeyring(d.keysDir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kr.UnwrapDataKey(backup.Wrapped, append([]byte("vitalgate data key v1|"), idx...)); err == nil {
			t.Fatal("the keyring left unwraps the erased patient's data key")
		}
		index := left[filepath.Join(d.keysDir, "index.key")]
		kekID, _ := seal.SealedKeyID(backup.Wrapped)
		gen, _ := strconv.Atoi(strings.TrimPrefix(kekID, "kek-"))
		dekID := "dek-" + hex.EncodeToString(idx)[:16]
		for path, key := range left {
			// Every key left as the KEK that wrapped the data key.
			one, err := seal.NewKeyring([]seal.KEK{{Generation: gen, Key: bytes.Clone(key)}}, index)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := one.UnwrapDataKey(backup.Wrapped, append([]byte("vitalgate data key v1|"), idx...)); err == nil {
				t.Fatalf("%s unwraps the erased patient's data key", path)
			}
			// Every key left as the data key itself.
			c, err := seal.NewCipher(bytes.Clone(key), dekID)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range gone {
				if got, err := c.Open(r.Body, seal.AAD(r.Type, r.ID, "1")); err == nil || bytes.Contains(got, []byte("SECRET")) {
					t.Fatalf("%s opens the erased %s", path, r.Type)
				}
			}
		}
		// The other patient reads through a fresh vault over the keys left; the log verifies.
		fresh := vault.New(st, kr, nil, nil)
		for _, r := range kept {
			got, err := fresh.Open(ctx, r.SealedResource)
			if err != nil || !bytes.Equal(got, r.plain) {
				t.Fatalf("the other patient's %s: %v", r.Type, err)
			}
		}
		d.verify(t)
	})
}

// pausing holds the first PutDataKeyUnder until released: a data key being stored, wrapped
// under the KEK of the moment, while an erasure replaces that KEK.
type pausing struct {
	vitalgate.Store
	once             sync.Once
	reached, release chan struct{}
}

func (p *pausing) PutDataKeyUnder(ctx context.Context, k vitalgate.DataKey, keyring, kek string) (vitalgate.DataKey, error) {
	first := false
	p.once.Do(func() { first = true })
	if first {
		close(p.reached)
		<-p.release
	}
	return p.Store.PutDataKeyUnder(ctx, k, keyring, kek)
}

// TestShredRaceLeavesNoKeyUnderDestroyedKEK (issue 17 item 2, the rewrap race, on SQLite and
// PostgreSQL): a node seals a new patient's first resource, wrapping the new data key under
// the current KEK, and stores it only after an erasure on another node has replaced and
// destroyed that KEK. The store refuses it; a node that has the new KEK (the same data
// directory) stores it under the new KEK, one that lacks it answers 503 and stores nothing.
// Either way every stored data key unwraps with the keys left.
func TestShredRaceLeavesNoKeyUnderDestroyedKEK(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sameDir  bool
		wantCode string
	}{
		{"same data dir", true, ""},
		{"another node without the new KEK", false, vitalgate.EUNAVAILABLE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st vitalgate.Store) {
				ctx := context.Background()
				d := newDeployment(t, st)
				d.seed(t, d.v, "gone")
				d.seed(t, d.v, "kept")
				dir := d.keysDir
				if !tc.sameDir {
					dir = d.otherNode(t)
				}
				p := &pausing{Store: st, reached: make(chan struct{}), release: make(chan struct{})}
				w := d.node(t, p, dir, d.clock)
				lateIdx := w.SitePatientIndex(vitalgate.DefaultSite, "late")
				done := make(chan error, 1)
				var body []byte
				go func() {
					var err error
					body, err = w.SealIn(ctx, vitalgate.DefaultSite, lateIdx, "Observation", "obs-late", 1, []byte(`{"late":true}`))
					done <- err
				}()
				<-p.reached // wrapped under kek-1, not stored yet
				d.erase(t, "gone")
				close(p.release)
				err := <-done
				if vitalgate.ErrorCode(err) != tc.wantCode && !(tc.wantCode == "" && err == nil) {
					t.Fatalf("SealIn across the erasure = %v, want code %q", err, tc.wantCode)
				}
				kr, lerr := vault.LoadKeyring(d.keysDir)
				if lerr != nil {
					t.Fatal(lerr)
				}
				var bad []string
				keys := 0
				if _, err := st.RewrapDataKeys(ctx, func(k vitalgate.DataKey) ([]byte, bool, error) {
					keys++
					if _, err := kr.UnwrapDataKey(k.Wrapped, append([]byte("vitalgate data key v1|"), k.PatientIndex...)); err != nil {
						id, _ := seal.SealedKeyID(k.Wrapped)
						bad = append(bad, id)
					}
					return nil, false, nil
				}); err != nil {
					t.Fatal(err)
				}
				if len(bad) > 0 {
					t.Fatalf("data keys under a destroyed KEK after the erasure: %v", bad)
				}
				if tc.sameDir {
					if keys != 2 {
						t.Fatalf("%d data keys stored, want kept's and late's", keys)
					}
					got, err := vault.New(st, kr, nil, nil).Open(ctx, vitalgate.SealedResource{Type: "Observation", ID: "obs-late", Version: 1, PatientIndex: lateIdx, Body: body})
					if err != nil || string(got) != `{"late":true}` {
						t.Fatalf("the late resource does not open with the keys left: %v", err)
					}
				} else if _, err := st.DataKey(ctx, lateIdx); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
					t.Fatalf("DataKey(late) = %v, want none stored", err)
				}
			})
		})
	}
}

// TestOtherNodeDropsErasedPatient (issue 17 item 2, caches on every node, on SQLite and
// PostgreSQL, two vaults with their own key directories as two nodes): after an erasure on
// node A, node B, which had the patient's data key cached, no longer opens its data once the
// staleness bound has passed on B's clock; it refuses the erased wrapped key put back from a
// backup although it still holds the old KEK; it answers 503 for the other patient until the
// new KEK is copied to it, then serves that patient and deletes its own copy of the old KEK.
func TestOtherNodeDropsErasedPatient(t *testing.T) {
	eachStore(t, func(t *testing.T, st vitalgate.Store) {
		ctx := context.Background()
		a := newDeployment(t, st)
		gone, kept := a.seed(t, a.v, "gone"), a.seed(t, a.v, "kept")
		bDir := a.otherNode(t)
		bClock := &clock{t: a.clock.Now()}
		b := a.node(t, st, bDir, bClock)
		for _, r := range append(append([]stored{}, gone...), kept...) {
			if _, err := b.Open(ctx, r.SealedResource); err != nil {
				t.Fatalf("node B before the erasure: %v", err)
			}
		}
		backup, err := st.DataKey(ctx, gone[0].PatientIndex)
		if err != nil {
			t.Fatal(err)
		}
		res := a.erase(t, "gone")

		bClock.Advance(b.MaxAge())
		if _, err := b.Open(ctx, gone[1].SealedResource); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			t.Fatalf("node B opens the erased patient one bound after the erasure: %v, want ENOTFOUND", err)
		}
		if _, err := b.Open(ctx, kept[1].SealedResource); vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE {
			t.Fatalf("node B without the new KEK: %v, want EUNAVAILABLE", err)
		}
		// The erased wrapped key put back from a backup: B still holds kek-1 but refuses it.
		if _, err := st.PutDataKey(ctx, backup); err != nil {
			t.Fatal(err)
		}
		if !b.Keyring().HasKEK("kek-1") {
			t.Fatal("node B dropped kek-1 without a newer key to replace it")
		}
		if _, err := b.Open(ctx, gone[1].SealedResource); err == nil {
			t.Fatal("node B opens the erased patient from a restored copy of its wrapped key")
		}
		if _, err := st.ErasureRequest(ctx, "none"); vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
			t.Fatal(err)
		}
		// The operator copies the new KEK to node B: it serves the other patient again and
		// destroys its own copy of the old KEK within the bound.
		copyTree(t, a.keysDir, bDir)
		bClock.Advance(b.MaxAge())
		for _, r := range kept {
			got, err := b.Open(ctx, r.SealedResource)
			if err != nil || !bytes.Equal(got, r.plain) {
				t.Fatalf("node B with the new KEK, %s: %v", r.Type, err)
			}
		}
		bClock.Advance(b.MaxAge())
		if _, err := b.Open(ctx, kept[0].SealedResource); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(bDir, "kek-1.key")); !os.IsNotExist(err) {
			t.Fatalf("node B's kek-1.key: %v, want it deleted", err)
		}
		if b.Keyring().HasKEK("kek-1") || !b.Keyring().HasKEK(res.NewKEK) {
			t.Fatalf("node B's keyring holds %v, want %s without kek-1", b.Keyring().KEKIDs(), res.NewKEK)
		}
		if _, err := b.Open(ctx, gone[1].SealedResource); err == nil {
			t.Fatal("node B opens the erased patient with the new KEK")
		}
	})
}
