package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	vgnode "github.com/vitalgate/vitalgate/node"
)

// mustRun runs a command in-process and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) (string, string) {
	t.Helper()
	code, out, errOut := runAt(args...)
	if code != 0 {
		t.Fatalf("vitalgate %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

// backedUp is a data dir with two patients, a recovery key pair and a backup of it.
type backedUp struct {
	dir, keys, file, tmp string
}

func newBackedUp(t *testing.T, patients ...string) backedUp {
	t.Helper()
	tmp := t.TempDir()
	b := backedUp{dir: filepath.Join(tmp, "data"), keys: filepath.Join(tmp, "recovery"), file: filepath.Join(tmp, "b1.vgbackup"), tmp: tmp}
	mustRun(t, "init", "--data", b.dir)
	seedPatients(t, b.dir, patients...)
	mustRun(t, "backup", "keys", "init", "--out", b.keys)
	mustRun(t, "backup", "tombstones", "--data", b.dir, "--export", filepath.Join(tmp, "elsewhere-tombstones.log"))
	mustRun(t, "backup", "--data", b.dir, "--out", b.file, "--recovery-pub", filepath.Join(b.keys, "recovery.pub"))
	return b
}

func (b backedUp) restore(t *testing.T, to string, extra ...string) (int, string, string) {
	t.Helper()
	args := append([]string{"restore", "--in", b.file, "--data", to, "--recovery-key", filepath.Join(b.keys, "recovery.key"),
		"--key", filepath.Join(b.dir, "audit.pub")}, extra...)
	return runAt(args...)
}

// resourceIDs returns the ids of the resources stored in a data dir whose body opens.
func readable(t *testing.T, dir string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	n, err := vgnode.Open(ctx, dir, vgnode.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	out := map[string]bool{}
	if err := n.Store.Resources(ctx, vitalgate.ResourceFilter{}, func(r vitalgate.SealedResource) error {
		if _, err := n.Vault.Open(ctx, r); err == nil {
			out[r.ID] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBackupRestoreRoundTrip: a backup restores into a new data dir that holds every
// resource, opens them, and whose audit log verifies across the new epoch; restoring over an
// existing directory is refused; --verify-only keeps nothing and records its result.
func TestBackupRestoreRoundTrip(t *testing.T) {
	b := newBackedUp(t, "patient-0001", "patient-0002")
	to := filepath.Join(b.tmp, "restored")
	if code, out, errOut := b.restore(t, to); code != 0 || !strings.HasPrefix(out, "OK: backup bk-") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	if got := readable(t, to); !got["obs-patient-0001"] || !got["obs-patient-0002"] || len(got) != 2 {
		t.Fatalf("restored resources that open: %v", got)
	}
	out, _ := mustRun(t, "audit", "verify", "--data", to)
	if !strings.Contains(out, "2 epochs") {
		t.Fatalf("audit verify of the restored dir: %s", out)
	}
	if code, _, errOut := b.restore(t, to); code == 0 || !strings.Contains(errOut, "exists") {
		t.Fatalf("restore over an existing dir: exit %d %s", code, errOut)
	}
	// A second restore of the restored data dir's own backup opens epoch 3.
	file2 := filepath.Join(b.tmp, "b2.vgbackup")
	mustRun(t, "backup", "--data", to, "--out", file2, "--recovery-pub", filepath.Join(b.keys, "recovery.pub"))
	to3 := filepath.Join(b.tmp, "restored3")
	mustRun(t, "restore", "--in", file2, "--data", to3, "--recovery-key", filepath.Join(b.keys, "recovery.key"))
	if out, _ := mustRun(t, "audit", "verify", "--data", to3); !strings.Contains(out, "3 epochs") {
		t.Fatalf("audit verify after two restores: %s", out)
	}
	out, _ = mustRun(t, "restore", "--verify-only", "--in", b.file, "--recovery-key", filepath.Join(b.keys, "recovery.key"))
	if !strings.Contains(out, "verified") {
		t.Fatalf("verify-only without --record: %s", out)
	}
	out, _ = mustRun(t, "restore", "--verify-only", "--in", b.file, "--recovery-key", filepath.Join(b.keys, "recovery.key"), "--record", b.dir)
	if !strings.Contains(out, "verified") {
		t.Fatalf("verify-only: %s", out)
	}
	status, err := os.ReadFile(filepath.Join(b.dir, "backup-status.json"))
	if err != nil || !bytes.Contains(status, []byte(`"ok": true`)) || !bytes.Contains(status, []byte("last_backup")) {
		t.Fatalf("backup-status.json: %v %s", err, status)
	}
}

// TestRestoreRefusesTamperedBackup: a changed, truncated or extended file, another recovery
// key, another deployment's audit key, and a backup of another deployment encrypted to the
// same recovery key (anyone holding the public key can make one) are all refused, and
// nothing is left at the target.
func TestRestoreRefusesTamperedBackup(t *testing.T) {
	b := newBackedUp(t, "patient-0001")
	orig, err := os.ReadFile(b.file)
	if err != nil {
		t.Fatal(err)
	}
	other := newBackedUp(t, "patient-0009")
	forged := filepath.Join(b.tmp, "forged.vgbackup")
	mustRun(t, "backup", "--data", other.dir, "--out", forged, "--recovery-pub", filepath.Join(b.keys, "recovery.pub"))
	flip := func(off int) func([]byte) []byte {
		return func(d []byte) []byte {
			d = bytes.Clone(d)
			d[off] ^= 0x01
			return d
		}
	}
	cases := []struct {
		name   string
		change func([]byte) []byte
		args   []string
		file   string
		want   string
	}{
		{name: "magic changed", change: flip(0), want: "not a Vitalgate backup"},
		{name: "encapsulated key changed", change: flip(25), want: "not a Vitalgate backup"},
		{name: "byte of the first chunk changed", change: flip(200), want: "does not decrypt"},
		{name: "last byte changed", change: flip(len(orig) - 1), want: "does not decrypt"},
		{name: "truncated", change: func(d []byte) []byte { return d[:len(d)-100] }, want: "truncated"},
		{name: "last chunk dropped", change: func(d []byte) []byte { return d[:len(d)/2] }, want: "truncated"},
		{name: "data appended", change: func(d []byte) []byte { return append(bytes.Clone(d), 0, 0, 0, 1, 7) }, want: "after the last chunk"},
		{name: "another recovery key", args: []string{"--recovery-key", filepath.Join(other.keys, "recovery.key")}, want: "not a Vitalgate backup"},
		{name: "another deployment's audit key", args: []string{"--key", filepath.Join(other.dir, "audit.pub")}, want: "not by the key given"},
		{name: "another deployment's backup", file: forged, want: "not by the key given"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := b.file
			if tc.change != nil {
				file = filepath.Join(t.TempDir(), "changed.vgbackup")
				if err := os.WriteFile(file, tc.change(orig), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.file != "" {
				file = tc.file
			}
			to := filepath.Join(t.TempDir(), "restored")
			args := append([]string{"restore", "--in", file, "--data", to, "--recovery-key", filepath.Join(b.keys, "recovery.key"),
				"--key", filepath.Join(b.dir, "audit.pub")}, tc.args...)
			code, out, errOut := runAt(args...)
			if code == 0 || !strings.Contains(errOut, "RESTORE REFUSED") || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want a refusal saying %q\n%s%s", code, tc.want, out, errOut)
			}
			for _, p := range []string{to, to + ".restoring"} {
				if _, err := os.Stat(p); err == nil {
					t.Fatalf("%s left behind", p)
				}
			}
		})
	}
}

// TestErasureSurvivesRestore: a patient erased after a backup is found unreadable in a
// restore of that backup with the exported tombstones, even with its erased wrapped data key
// put back (its key-encryption key is destroyed), while the other patient is intact; the
// restore without tombstones shows what the replay prevents; tombstone lists that are changed,
// unsigned or signed by another deployment are refused.
func TestErasureSurvivesRestore(t *testing.T) {
	b := newBackedUp(t, "patient-0001", "patient-0002")
	t.Setenv("USER", "alice")
	req, _ := mustRun(t, "patient", "erase", "--data", b.dir, "--id", "patient-0001", "--reason", "request")
	t.Setenv("USER", "bob")
	mustRun(t, "patient", "erase", "--data", b.dir, "--approve", strings.TrimSpace(req))
	tombs := filepath.Join(b.tmp, "elsewhere-tombstones.log")
	list, err := os.ReadFile(tombs)
	if err != nil || bytes.Count(list, []byte("\n")) != 1 {
		t.Fatalf("exported tombstones: %v %q", err, list)
	}
	if bytes.Contains(list, []byte("patient-0001")) {
		t.Fatal("the tombstone names the patient")
	}

	without := filepath.Join(b.tmp, "without")
	if code, _, errOut := b.restore(t, without); code != 0 || !strings.Contains(errOut, "NOT erased") {
		t.Fatalf("restore without tombstones: exit %d %s", code, errOut)
	}
	if got := readable(t, without); !got["obs-patient-0001"] {
		t.Fatalf("without tombstones the erased patient comes back (what the replay prevents): %v", got)
	}

	with := filepath.Join(b.tmp, "with")
	code, out, errOut := b.restore(t, with, "--tombstones", tombs)
	if code != 0 || !strings.Contains(out, "1 tombstones replayed (1 data keys destroyed)") {
		t.Fatalf("restore with tombstones: exit %d\n%s%s", code, out, errOut)
	}
	if got := readable(t, with); got["obs-patient-0001"] || !got["obs-patient-0002"] {
		t.Fatalf("after the replay, resources that open: %v", got)
	}
	// Put the erased patient's wrapped data key and resource back (a leftover copy): the
	// restored keys cannot open it, since the key-encryption key that wrapped it is destroyed.
	ctx := context.Background()
	old, err := vgnode.Open(ctx, without, vgnode.Env{})
	if err != nil {
		t.Fatal(err)
	}
	idx := old.Vault.PatientIndex("patient-0001")
	dk, err := old.Store.DataKey(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := old.Store.Resource(ctx, "Observation", "obs-patient-0001")
	if err != nil {
		t.Fatal(err)
	}
	_ = old.Close()
	n, err := vgnode.Open(ctx, with, vgnode.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Store.PutDataKey(ctx, dk); err != nil {
		t.Fatal(err)
	}
	if body, err := n.Vault.Open(ctx, res); err == nil {
		t.Fatalf("the erased patient's resource opens after the restore: %s", body)
	}
	_ = n.Close()
	if out, _ := mustRun(t, "audit", "verify", "--data", with); !strings.Contains(out, "2 epochs") {
		t.Fatalf("audit verify: %s", out)
	}

	other := newBackedUp(t, "patient-0009")
	t.Setenv("USER", "alice")
	req2, _ := mustRun(t, "patient", "erase", "--data", other.dir, "--id", "patient-0009", "--reason", "request")
	t.Setenv("USER", "bob")
	mustRun(t, "patient", "erase", "--data", other.dir, "--approve", strings.TrimSpace(req2))
	otherList, err := os.ReadFile(filepath.Join(other.tmp, "elsewhere-tombstones.log"))
	if err != nil {
		t.Fatal(err)
	}
	changed := bytes.Clone(list)
	i := bytes.Index(changed, []byte(`key `)) + 4
	changed[i] ^= 0x01
	for _, tc := range []struct{ name, list, want string }{
		{"changed", string(changed), "not signed by this deployment's tombstone key"},
		{"unsigned", `{"tombstone":"vitalgate-tombstone v1\nid er-1\nat 2026-12-02T08:00:00Z\nkey 00\n"}` + "\n", "not signed"},
		{"not a tombstone", "hello\n", "is not a tombstone"},
		{"another deployment's", string(list) + string(otherList), "line 2 is not signed by this deployment's tombstone key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "tombstones.log")
			if err := os.WriteFile(f, []byte(tc.list), 0o600); err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(t.TempDir(), "r")
			code, _, errOut := b.restore(t, to, "--tombstones", f)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, want %q: %s", code, tc.want, errOut)
			}
			if _, err := os.Stat(to); err == nil {
				t.Fatal("a refused restore left the data dir")
			}
		})
	}
}

// TestBackupKeepsAcknowledgedWrites: writers store resources (each acknowledged when the
// store returns) while a backup runs on the same database; every resource acknowledged
// before the backup started is in the restored data.
func TestBackupKeepsAcknowledgedWrites(t *testing.T) {
	tmp := t.TempDir()
	dir, keys := filepath.Join(tmp, "data"), filepath.Join(tmp, "recovery")
	mustRun(t, "init", "--data", dir)
	mustRun(t, "backup", "keys", "init", "--out", keys)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := vgnode.Open(ctx, dir, vgnode.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := n.Vault.PatientIndex(fmt.Sprintf("load-%d", w))
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("obs-%d-%d", w, i)
				body, err := n.Vault.Seal(ctx, idx, "Observation", id, 1, []byte(`{"resourceType":"Observation"}`))
				if err == nil {
					err = n.Store.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: id, Version: 1,
						Site: vitalgate.DefaultSite, PatientIndex: idx, Body: body, LastUpdated: time.Now(), Effective: time.Now()}})
				}
				if err == nil {
					mu.Lock()
					acked = append(acked, id)
					mu.Unlock()
				}
			}
		}()
	}
	waitUntil := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= 200 || time.Now().After(waitUntil) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	before := append([]string(nil), acked...) // acknowledged before the backup starts
	mu.Unlock()
	file := filepath.Join(tmp, "load.vgbackup")
	mustRun(t, "backup", "--data", dir, "--out", file, "--recovery-pub", filepath.Join(keys, "recovery.pub"))
	cancel()
	wg.Wait()
	if len(before) == 0 {
		t.Fatal("no write was acknowledged before the backup")
	}
	to := filepath.Join(tmp, "restored")
	mustRun(t, "restore", "--in", file, "--data", to, "--recovery-key", filepath.Join(keys, "recovery.key"), "--key", filepath.Join(dir, "audit.pub"))
	got := readable(t, to)
	for _, id := range before {
		if !got[id] {
			t.Fatalf("%s was acknowledged before the backup started and is not in it (%d of %d acknowledged before, %d restored)", id, len(before), len(acked), len(got))
		}
	}
	t.Logf("%d writes acknowledged before the backup, %d in it, %d acknowledged in all", len(before), len(got), len(acked))
}

// TestTombstoneExportFailure: when the export file cannot be written at an erasure, the
// erasure still happens and says so, the tombstone is in the data dir's list, and `backup
// tombstones` exports it once the place is fixed; an export inside the data dir is refused.
func TestTombstoneExportFailure(t *testing.T) {
	b := newBackedUp(t, "patient-0001")
	if code, _, errOut := runAt("backup", "tombstones", "--data", b.dir, "--export", filepath.Join(b.dir, "t.log")); code == 0 || !strings.Contains(errOut, "inside the data dir") {
		t.Fatalf("export inside the data dir: exit %d %s", code, errOut)
	}
	place := filepath.Join(b.tmp, "share")
	if err := os.MkdirAll(place, 0o700); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(place, "tombstones.log")
	mustRun(t, "backup", "tombstones", "--data", b.dir, "--export", export)
	if err := os.RemoveAll(place); err != nil { // the share is gone: a file stands in its place
		t.Fatal(err)
	}
	if err := os.WriteFile(place, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("USER", "alice")
	req, _ := mustRun(t, "patient", "erase", "--data", b.dir, "--id", "patient-0001", "--reason", "request")
	t.Setenv("USER", "bob")
	code, _, errOut := runAt("patient", "erase", "--data", b.dir, "--approve", strings.TrimSpace(req))
	if code == 0 || !strings.Contains(errOut, "the patient is erased, but its tombstone") || !strings.Contains(errOut, "could not be exported") {
		t.Fatalf("approve with the export unwritable: exit %d %s", code, errOut)
	}
	if got := readable(t, b.dir); got["obs-patient-0001"] {
		t.Fatal("the patient was not erased")
	}
	own, err := os.ReadFile(filepath.Join(b.dir, "tombstones.log"))
	if err != nil || bytes.Count(own, []byte("\n")) != 1 {
		t.Fatalf("data dir tombstones: %v %q", err, own)
	}
	if err := os.Remove(place); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(place, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "backup", "tombstones", "--data", b.dir, "--export", export)
	if got, err := os.ReadFile(export); err != nil || !bytes.Equal(got, own) {
		t.Fatalf("export after the fix: %v %q", err, got)
	}
}

// TestSiteErasureSurvivesRestore: a whole site erased after a backup stays erased when that
// backup is restored with the tombstone list: one tombstone names every data key of the
// site, and the replay destroys them all; the other site's patient still opens.
func TestSiteErasureSurvivesRestore(t *testing.T) {
	tmp := t.TempDir()
	b := backedUp{dir: filepath.Join(tmp, "data"), keys: filepath.Join(tmp, "recovery"), file: filepath.Join(tmp, "b1.vgbackup"), tmp: tmp}
	mustRun(t, "init", "--data", b.dir)
	mustRun(t, "site", "add", "--data", b.dir, "--id", "north", "--name", "North")
	ctx := context.Background()
	n, err := vgnode.Open(ctx, b.dir, vgnode.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ site, id string }{{"north", "n-1"}, {"north", "n-2"}, {vitalgate.DefaultSite, "d-1"}} {
		idx := n.Vault.SitePatientIndex(p.site, p.id)
		body, err := n.Vault.SealIn(ctx, p.site, idx, "Observation", "obs-"+p.id, 1, []byte(`{"resourceType":"Observation"}`))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Store.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: "obs-" + p.id, Version: 1,
			Site: p.site, PatientIndex: idx, Body: body, LastUpdated: goldenClock, Effective: goldenClock}}); err != nil {
			t.Fatal(err)
		}
	}
	_ = n.Close()
	mustRun(t, "backup", "keys", "init", "--out", b.keys)
	tombs := filepath.Join(tmp, "elsewhere-tombstones.log")
	mustRun(t, "backup", "tombstones", "--data", b.dir, "--export", tombs)
	mustRun(t, "backup", "--data", b.dir, "--out", b.file, "--recovery-pub", filepath.Join(b.keys, "recovery.pub"))

	t.Setenv("USER", "alice")
	req, _ := mustRun(t, "site", "erase", "--data", b.dir, "--id", "north", "--reason", "end of contract")
	t.Setenv("USER", "bob")
	mustRun(t, "site", "erase", "--data", b.dir, "--approve", strings.TrimSpace(req))
	if got := readable(t, b.dir); got["obs-n-1"] || got["obs-n-2"] || !got["obs-d-1"] {
		t.Fatalf("after the site erasure, resources that open: %v", got)
	}
	with := filepath.Join(tmp, "with")
	code, out, errOut := b.restore(t, with, "--tombstones", tombs)
	if code != 0 || !strings.Contains(out, "1 tombstones replayed (2 data keys destroyed)") {
		t.Fatalf("restore with the site's tombstone: exit %d\n%s%s", code, out, errOut)
	}
	if got := readable(t, with); got["obs-n-1"] || got["obs-n-2"] || !got["obs-d-1"] {
		t.Fatalf("after the replay, resources that open: %v", got)
	}
}
