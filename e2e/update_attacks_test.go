package e2e_test

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"database/sql"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/vitalgate/vitalgate/updateclient"
)

// TestUpdateClientKeyAttacks stages, against the real server, the attacks of issue 18 item 6
// that TestUpdateClientAgainstServer does not: an attacker who stole the data dir's online
// keys (update-snapshot.key, update-timestamp.key) and can write the server's database
// forges a model role listing an image of theirs and re-signs the snapshot and timestamp
// (refused: the model role is not signed by the offline targets keys); a target made longer
// in the store, with the length the server announces (refused: longer than signed); and
// mix-and-match, the model role's old version served as its newest (refused: not the
// version the trusted snapshot names). The device is the real update client over mutual TLS.
func TestUpdateClientKeyAttacks(t *testing.T) {
	dir := initDir(t)
	work := t.TempDir()
	run(t, "model", "add", "--data", dir, "--id", "pump-a", "--binding", "assigned")
	keys := filepath.Join(work, "keys")
	run(t, "update", "keys", "init", "--out", keys)
	for _, v := range []string{"1.0.0", "1.1.0"} { // two versions of the pump-a role
		fw := filepath.Join(work, "pump-"+v+".bin")
		if err := os.WriteFile(fw, []byte("pump firmware "+v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		run(t, "update", "publish", "--data", dir, "--keys", keys, "--model", "pump-a", "--version", v, fw)
	}
	secret := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "pump-1", "--patient", "pat-1", "--model", "pump-a"))
	root := []byte(run(t, "update", "root", "--data", dir))
	srv := startServer(t, dir)
	cert := srv.enroll(t, "pump-1", secret)
	httpc := srv.client(&cert)
	httpc.Timeout = 0
	ctx := context.Background()
	newClient := func(t *testing.T) *updateclient.Client {
		state := t.TempDir()
		c, err := updateclient.New(updateclient.Config{ServerURL: srv.url, HTTPClient: httpc, TrustedRoot: root,
			MetadataDir: filepath.Join(state, "metadata"), TargetsDir: filepath.Join(state, "targets"),
			Model: "pump-a", Retry: updateclient.Retry{Attempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	genuine := updateclient.Offer{Model: "pump-a", Version: "1.1.0", Target: "pump-a/1.1.0/pump-1.1.0.bin"}
	if _, err := newClient(t).Verify(ctx, genuine); err != nil {
		t.Fatalf("the genuine release: %v", err)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "vitalgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	latest := func(role string) (int64, []byte) {
		t.Helper()
		var v int64
		var data []byte
		if err := db.QueryRow(`SELECT version, data FROM update_metadata WHERE role = ? ORDER BY version DESC LIMIT 1`, role).Scan(&v, &data); err != nil {
			t.Fatal(err)
		}
		return v, data
	}
	store := func(role string, version int64, expires time.Time, data []byte) {
		t.Helper()
		if _, err := db.Exec(`INSERT INTO update_metadata (role, version, data, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`,
			role, version, data, expires.UnixMicro(), time.Now().UnixMicro()); err != nil {
			t.Fatal(err)
		}
	}
	onlineSigner := func(file string) signature.Signer {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s is not PEM", file)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		s, err := signature.LoadED25519Signer(k.(ed25519.PrivateKey))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("online keys compromised: a forged model role", func(t *testing.T) {
		// The attacker's own key signs a model role that lists their image.
		_, evilKey, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		evil, err := signature.LoadED25519Signer(evilKey)
		if err != nil {
			t.Fatal(err)
		}
		exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
		modelV, _ := latest("pump-a")
		role := metadata.Targets(exp)
		role.Signed.Version = modelV + 1
		tf, err := metadata.TargetFile().FromBytes("pump-a/6.6.6/evil.bin", []byte("evil firmware"), "sha256")
		if err != nil {
			t.Fatal(err)
		}
		role.Signed.Targets["pump-a/6.6.6/evil.bin"] = tf
		if _, err := role.Sign(evil); err != nil {
			t.Fatal(err)
		}
		// The stolen online keys sign a snapshot naming it and a timestamp naming that.
		snapV, snapData := latest("snapshot")
		snap, err := metadata.Snapshot().FromBytes(snapData)
		if err != nil {
			t.Fatal(err)
		}
		snap.Signed.Version, snap.Signed.Expires = snapV+1, exp
		snap.Signed.Meta["pump-a.json"] = metadata.MetaFile(modelV + 1)
		snap.ClearSignatures()
		if _, err := snap.Sign(onlineSigner("update-snapshot.key")); err != nil {
			t.Fatal(err)
		}
		tsV, tsData := latest("timestamp")
		ts, err := metadata.Timestamp().FromBytes(tsData)
		if err != nil {
			t.Fatal(err)
		}
		ts.Signed.Version, ts.Signed.Expires = tsV+1, exp
		ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(snapV + 1)
		ts.ClearSignatures()
		if _, err := ts.Sign(onlineSigner("update-timestamp.key")); err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			role    string
			version int64
			data    func() ([]byte, error)
		}{
			{"pump-a", modelV + 1, func() ([]byte, error) { return role.ToBytes(false) }},
			{"snapshot", snapV + 1, func() ([]byte, error) { return snap.ToBytes(false) }},
			{"timestamp", tsV + 1, func() ([]byte, error) { return ts.ToBytes(false) }},
		} {
			b, err := m.data()
			if err != nil {
				t.Fatal(err)
			}
			store(m.role, m.version, exp, b)
		}
		_, err = newClient(t).Verify(ctx, updateclient.Offer{Model: "pump-a", Version: "6.6.6", Target: "pump-a/6.6.6/evil.bin"})
		if !errors.Is(err, updateclient.ErrUnsigned) {
			t.Fatalf("err = %v, want ErrUnsigned", err)
		}
		// Undo, so that the next attack starts from the genuine repository.
		if _, err := db.Exec(`DELETE FROM update_metadata WHERE (role = 'pump-a' AND version = ?) OR (role = 'snapshot' AND version = ?) OR (role = 'timestamp' AND version = ?)`,
			modelV+1, snapV+1, tsV+1); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("target longer than signed: file and length changed in the server's store", func(t *testing.T) {
		c := newClient(t)
		tgt, err := c.Verify(ctx, genuine)
		if err != nil {
			t.Fatal(err)
		}
		var seq int64
		var chunk []byte
		if err := db.QueryRow(`SELECT seq, data FROM update_chunks WHERE model = 'pump-a' AND version = '1.1.0' ORDER BY seq DESC LIMIT 1`).Scan(&seq, &chunk); err != nil {
			t.Fatal(err)
		}
		extra := []byte("evil code")
		if _, err := db.Exec(`UPDATE update_chunks SET data = ? WHERE model = 'pump-a' AND version = '1.1.0' AND seq = ?`, append(chunk, extra...), seq); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE update_releases SET length = length + ? WHERE model = 'pump-a' AND version = '1.1.0'`, len(extra)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Download(ctx, tgt); !errors.Is(err, updateclient.ErrLength) {
			t.Fatalf("err = %v, want ErrLength", err)
		}
		if _, err := os.Stat(c.LocalPath(tgt)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the lengthened image was kept: %v", err)
		}
	})

	t.Run("mix-and-match: the model role's old version served as its newest", func(t *testing.T) {
		if _, err := newClient(t).Verify(ctx, genuine); err != nil {
			t.Fatalf("the genuine release after the undo: %v", err)
		}
		modelV, _ := latest("pump-a")
		if modelV < 2 {
			t.Fatalf("pump-a role version %d: two publishes should have made 2", modelV)
		}
		if _, err := db.Exec(`UPDATE update_metadata SET data = (SELECT data FROM update_metadata WHERE role = 'pump-a' AND version = ?)
			WHERE role = 'pump-a' AND version = ?`, modelV-1, modelV); err != nil {
			t.Fatal(err)
		}
		if _, err := newClient(t).Verify(ctx, genuine); !errors.Is(err, updateclient.ErrRollback) {
			t.Fatalf("err = %v, want ErrRollback", err)
		}
	})
}
