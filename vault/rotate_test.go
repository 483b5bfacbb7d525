package vault_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/sqlite"
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

// copyKeys copies the key files of src into a new directory dst (another node's keys/).
func copyKeys(t *testing.T, src, dst string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(src, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func wrappedUnder(t *testing.T, store *sqlite.DB, v *vault.Vault, patient string) string {
	t.Helper()
	k, err := store.DataKey(context.Background(), v.PatientIndex(patient))
	if err != nil {
		t.Fatal(err)
	}
	id, err := seal.SealedKeyID(k.Wrapped)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestRunningVaultFollowsRotation is finding 9 of issue 13: after `vitalgate keys rotate`
// (another process on the same data dir: new KEK file, every data key rewrapped), a running
// server answered 500 `unknown key id "kek-2"` for a patient whose data key it had not
// cached, until restarted. The vault now reloads its keyring from the key directory.
func TestRunningVaultFollowsRotation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keysDir := filepath.Join(dir, "keys")
	clk := &clock{t: time.Now()}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := vault.CreateKeyring(keysDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A second node on the same database, with a copy of the keys made at init.
	node2Dir := filepath.Join(t.TempDir(), "keys")
	copyKeys(t, keysDir, node2Dir, "index.key", "kek-1.key")

	server := vault.New(store, keys, clk.Now, nil)
	server.FollowKeyDir(keysDir, time.Second)
	idx := func(p string) []byte { return server.PatientIndex(p) }
	old, err := server.Seal(ctx, idx("pat-1"), "Observation", "o1", 1, []byte("before rotation"))
	if err != nil {
		t.Fatal(err)
	}

	// vitalgate keys rotate, then vitalgate device add --patient pat-2: both in other
	// processes that load the keyring from the data dir.
	cliKeys, err := vault.AddKEK(keysDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	cli := vault.New(store, cliKeys, clk.Now, nil)
	if n, err := cli.Rotate(ctx); err != nil || n != 1 {
		t.Fatalf("Rotate = %d, %v", n, err)
	}
	if _, err := cli.SealValue(ctx, vitalgate.DefaultSite, cli.PatientIndex("pat-2"), "device-patient", []byte("pat-2")); err != nil {
		t.Fatal(err)
	}

	// The running server writes for pat-2, whose data key is wrapped under kek-2.
	if _, err := server.Seal(ctx, idx("pat-2"), "Observation", "o2", 1, []byte("after rotation")); err != nil {
		t.Fatalf("write for a patient keyed after the rotation, without restart: %v", err)
	}
	if got := server.Keyring().CurrentKEKID(); got != "kek-2" {
		t.Errorf("server's current KEK = %s, want kek-2", got)
	}
	// A brand-new patient's data key is wrapped under the new KEK.
	clk.Advance(2 * time.Second)
	if _, err := server.Seal(ctx, idx("pat-3"), "Observation", "o3", 1, []byte("new patient")); err != nil {
		t.Fatal(err)
	}
	if id := wrappedUnder(t, store, server, "pat-3"); id != "kek-2" {
		t.Errorf("new patient's data key wrapped under %s, want kek-2", id)
	}
	// Old data still reads: on the server, and on a restarted process (rewrapped key).
	r := vitalgate.SealedResource{Type: "Observation", ID: "o1", Version: 1, PatientIndex: idx("pat-1"), Body: old}
	for name, v := range map[string]*vault.Vault{"running server": server, "fresh process": vault.New(store, cliKeys, clk.Now, nil)} {
		if got, err := v.Open(ctx, r); err != nil || !bytes.Equal(got, []byte("before rotation")) {
			t.Errorf("%s: old data = %q, %v", name, got, err)
		}
	}

	// The second node lacks kek-2 until the operator copies it: a clear, retryable error
	// naming the key and what to do; then it works without a restart.
	node2Keys, err := vault.LoadKeyring(node2Dir)
	if err != nil {
		t.Fatal(err)
	}
	node2 := vault.New(store, node2Keys, clk.Now, nil)
	node2.FollowKeyDir(node2Dir, time.Second)
	_, err = node2.Open(ctx, r)
	if vitalgate.ErrorCode(err) != vitalgate.EUNAVAILABLE || !strings.Contains(vitalgate.ErrorMessage(err), `"kek-2"`) ||
		!strings.Contains(err.Error(), "copy kek-2.key") {
		t.Fatalf("node without kek-2: %v (code %s, message %q)", err, vitalgate.ErrorCode(err), vitalgate.ErrorMessage(err))
	}
	copyKeys(t, keysDir, node2Dir, "kek-2.key")
	clk.Advance(2 * time.Second)
	if got, err := node2.Open(ctx, r); err != nil || !bytes.Equal(got, []byte("before rotation")) {
		t.Fatalf("node 2 after copying kek-2.key: %q, %v", got, err)
	}
}

// TestReloadRefusesAnotherIndexKey: a key directory whose index key changed (a wrong copy)
// is not loaded; the keyring in use stays and blind indexes do not change.
func TestReloadRefusesAnotherIndexKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keysDir := filepath.Join(dir, "keys")
	keys, err := vault.CreateKeyring(keysDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := vault.New(store, keys, nil, nil)
	v.FollowKeyDir(keysDir, time.Nanosecond)
	before := v.PatientIndex("pat-1")
	other := filepath.Join(t.TempDir(), "keys")
	if _, err := vault.CreateKeyring(other, nil); err != nil {
		t.Fatal(err)
	}
	copyKeys(t, other, keysDir, "index.key")
	if _, err := vault.AddKEK(keysDir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Seal(ctx, v.PatientIndex("pat-1"), "Observation", "o1", 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.PatientIndex("pat-1"), before) || v.Keyring().CurrentKEKID() != "kek-1" {
		t.Fatal("a key directory with another index key was loaded")
	}
}

// TestRotateAsIsAudited: the rotation records itself (who, how many keys, the new KEK id),
// once, in the audit log.
func TestRotateAsIsAudited(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
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
	if _, err := v.Seal(ctx, v.PatientIndex("pat-1"), "Observation", "o1", 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	keys, err = vault.AddKEK(filepath.Join(dir, "keys"), nil)
	if err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test", akey)
	n, err := vault.New(store, keys, nil, nil).RotateAs(ctx, audit.NewLog(store, signer, "test", "cli", nil), "alice")
	if err != nil || n != 1 {
		t.Fatalf("RotateAs = %d, %v", n, err)
	}
	var entries []string
	_ = store.AuditEntries(ctx, 0, 10, func(r vitalgate.AuditRecord) error { entries = append(entries, string(r.Data)); return nil })
	if len(entries) != 1 || !strings.Contains(entries[0], `"keys-rotate"`) || !strings.Contains(entries[0], `"alice"`) ||
		!strings.Contains(entries[0], keys.CurrentKEKID()) {
		t.Fatalf("audit entries = %q, want one keys-rotate by alice naming %s", entries, keys.CurrentKEKID())
	}
}
