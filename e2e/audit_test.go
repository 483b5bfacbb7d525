package e2e_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // to tamper with a copy of the database the way an intruder would
)

// auditedDir builds a real data dir with a served, signed audit log: enrollment, writes,
// token grants, reads, a clean stop (final checkpoint). It returns the dir and a checkpoint
// kept "elsewhere".
func auditedDir(t *testing.T) (string, string) {
	t.Helper()
	dir := initDir(t)
	secret := addDevice(t, dir, "aud-dev", "aud-pat")
	clientSecret := strings.TrimSpace(run(t, "client", "add", "--data", dir, "--id", "aud-ehr", "--role", "ehr-system"))
	srv := startServer(t, dir)
	cert := srv.enroll(t, "aud-dev", secret)
	c := srv.client(&cert)
	for i := 0; i < 6; i++ {
		if status, body, _, err := post(context.Background(), c, srv.url+"/fhir/Observation", observation("aud-pat", "aud-dev", fmt.Sprint(60+i), time.Now())); err != nil || status != 201 {
			t.Fatalf("post: %d %v %s", status, err, body)
		}
	}
	cmd := exec.Command("curl", "-sS", "--fail", "--cacert", filepath.Join(dir, "ca.crt"), "-u", "aud-ehr:"+clientSecret,
		"-d", "grant_type=client_credentials", srv.url+"/oauth2/token")
	if out, err := cmd.Output(); err != nil || !bytes.Contains(out, []byte("access_token")) {
		t.Fatalf("token: %v %s", err, out)
	}
	srv.stop(t)
	kept := filepath.Join(t.TempDir(), "kept-checkpoint")
	if err := os.WriteFile(kept, []byte(run(t, "audit", "checkpoint", "--data", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, kept
}

// copyDir copies a data dir (modes kept) for one tampering.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

func sqlExec(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "vitalgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestAuditVerifyDetectsTampering runs `vitalgate audit verify` on copies of a real data dir,
// each tampered with differently, and expects it to fail naming the entry or checkpoint.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	dir, kept := auditedDir(t)
	out := run(t, "audit", "verify", "--data", dir, "--checkpoint", kept)
	if !strings.HasPrefix(out, "OK: ") {
		t.Fatalf("untampered log: %s", out)
	}
	dropTriggers := []string{"DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete", "DROP TRIGGER audit_log_append_at_end"}
	tests := []struct {
		name   string
		tamper func(t *testing.T, d string)
		want   string // in the error
	}{
		{"flip a byte in the file", func(t *testing.T, d string) {
			path := filepath.Join(d, "vitalgate.db")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(data, []byte(`"subtype":"simpleenroll"`))
			if i < 0 {
				t.Fatal("entry bytes not found in the database file")
			}
			data[i+len(`"subtype":"`)] ^= 0x01
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "entr"},
		{"change an entry", func(t *testing.T, d string) {
			sqlExec(t, d, append(dropTriggers, `UPDATE audit_log SET data = CAST(replace(CAST(data AS TEXT), '"outcome":"0"', '"outcome":"4"') AS BLOB) WHERE idx = 3`)...)
		}, "entr"},
		{"delete an entry", func(t *testing.T, d string) {
			sqlExec(t, d, append(dropTriggers, `DELETE FROM audit_log WHERE idx = 4`, `UPDATE audit_log SET idx = idx - 1 WHERE idx > 4`)...)
		}, "entr"},
		{"insert an entry", func(t *testing.T, d string) {
			sqlExec(t, d, append(dropTriggers, `UPDATE audit_log SET idx = idx + 1000000 WHERE idx >= 5`,
				`UPDATE audit_log SET idx = idx - 999999 WHERE idx >= 1000000`,
				`INSERT INTO audit_log (idx, data) SELECT 5, data FROM audit_log WHERE idx = 2`)...)
		}, "entr"},
		{"reorder entries", func(t *testing.T, d string) {
			sqlExec(t, d, append(dropTriggers, `UPDATE audit_log SET idx = 1000000 WHERE idx = 2`, `UPDATE audit_log SET idx = 2 WHERE idx = 3`,
				`UPDATE audit_log SET idx = 3 WHERE idx = 1000000`)...)
		}, "entr"},
		{"truncate behind a kept checkpoint", func(t *testing.T, d string) {
			sqlExec(t, d, append(dropTriggers, `DELETE FROM audit_log WHERE idx >= (SELECT max(idx) - 2 FROM audit_log)`,
				`DELETE FROM audit_checkpoints WHERE size > (SELECT count(*) FROM audit_log)`)...)
		}, "checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := copyDir(t, dir)
			tt.tamper(t, d)
			stdout, stderr, err := runErr("audit", "verify", "--data", d, "--checkpoint", kept)
			if err == nil {
				t.Fatalf("tampered log verified: %s", stdout)
			}
			if !strings.Contains(stderr, "AUDIT LOG DOES NOT VERIFY") || !strings.Contains(strings.ToLower(stderr), tt.want) {
				t.Fatalf("verify did not name the %s: %s", tt.want, stderr)
			}
			t.Logf("%s", strings.TrimSpace(stderr))
		})
	}
}

// TestAuditExport exports the log as FHIR AuditEvents and as syslog lines.
func TestAuditExport(t *testing.T) {
	dir, _ := auditedDir(t)
	fhirOut := run(t, "audit", "export", "--data", dir, "--format", "fhir")
	if !strings.Contains(fhirOut, `"resourceType":"AuditEvent"`) || strings.Contains(fhirOut, "aud-pat") {
		t.Fatalf("FHIR export: %.300s", fhirOut)
	}
	syslogOut := run(t, "audit", "export", "--data", dir, "--format", "syslog")
	if !strings.HasPrefix(syslogOut, "<") || !strings.Contains(syslogOut, "vitalgate@32473") {
		t.Fatalf("syslog export: %.300s", syslogOut)
	}
}
