package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRestoreDrill is the restore drill of the README: observations are posted to a real
// `vitalgate serve`, a backup is taken while it serves, more are posted, the server is killed
// with SIGKILL, the backup is restored (with the exported tombstones) into a new data dir,
// served, every observation acknowledged before the backup is read back over FHIR by an EHR
// client, and the restored audit log verifies across its two epochs. It logs the recovery
// time (restore + start + read back) and the data dir's size.
func TestRestoreDrill(t *testing.T) {
	dir := initDir(t)
	secret := addDevice(t, dir, "drill-dev", "drill-pat")
	ehrSecret := strings.TrimSpace(run(t, "client", "add", "--data", dir, "--id", "drill-ehr", "--role", "ehr-system"))
	work := t.TempDir()
	keys, tombs, file := filepath.Join(work, "recovery"), filepath.Join(work, "tombstones.log"), filepath.Join(work, "drill.vgbackup")
	run(t, "backup", "keys", "init", "--out", keys)
	run(t, "backup", "tombstones", "--data", dir, "--export", tombs)
	fast := []string{"--rate-per-caller", "2000", "--burst-per-caller", "2000"} // the drill measures recovery, not the limits
	srv := startServerAt(t, dir, freeAddr(t), fast...)
	cert := srv.enroll(t, "drill-dev", secret)
	c := srv.client(&cert)
	count := 300
	if testing.Short() {
		count = 40
	}
	postN := func(n int) []string {
		var ids []string
		for i := range n {
			status, body, _, err := post(context.Background(), c, srv.url+"/fhir/Observation", observation("drill-pat", "drill-dev", fmt.Sprint(60+i%40), time.Now()))
			if err != nil || status != 201 {
				t.Fatalf("post: %d %v %s", status, err, body)
			}
			var r struct{ ID string }
			if err := json.Unmarshal(body, &r); err != nil || r.ID == "" {
				t.Fatalf("201 without an id: %s", body)
			}
			ids = append(ids, r.ID)
		}
		return ids
	}
	before := postN(count)
	// A second device keeps writing while the backup runs: what it had acknowledged when the
	// backup started must be in the backup too.
	secret2 := addDevice(t, dir, "drill-dev-2", "drill-pat")
	cert2 := srv.enroll(t, "drill-dev-2", secret2)
	c2 := srv.client(&cert2)
	var mu sync.Mutex
	var during []string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			status, body, _, err := post(ctx, c2, srv.url+"/fhir/Observation", observation("drill-pat", "drill-dev-2", fmt.Sprint(60+i%40), time.Now()))
			var r struct{ ID string }
			if err == nil && status == 201 && json.Unmarshal(body, &r) == nil && r.ID != "" {
				mu.Lock()
				during = append(during, r.ID)
				mu.Unlock()
			}
		}
	}()
	waitFor(t, 10*time.Second, "writes under load", func() bool { mu.Lock(); defer mu.Unlock(); return len(during) >= 20 })
	mu.Lock()
	ackedAtStart := append([]string(nil), during...)
	mu.Unlock()
	run(t, "backup", "--data", dir, "--out", file, "--recovery-pub", filepath.Join(keys, "recovery.pub"))
	cancel()
	<-done
	before = append(before, ackedAtStart...)
	postN(5) // after the backup: lost with the disaster, as the restore entry documents
	srv.kill()

	start := time.Now()
	restored := filepath.Join(work, "restored")
	out := run(t, "restore", "--in", file, "--data", restored, "--recovery-key", filepath.Join(keys, "recovery.key"),
		"--tombstones", tombs, "--key", filepath.Join(dir, "audit.pub"))
	if !strings.HasPrefix(out, "OK: backup ") {
		t.Fatalf("restore: %s", out)
	}
	restoreTime := time.Since(start)
	srv2 := startServerAt(t, restored, freeAddr(t), fast...)
	token := clientToken(t, srv2, "drill-ehr", ehrSecret)
	for _, id := range before {
		if st, body := srv2.get(t, token, "/fhir/Observation/"+id); st != 200 || !strings.Contains(body, "drill-pat") {
			t.Fatalf("Observation/%s after the restore: %d %s", id, st, body)
		}
	}
	rto := time.Since(start)
	srv2.stop(t)
	verify := run(t, "audit", "verify", "--data", restored)
	if !strings.Contains(verify, "2 epochs") {
		t.Fatalf("audit verify of the restored data dir: %s", verify)
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore drill: %d observations acknowledged before the backup (%d of them by a device writing during it, %d in all); backup %d bytes; restored data dir %d bytes; restore %.2fs; restore + serve + read back over FHIR (recovery time) %.2fs",
		len(before), len(ackedAtStart), len(during)+count, st.Size(), dirBytes(t, restored), restoreTime.Seconds(), rto.Seconds())
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBackupReadmeRecipes runs the README's "Backup and recovery" recipes verbatim with bash
// against a serving data dir: the one-time setup, a backup while serving, the restore drill
// (recorded for the evidence report), and a restore into a new data dir, which serves.
func TestBackupReadmeRecipes(t *testing.T) {
	needTools(t, "bash")
	dir := initDir(t)
	work := t.TempDir()
	srv := startServer(t, dir)
	env := append(os.Environ(),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VG_DATA="+dir, "VG_RECOVERY="+filepath.Join(work, "recovery"), "VG_BACKUPS="+filepath.Join(work, "backups"),
		"VG_TOMBSTONES="+filepath.Join(work, "elsewhere", "tombstones.log"), "VG_RESTORED="+filepath.Join(work, "restored"))
	for _, name := range []string{"backup-setup", "backup", "restore-drill"} {
		cmd := exec.Command("bash", "-c", recipe(t, name))
		cmd.Dir, cmd.Env = work, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("recipe %s: %v\nstdout: %s\nstderr: %s", name, err, stdout.String(), stderr.String())
		}
		if name == "restore-drill" && !strings.Contains(stdout.String(), "verified") {
			t.Fatalf("restore drill: %s", stdout.String())
		}
	}
	srv.kill() // the disaster
	cmd := exec.Command("bash", "-c", recipe(t, "restore"))
	cmd.Dir, cmd.Env = work, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stdout.String(), "2 epochs") {
		t.Fatalf("restore recipe: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	status, err := os.ReadFile(filepath.Join(dir, "backup-status.json"))
	if err != nil || !bytes.Contains(status, []byte(`"ok": true`)) {
		t.Fatalf("the drill is not recorded in the data dir: %v %s", err, status)
	}
	startServer(t, filepath.Join(work, "restored")).stop(t)
}

// TestBackupUnderFIPSOnly: on a FIPS data dir, with every process under GODEBUG=fips140=only,
// the recovery key is made, a backup is encrypted (HPKE P-256 / HKDF-SHA-256 / AES-256-GCM)
// and restored, and the restored audit log verifies: the backup path uses approved
// algorithms only, or the FIPS module would refuse it.
func TestBackupUnderFIPSOnly(t *testing.T) {
	work := t.TempDir()
	dir, keys, file, restored := filepath.Join(work, "data"), filepath.Join(work, "recovery"), filepath.Join(work, "f.vgbackup"), filepath.Join(work, "restored")
	mustRunFIPS(t, "init", "--fips", "--data", dir)
	mustRunFIPS(t, "backup", "keys", "init", "--out", keys)
	mustRunFIPS(t, "backup", "--data", dir, "--out", file, "--recovery-pub", filepath.Join(keys, "recovery.pub"))
	mustRunFIPS(t, "restore", "--in", file, "--data", restored, "--recovery-key", filepath.Join(keys, "recovery.key"), "--key", filepath.Join(dir, "audit.pub"))
	if out := mustRunFIPS(t, "audit", "verify", "--data", restored); !strings.Contains(out, "2 epochs") {
		t.Fatalf("audit verify: %s", out)
	}
}

// TestBackupOnPostgres runs the README's PostgreSQL recipes verbatim: the one-time setup, a
// backup (pg_dump and `vitalgate backup`, which holds what Vitalgate keeps outside the
// database: keys, certificates, store.json, the tombstone list, and no database file); then
// the database is lost, and the restore recipe restores it with pg_restore and the data dir
// onto it: the restored log verifies, a new audit epoch starts, `audit verify` checks across
// it, and the restored data dir reaches the database as it was at the backup.
func TestBackupOnPostgres(t *testing.T) {
	needTools(t, "bash", "pg_dump", "pg_restore", "psql")
	dsn, schema := testPostgres(t)
	work := t.TempDir()
	dir, restored := filepath.Join(work, "data"), filepath.Join(work, "restored")
	env := append(os.Environ(), "VITALGATE_DSN="+dsn, "VG_PG_SCHEMA="+schema,
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VG_DATA="+dir, "VG_RECOVERY="+filepath.Join(work, "recovery"), "VG_BACKUPS="+filepath.Join(work, "backups"),
		"VG_TOMBSTONES="+filepath.Join(work, "elsewhere", "tombstones.log"), "VG_RESTORED="+restored)
	t.Setenv("VITALGATE_DSN", dsn)
	run(t, "init", "--data", dir, "--store", "env:VITALGATE_DSN", "--schema", schema, "--json")
	addDevice(t, dir, "pg-dev", "pg-pat")
	runRecipe := func(name string) (string, string) {
		t.Helper()
		cmd := exec.Command("bash", "-c", recipe(t, name))
		cmd.Dir, cmd.Env = work, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("recipe %s: %v\nstdout: %s\nstderr: %s", name, err, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	runRecipe("backup-setup")
	if _, errOut := runRecipe("backup-postgres"); !strings.Contains(errOut, "pg_dump") {
		t.Fatalf("backup on PostgreSQL: %s", errOut)
	}
	addDevice(t, dir, "pg-dev-later", "pg-pat-later") // after the backup: lost with the database
	// The disaster: the database is lost.
	if out, err := exec.Command("psql", dsn, "-c", "DROP SCHEMA "+schema+" CASCADE").CombinedOutput(); err != nil {
		t.Fatalf("drop schema: %v %s", err, out)
	}
	out, errOut := runRecipe("restore-postgres")
	if !strings.Contains(errOut, "pg_restore") || !strings.Contains(out, "epoch 2 starts at entry") || !strings.Contains(out, "2 epochs") {
		t.Fatalf("restore recipe on PostgreSQL:\nstdout: %s\nstderr: %s", out, errOut)
	}
	for _, f := range []string{"ca.key", "keys/kek-1.key", "keys/index.key", "store.json", "audit.key", "token.key", "tombstone.key"} {
		want, _ := os.ReadFile(filepath.Join(dir, f))
		got, err := os.ReadFile(filepath.Join(restored, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s not restored: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(restored, "vitalgate.db")); err == nil {
		t.Fatal("a SQLite database appeared in a PostgreSQL data dir")
	}
	if list := run(t, "device", "list", "--data", restored); !strings.Contains(list, "pg-dev") || strings.Contains(list, "pg-dev-later") {
		t.Fatalf("the restored data dir does not reach the database as it was at the backup: %s", list)
	}
}

// TestErasureSurvivesRestoreOnPostgres: the data dir is backed up with `vitalgate backup` and
// the database with pg_dump; a patient is erased; the database is lost and restored with
// pg_restore (the erased patient is back in it), and the data dir is restored with the
// exported tombstones: the erasure is replayed into the database, so the patient's data is
// gone while the other patient's is read back.
func TestErasureSurvivesRestoreOnPostgres(t *testing.T) {
	needTools(t, "pg_dump", "pg_restore")
	dsn, schema := testPostgres(t)
	t.Setenv("VITALGATE_E2E_DSN", dsn)
	work := t.TempDir()
	dir, keys, file, dump, tombs := filepath.Join(work, "data"), filepath.Join(work, "recovery"), filepath.Join(work, "pg.vgbackup"),
		filepath.Join(work, "vitalgate.dump"), filepath.Join(work, "tombstones.log")
	run(t, "init", "--data", dir, "--store", "env:VITALGATE_E2E_DSN", "--schema", schema, "--json")
	s1, s2 := addDevice(t, dir, "pg-dev-1", "pg-pat-1"), addDevice(t, dir, "pg-dev-2", "pg-pat-2")
	run(t, "backup", "keys", "init", "--out", keys)
	run(t, "backup", "tombstones", "--data", dir, "--export", tombs)
	srv := startServer(t, dir)
	ids := map[string]string{}
	for _, d := range []struct{ dev, pat, secret string }{{"pg-dev-1", "pg-pat-1", s1}, {"pg-dev-2", "pg-pat-2", s2}} {
		cert := srv.enroll(t, d.dev, d.secret)
		status, body, _, err := post(context.Background(), srv.client(&cert), srv.url+"/fhir/Observation", observation(d.pat, d.dev, "71", time.Now()))
		var r struct{ ID string }
		if err != nil || status != 201 || json.Unmarshal(body, &r) != nil {
			t.Fatalf("post: %d %v %s", status, err, body)
		}
		ids[d.pat] = r.ID
	}
	srv.stop(t)
	run(t, "backup", "--data", dir, "--out", file, "--recovery-pub", filepath.Join(keys, "recovery.pub"))
	if out, err := exec.Command("pg_dump", "--format=custom", "--schema="+schema, "--file="+dump, dsn).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v %s", err, out)
	}
	t.Setenv("USER", "alice")
	req := strings.TrimSpace(run(t, "patient", "erase", "--data", dir, "--id", "pg-pat-1", "--reason", "request"))
	t.Setenv("USER", "bob")
	run(t, "patient", "erase", "--data", dir, "--approve", req)

	// The disaster: the database is lost and restored from the dump taken before the erasure.
	if out, err := exec.Command("psql", dsn, "-c", "DROP SCHEMA "+schema+" CASCADE").CombinedOutput(); err != nil {
		t.Fatalf("drop schema: %v %s", err, out)
	}
	if out, err := exec.Command("pg_restore", "--dbname="+dsn, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v %s", err, out)
	}
	// Without the tombstones, the erased patient is readable again: what the replay prevents.
	without := filepath.Join(work, "without")
	run(t, "restore", "--in", file, "--data", without, "--recovery-key", filepath.Join(keys, "recovery.key"), "--key", filepath.Join(dir, "audit.pub"))
	if got := exportIDs(t, without); got[ids["pg-pat-1"]] != 1 {
		t.Fatalf("the restored database does not hold the erased patient (the test proves nothing): %v", got)
	}
	// That restore opened an audit epoch in the database, recorded in its own data dir:
	// restore the database again for the real restore.
	if out, err := exec.Command("psql", dsn, "-c", "DROP SCHEMA "+schema+" CASCADE").CombinedOutput(); err != nil {
		t.Fatalf("drop schema: %v %s", err, out)
	}
	if out, err := exec.Command("pg_restore", "--dbname="+dsn, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v %s", err, out)
	}
	restored := filepath.Join(work, "restored")
	out := run(t, "restore", "--in", file, "--data", restored, "--recovery-key", filepath.Join(keys, "recovery.key"),
		"--tombstones", tombs, "--key", filepath.Join(dir, "audit.pub"))
	if !strings.Contains(out, "1 tombstones replayed into the PostgreSQL database (1 data keys destroyed)") {
		t.Fatalf("restore: %s", out)
	}
	got := exportIDs(t, restored)
	if got[ids["pg-pat-1"]] != 0 || got[ids["pg-pat-2"]] != 1 {
		t.Fatalf("after the replay, exported %v; erased %s, kept %s", got, ids["pg-pat-1"], ids["pg-pat-2"])
	}
	if out := run(t, "audit", "verify", "--data", restored); !strings.Contains(out, "2 epochs") {
		t.Fatalf("audit verify of the restored PostgreSQL deployment: %s", out)
	}
}
