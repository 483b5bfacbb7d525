package backup_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/backup"
	"github.com/vitalgate/vitalgate/node"
	"github.com/vitalgate/vitalgate/vault"
)

// entry is one entry of a backup's tar stream.
type entry struct {
	name string
	mode int64
	data []byte
}

// fixture is a data dir, its backup and the recovery key.
type fixture struct {
	dir    string
	file   []byte
	priv   []byte
	pub    []byte
	signer *audit.Signer
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := node.Init(ctx, dir, node.InitOptions{}, node.Env{}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, dir, node.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	src, err := n.BackupSource()
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := backup.GenerateRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := backup.ParseRecoveryPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := backup.Create(ctx, src, &buf, pk); err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, file: buf.Bytes(), priv: priv, pub: pub, signer: src.Signer}
}

func (f fixture) entries(t *testing.T) []entry {
	t.Helper()
	sk, err := backup.ParseRecoveryKey(f.priv)
	if err != nil {
		t.Fatal(err)
	}
	r, err := backup.NewOpener(bytes.NewReader(f.file), sk)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(r)
	var out []entry
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h.Name, h.Mode, data})
	}
}

// seal re-encrypts entries to the recovery public key, as anyone holding it can.
func (f fixture) seal(t *testing.T, es []entry) []byte {
	t.Helper()
	pk, err := backup.ParseRecoveryPublicKey(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := backup.NewSealer(&buf, pk)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(w)
	for _, e := range es {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (f fixture) unpack(t *testing.T, file []byte) (*backup.Unpacked, string, error) {
	t.Helper()
	sk, err := backup.ParseRecoveryKey(f.priv)
	if err != nil {
		t.Fatal(err)
	}
	v := f.signer.Verifier()
	to := filepath.Join(t.TempDir(), "restored")
	u, err := backup.Unpack(context.Background(), bytes.NewReader(file), sk, &v, to)
	return u, to, err
}

// TestUnpackRefusesTamperedManifestAndFiles: a backup rewritten by someone who holds the
// recovery public key but not the audit key is refused: a changed manifest does not verify,
// a manifest signed by another key is not the deployment's, and a changed, added, removed or
// renamed file does not match the signed manifest. An untouched rewrite is accepted (so the
// refusals are the tampering's).
func TestUnpackRefusesTamperedManifestAndFiles(t *testing.T) {
	f := newFixture(t)
	es := f.entries(t)
	find := func(es []entry, name string) int {
		for i, e := range es {
			if e.name == name {
				return i
			}
		}
		t.Fatalf("no entry %s", name)
		return -1
	}
	otherKey, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := audit.NewSigner(f.signer.Name(), otherKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func([]entry) []entry
		want   string // "" means accepted
	}{
		{name: "untouched", change: func(es []entry) []entry { return es }},
		{name: "manifest count changed", want: "does not verify", change: func(es []entry) []entry {
			i := find(es, "MANIFEST")
			es[i].data = bytes.Replace(es[i].data, []byte("table clients 1"), []byte("table clients 2"), 1)
			return es
		}},
		{name: "manifest signed by another key", want: "does not verify", change: func(es []entry) []entry {
			i := find(es, "MANIFEST")
			text := es[i].data[:bytes.LastIndex(es[i].data, []byte("\n\n"))+1]
			note, err := audit.SignNote(text, otherSigner)
			if err != nil {
				t.Fatal(err)
			}
			es[i].data = note
			return es
		}},
		{name: "verifier key swapped", want: "not by the key given", change: func(es []entry) []entry {
			es[find(es, "audit.pub")].data = []byte(otherSigner.Verifier().String() + "\n")
			return es
		}},
		{name: "database byte changed", want: "does not match its digest", change: func(es []entry) []entry {
			i := find(es, "db/vitalgate.db")
			es[i].data = bytes.Clone(es[i].data)
			es[i].data[len(es[i].data)/2] ^= 1
			return es
		}},
		{name: "key file changed", want: "does not match its digest", change: func(es []entry) []entry {
			i := find(es, "data/keys/kek-1.key")
			es[i].data = []byte(strings.Repeat("A", 43) + "=\n")
			return es
		}},
		{name: "file added", want: "not a file the manifest lists", change: func(es []entry) []entry {
			return append(es, entry{"data/keys/kek-9.key", 0o600, []byte("x")})
		}},
		{name: "file removed", want: "is missing", change: func(es []entry) []entry {
			i := find(es, "data/token.key")
			return append(es[:i:i], es[i+1:]...)
		}},
		{name: "path escapes the data dir", want: "not a file the manifest lists", change: func(es []entry) []entry {
			return append(es, entry{"data/../../evil", 0o600, []byte("x")})
		}},
		{name: "checkpoint removed", want: "checkpoint does not match", change: func(es []entry) []entry {
			i := find(es, "anchor.checkpoint")
			return append(es[:i:i], es[i+1:]...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cp := make([]entry, len(es))
			copy(cp, es)
			u, to, err := f.unpack(t, f.seal(t, tc.change(cp)))
			if tc.want == "" {
				if err != nil || u.Manifest.ID == "" {
					t.Fatalf("untouched rewrite refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if _, err := os.Stat(to); err == nil {
				t.Fatal("a refused backup left its directory")
			}
		})
	}
}

// TestManifestRoundTrip: Marshal and ParseManifest agree, and a signed manifest cannot be
// taken for a checkpoint.
func TestManifestRoundTrip(t *testing.T) {
	f := newFixture(t)
	u, _, err := f.unpack(t, f.file)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backup.ParseManifest(u.Manifest.Marshal())
	if err != nil || !bytes.Equal(m.Marshal(), u.Manifest.Marshal()) {
		t.Fatalf("round trip: %v\n%s", err, m.Marshal())
	}
	if _, err := audit.OpenCheckpoint(u.Note, f.signer.Verifier()); err == nil {
		t.Fatal("a signed manifest opens as a checkpoint")
	}
	if u.Manifest.Tables["audit_log"] != int64(u.Manifest.AuditSize) || u.Manifest.AuditSize == 0 {
		t.Fatalf("manifest audit %d, audit_log rows %d", u.Manifest.AuditSize, u.Manifest.Tables["audit_log"])
	}
}

// TestCreateRetriesWhenKeysChange: when the keyring changes while the snapshot is taken (a
// rotation or an erasure's key replacement), the snapshot is taken again, so that the backup
// holds every key-encryption key its data keys are wrapped under.
func TestCreateRetriesWhenKeysChange(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if _, err := node.Init(ctx, dir, node.InitOptions{}, node.Env{}); err != nil {
		t.Fatal(err)
	}
	n, err := node.Open(ctx, dir, node.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	src, err := n.BackupSource()
	if err != nil {
		t.Fatal(err)
	}
	snapshots := 0
	real := src.Snapshot
	src.Snapshot = func(ctx context.Context, path string) error {
		snapshots++
		if snapshots == 1 { // a key rotation lands during the first snapshot
			if _, err := vault.AddKEK(filepath.Join(dir, "keys"), rand.Reader); err != nil {
				return err
			}
		}
		return real(ctx, path)
	}
	_, pub, err := backup.GenerateRecoveryKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := backup.ParseRecoveryPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	m, err := backup.Create(ctx, src, io.Discard, pk)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.File("keys/kek-2.key"); snapshots != 2 || !ok {
		t.Fatalf("snapshots %d, kek-2 in the backup: %v", snapshots, ok)
	}
}
