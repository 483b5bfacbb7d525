package e2e_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/updateclient"
)

// TestUpdateClientAgainstServer runs the device-side update client (updateclient) against the
// real server: `vitalgate update keys init` and `update publish` make releases of models
// pump-a and monitor-b, `serve` serves the TUF repository over mutual TLS, and an enrolled
// pump-a device verifies and streams its release. Then each attack the real server can be
// made to show is refused: another model's release, a release nobody published, a device
// clock past the timestamp's expiry (and the same clock accepted within the allowed skew),
// an image changed in the server's database, an old timestamp replayed from it. simulate
// --update for a device in no rollout is offered nothing and keeps sending vitals. The attacks
// that need keys (online-key compromise, mix-and-match) run against the real server in
// TestUpdateClientKeyAttacks, and all of them against a plain file server in updateclient's
// TestAttacks.
func TestUpdateClientAgainstServer(t *testing.T) {
	dir := initDir(t)
	run(t, "model", "add", "--data", dir, "--id", "pump-a", "--binding", "assigned")
	run(t, "model", "add", "--data", dir, "--id", "monitor-b", "--binding", "assigned")
	keys := filepath.Join(t.TempDir(), "keys")
	run(t, "update", "keys", "init", "--out", keys)
	fw := bytes.Repeat([]byte("pump firmware 1.0.0\n"), 50_000) // 1 MB
	fwFile := filepath.Join(t.TempDir(), "pump.bin")
	if err := os.WriteFile(fwFile, fw, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "update", "publish", "--data", dir, "--keys", keys, "--model", "pump-a", "--version", "1.0.0", fwFile)
	monFile := filepath.Join(t.TempDir(), "monitor.bin")
	if err := os.WriteFile(monFile, []byte("monitor firmware"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "update", "publish", "--data", dir, "--keys", keys, "--model", "monitor-b", "--version", "2.0.0", monFile)
	secret := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "pump-1", "--patient", "pat-1", "--model", "pump-a"))

	srv := startServer(t, dir)
	cert := srv.enroll(t, "pump-1", secret)
	httpc := srv.client(&cert)
	httpc.Timeout = 0
	// The root.json the device is provisioned with, out of band.
	root := []byte(run(t, "update", "root", "--data", dir))

	newClient := func(t *testing.T, now func() time.Time, skew time.Duration) *updateclient.Client {
		state := t.TempDir()
		c, err := updateclient.New(updateclient.Config{
			ServerURL: srv.url, HTTPClient: httpc, TrustedRoot: root,
			MetadataDir: filepath.Join(state, "metadata"), TargetsDir: filepath.Join(state, "targets"),
			Model: "pump-a", Now: now, ClockSkew: skew, Retry: updateclient.Retry{Attempts: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := context.Background()
	t.Run("genuine release", func(t *testing.T) {
		c := newClient(t, time.Now, 0)
		tgt, err := c.Verify(ctx, updateclient.Offer{Model: "pump-a", Version: "1.0.0", Target: "pump-a/1.0.0/pump.bin"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Download(ctx, tgt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, fw) {
			t.Fatalf("downloaded file differs (%v)", err)
		}
	})
	pump := updateclient.Offer{Model: "pump-a", Version: "1.0.0", Target: "pump-a/1.0.0/pump.bin"}
	// The server's timestamp lives a day (snapshot a week, targets and root a year): a
	// device clock 25 hours ahead sees it expired an hour ago.
	ahead := func() time.Time { return time.Now().Add(25 * time.Hour) }
	cases := []struct {
		name  string
		offer updateclient.Offer
		now   func() time.Time
		skew  time.Duration
		want  error
	}{
		{"another model's release", updateclient.Offer{Model: "monitor-b", Version: "2.0.0", Target: "monitor-b/2.0.0/monitor.bin"}, time.Now, 0, updateclient.ErrNotDelegated},
		{"a release nobody published", updateclient.Offer{Model: "pump-a", Version: "6.6.6", Target: "pump-a/6.6.6/pump.bin"}, time.Now, 0, updateclient.ErrNotDelegated},
		{"device clock past the timestamp's expiry (freeze)", pump, ahead, 0, updateclient.ErrFreeze},
		{"the same clock within the allowed skew", pump, ahead, 2 * time.Hour, nil},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClient(t, tt.now, tt.skew).Verify(ctx, tt.offer)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("tampered target in the server's store", func(t *testing.T) {
		// An attacker who can write the server's database changes a byte of the image.
		db, err := sql.Open("sqlite", filepath.Join(dir, "vitalgate.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var chunk []byte
		if err := db.QueryRow(`SELECT data FROM update_chunks WHERE model = 'pump-a' AND version = '1.0.0' AND seq = 0`).Scan(&chunk); err != nil {
			t.Fatal(err)
		}
		chunk[100] ^= 0xff
		if _, err := db.Exec(`UPDATE update_chunks SET data = ? WHERE model = 'pump-a' AND version = '1.0.0' AND seq = 0`, chunk); err != nil {
			t.Fatal(err)
		}
		c := newClient(t, time.Now, 0)
		tgt, err := c.Verify(ctx, pump)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Download(ctx, tgt); !errors.Is(err, updateclient.ErrHash) {
			t.Fatalf("err = %v, want ErrHash", err)
		}
		if _, err := os.Stat(c.LocalPath(tgt)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the tampered image was kept: %v", err)
		}
	})
	t.Run("simulate --update", func(t *testing.T) {
		// A device in no rollout is offered nothing (204): it keeps sending vitals.
		secret := strings.TrimSpace(run(t, "device", "add", "--data", dir, "--id", "pump-2", "--patient", "pat-2", "--model", "pump-a"))
		rootFile := filepath.Join(t.TempDir(), "root.json")
		if err := os.WriteFile(rootFile, root, 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, err := runErr("simulate", "--server", srv.url, "--ca", filepath.Join(dir, "ca.crt"), "--device", "pump-2:pat-2:"+secret,
			"--certs", "", "--update", "--model", "pump-a", "--tuf-root", rootFile, "--update-dir", t.TempDir(),
			"--poll", "100ms", "--interval", "100ms", "--duration", "2s")
		if err != nil {
			t.Fatalf("simulate: %v\n%s", err, errOut)
		}
		if strings.Contains(errOut, "no updates") || strings.Contains(errOut, "pump-2: simulator:") {
			t.Fatalf("simulate complained about an empty offer:\n%s", errOut)
		}
		if strings.Contains(out, "accepted 0 ") {
			t.Fatalf("no vitals were accepted: %s", out)
		}
	})
	t.Run("replayed old timestamp in the server's store", func(t *testing.T) {
		c := newClient(t, time.Now, 0)
		if _, err := c.Verify(ctx, pump); err != nil {
			t.Fatal(err)
		}
		// An attacker who can write the server's database makes it serve the first
		// timestamp again, validly signed and not expired, in place of the newest.
		sqlExec(t, dir, `UPDATE update_metadata SET data = (SELECT data FROM update_metadata WHERE role = 'timestamp' ORDER BY version LIMIT 1)
			WHERE role = 'timestamp' AND version = (SELECT MAX(version) FROM update_metadata WHERE role = 'timestamp')`)
		if _, err := c.Verify(ctx, pump); !errors.Is(err, updateclient.ErrRollback) {
			t.Fatalf("err = %v, want ErrRollback", err)
		}
	})
}
