package e2e_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuditArchive runs the README's "Audit retention and archiving" recipe verbatim on a
// SQLite and a PostgreSQL data dir: the entries older than the cutoff move into a segment,
// and `audit verify` checks the live log and the segment, naming it. Then a segment with a
// byte changed is refused, and `audit export` says which entries it cannot export.
func TestAuditArchive(t *testing.T) {
	needTools(t, "bash")
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			work := t.TempDir()
			dir, keys, archive := filepath.Join(work, "data"), filepath.Join(work, "recovery"), filepath.Join(work, "archive")
			if store == "postgres" {
				dsn, schema := testPostgres(t)
				t.Setenv("VITALGATE_E2E_DSN", dsn)
				run(t, "init", "--data", dir, "--store", "env:VITALGATE_E2E_DSN", "--schema", schema, "--json")
			} else {
				run(t, "init", "--data", dir, "--json")
			}
			addDevice(t, dir, "arc-dev-1", "arc-pat-1")
			run(t, "backup", "keys", "init", "--out", keys)
			run(t, "audit", "checkpoint", "--data", dir)
			before := time.Now().UTC().Format(time.RFC3339Nano)
			addDevice(t, dir, "arc-dev-2", "arc-pat-2") // newer than the cutoff: stays live
			cmd := exec.Command("bash", "-c", recipe(t, "audit-archive"))
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
				"VG_DATA="+dir, "VG_RECOVERY="+keys, "VG_ARCHIVE="+archive, "BEFORE="+before)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("recipe: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			out := stdout.String()
			if !strings.Contains(out, "OK: archived entries 0 to") || !strings.Contains(out, "keep it until "+time.Now().UTC().AddDate(6, 0, 0).Format("2006")) ||
				!strings.Contains(out, "segment checked: as-0-") || strings.Contains(out, "not checked against their data") {
				t.Fatalf("recipe output:\n%s", out)
			}
			segs, _ := filepath.Glob(filepath.Join(archive, "*.vgsegment"))
			if len(segs) != 1 {
				t.Fatalf("segments written: %v", segs)
			}
			data, err := os.ReadFile(segs[0])
			if err != nil {
				t.Fatal(err)
			}
			data[len(data)/2] ^= 1
			tampered := filepath.Join(work, "tampered.vgsegment")
			if err := os.WriteFile(tampered, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, errOut, err := runErr("audit", "verify", "--data", dir, "--archive", tampered, "--recovery-key", filepath.Join(keys, "recovery.key"))
			if err == nil || !strings.Contains(errOut, "archive segment refused") {
				t.Fatalf("verify with a tampered segment: %v\n%s", err, errOut)
			}
			_, errOut, err = runErr("audit", "export", "--data", dir)
			if err != nil || !strings.Contains(errOut, "archived entries are not in the live log") {
				t.Fatalf("export after the archive: %v\n%s", err, errOut)
			}
		})
	}
}
