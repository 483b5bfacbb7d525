package evidence_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/evidence"
)

// TestBackupProbe: the backup row needs attention without a backup, without a verified one,
// when the last verification failed or is old, and is enforced with a recent verified backup;
// its facts name the last backup and the last verified backup.
func TestBackupProbe(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	state := func(js string) *evidence.State {
		s := &evidence.State{GeneratedAt: now}
		if js != "" {
			s.Backups = &evidence.BackupState{}
			if err := json.Unmarshal([]byte(js), s.Backups); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	backup := `"last_backup":{"id":"bk-1","at":"2026-12-03T07:00:00Z","store":"sqlite","audit_entries":12,"bytes":1000,"encrypted":"HPKE"}`
	cases := []struct {
		name, state string
		want        evidence.Status
		fact        string
	}{
		{"no backup", "", evidence.StatusAttention, "no backup of this data dir is recorded"},
		{"never verified", "{" + backup + "}", evidence.StatusAttention, "no backup has been verified"},
		{"verified", "{" + backup + `,"last_verified":{"id":"bk-1","backup_at":"2026-12-03T07:00:00Z","at":"2026-12-03T07:05:00Z","ok":true,"audit_entries":12,"tables":29,"seconds":0.2}}`,
			evidence.StatusEnforced, "last verified backup bk-1"},
		{"verification failed", "{" + backup + `,"last_verified":{"id":"bk-1","at":"2026-12-03T07:05:00Z","ok":false,"problem":"manifest does not verify"}}`,
			evidence.StatusAttention, "FAILED: manifest does not verify"},
		{"verification old", "{" + backup + `,"last_verified":{"id":"bk-0","at":"2026-06-01T07:05:00Z","ok":true}}`,
			evidence.StatusAttention, "run a restore drill"},
		{"backup old", `{"last_backup":{"id":"bk-0","at":"2026-11-01T07:00:00Z"},"last_verified":{"id":"bk-0","at":"2026-11-01T07:05:00Z","ok":true}}`,
			evidence.StatusAttention, "older than 7 days"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := evidence.Probe("backup-restore", state(tc.state))
			if !strings.Contains(strings.Join(f.Facts, "\n"), "no entry archived") {
				t.Errorf("the row does not say that no entry is archived: %q", f.Facts)
			}
			if f.Status != tc.want || !strings.Contains(strings.Join(f.Facts, "\n"), tc.fact) {
				t.Fatalf("got %s %q, want %s with %q", f.Status, f.Facts, tc.want, tc.fact)
			}
		})
	}
	t.Run("archived", func(t *testing.T) {
		s := state("")
		s.AuditSegments = []vitalgate.AuditSegment{{ID: "as-0-10", From: 0, To: 10, KeepUntil: now.AddDate(6, 0, 0)},
			{ID: "as-10-40", From: 10, To: 40, KeepUntil: now.AddDate(7, 0, 0)}}
		f := evidence.Probe("backup-restore", s)
		if !strings.Contains(strings.Join(f.Facts, "\n"), "audit entries 0 to 39 are archived in 2 sealed segments") || !strings.Contains(strings.Join(f.Facts, "\n"), "2033-12-03") {
			t.Fatalf("facts %q", f.Facts)
		}
	})
}
