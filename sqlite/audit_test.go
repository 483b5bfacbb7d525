package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/sqlite"
)

// auditData returns every entry's data in index order, failing t unless indexes are dense.
func auditData(t *testing.T, db *sqlite.DB) []string {
	t.Helper()
	var data []string
	err := db.AuditEntries(t.Context(), 0, math.MaxUint64, func(r vitalgate.AuditRecord) error {
		if r.Index != uint64(len(data)) {
			return fmt.Errorf("entry %d has index %d", len(data), r.Index)
		}
		data = append(data, string(r.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestAuditAppendOnly: the triggers refuse UPDATE, DELETE and any INSERT other than at the
// next index on audit_log, also through a connection that is not the store's, and the entries
// stay as they were.
func TestAuditAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db := MustOpen(t, path, sqlite.Options{})
	if _, err := db.AppendAudit(t.Context(), []byte("e0"), []byte("e1")); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tests := []struct {
		name string
		stmt string
		args []any
	}{
		{"update-data", "UPDATE audit_log SET data = ? WHERE idx = ?", []any{[]byte("forged"), 0}},
		{"update-idx", "UPDATE audit_log SET idx = idx + 10", nil},
		{"delete-one", "DELETE FROM audit_log WHERE idx = ?", []any{1}},
		{"delete-all", "DELETE FROM audit_log", nil},
		// REPLACE deletes the old row without firing DELETE triggers.
		{"replace", "INSERT OR REPLACE INTO audit_log (idx, data) VALUES (?, ?)", []any{0, []byte("forged")}},
		{"gap", "INSERT INTO audit_log (idx, data) VALUES (?, ?)", []any{5, []byte("forged")}},
		{"no-index", "INSERT INTO audit_log (data) VALUES (?)", []any{[]byte("forged")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := raw.ExecContext(t.Context(), tt.stmt, tt.args...)
			if err == nil || !strings.Contains(err.Error(), "audit log is append-only") {
				t.Errorf("%s = %v, want the append-only error", tt.stmt, err)
			}
			if got := auditData(t, db); len(got) != 2 || got[0] != "e0" || got[1] != "e1" {
				t.Errorf("log after %s: %q", tt.name, got)
			}
		})
	}
}

// TestAuditTwoHandles appends from two stores opened on the same file at once, as the server
// and a command-line tool would: indexes are assigned inside each write transaction, so they
// stay dense and unique across processes.
func TestAuditTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	dbs := []*sqlite.DB{MustOpen(t, path, sqlite.Options{}), MustOpen(t, path, sqlite.Options{})}
	const workers, calls = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		db := dbs[w%2]
		wg.Go(func() {
			for c := range calls {
				e := fmt.Appendf(nil, "w%d-c%02d", w, c)
				var err error
				if c%2 == 0 {
					_, err = db.AppendAudit(t.Context(), e)
				} else {
					err = db.CreateResources(t.Context(), []vitalgate.SealedResource{
						{Type: "Observation", ID: string(e), Body: e}}, e)
				}
				if err != nil {
					t.Errorf("%s: %v", e, err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := make(map[string]bool)
	for _, e := range auditData(t, dbs[0]) {
		if seen[e] {
			t.Errorf("entry %q twice", e)
		}
		seen[e] = true
	}
	if len(seen) != workers*calls {
		t.Errorf("%d entries, want %d", len(seen), workers*calls)
	}
}

// TestAuditReopen: indexes continue after the database is closed and opened again.
func TestAuditReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	db := MustOpen(t, path, sqlite.Options{})
	if _, err := db.AppendAudit(t.Context(), []byte("a"), []byte("b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDevice(t.Context(), vitalgate.Device{ID: "d1"}, []byte("d")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = MustOpen(t, path, sqlite.Options{})
	first, err := db.AppendAudit(t.Context(), []byte("e"))
	if err != nil {
		t.Fatal(err)
	}
	if first != 4 {
		t.Errorf("AppendAudit after reopen = %d, want 4", first)
	}
	if got := strings.Join(auditData(t, db), ""); got != "abcde" {
		t.Errorf("log = %q, want abcde", got)
	}
}

// TestAuditInvalid: an empty audit entry fails the write with EINVALID before anything is
// written, so no write happens without its audit entries.
func TestAuditInvalid(t *testing.T) {
	db := MustOpen(t, "", sqlite.Options{})
	ctx := t.Context()
	if err := db.CreateDevice(ctx, vitalgate.Device{ID: "dev-1", EnrollSecretHash: "h"}); err != nil {
		t.Fatal(err)
	}
	bad := [][]byte{[]byte("ok"), nil}
	tests := []struct {
		name string
		call func() error
	}{
		{"AppendAudit", func() error { _, err := db.AppendAudit(ctx, bad...); return err }},
		{"AppendAudit/empty-slice", func() error { _, err := db.AppendAudit(ctx, []byte{}); return err }},
		{"CreateDevice", func() error { return db.CreateDevice(ctx, vitalgate.Device{ID: "dev-2"}, bad...) }},
		{"ConsumeEnrollSecret", func() error {
			return db.ConsumeEnrollSecret(ctx, "dev-1", "h", vitalgate.Certificate{Serial: "01"}, bad...)
		}},
		{"SetEnrollSecret", func() error { return db.SetEnrollSecret(ctx, "dev-1", "h2", time.Time{}, bad...) }},
		{"AssignPatient", func() error {
			return db.AssignPatient(ctx, "dev-1", []byte("p"), []byte("s"), time.Time{}, bad...)
		}},
		{"AddCertificate", func() error {
			return db.AddCertificate(ctx, vitalgate.Certificate{Serial: "02", DeviceID: "dev-1"}, bad...)
		}},
		{"RevokeDevice", func() error { return db.RevokeDevice(ctx, "dev-1", time.Time{}, bad...) }},
		{"CreateClient", func() error {
			return db.CreateClient(ctx, vitalgate.Client{ID: "c1", Role: vitalgate.RoleAdmin}, bad...)
		}},
		{"CreateResources", func() error {
			return db.CreateResources(ctx, []vitalgate.SealedResource{{Type: "Observation", ID: "o1", Body: []byte("x")}}, bad...)
		}},
		{"AddAuditCheckpoint/empty-note", func() error {
			return db.AddAuditCheckpoint(ctx, vitalgate.AuditCheckpoint{Size: 0})
		}},
		{"AddAuditCheckpoint/huge-size", func() error {
			return db.AddAuditCheckpoint(ctx, vitalgate.AuditCheckpoint{Size: math.MaxUint64, Note: []byte("n")})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code := vitalgate.ErrorCode(tt.call()); code != vitalgate.EINVALID {
				t.Errorf("code %q, want %q", code, vitalgate.EINVALID)
			}
		})
	}
	if n, err := db.AuditSize(ctx); err != nil || n != 0 {
		t.Errorf("AuditSize = %d, %v; want 0", n, err)
	}
	d, err := db.Device(ctx, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	if d.EnrollSecretHash != "h" || d.Status != vitalgate.DeviceActive || len(d.PatientIndex) != 0 {
		t.Errorf("a refused write changed the device: %+v", d)
	}
	for _, check := range []struct {
		what string
		err  error
	}{
		{"device dev-2", func() error { _, err := db.Device(ctx, "dev-2"); return err }()},
		{"certificate 01", func() error { _, err := db.Certificate(ctx, "01"); return err }()},
		{"certificate 02", func() error { _, err := db.Certificate(ctx, "02"); return err }()},
		{"client c1", func() error { _, err := db.Client(ctx, "c1"); return err }()},
		{"resource o1", func() error { _, err := db.Resource(ctx, "Observation", "o1"); return err }()},
	} {
		if vitalgate.ErrorCode(check.err) != vitalgate.ENOTFOUND {
			t.Errorf("%s of a refused write: %v, want not found", check.what, check.err)
		}
	}
}

// TestAppendAuditNoEntries: AppendAudit with nothing to append writes nothing and returns the
// index the next entry will get.
func TestAppendAuditNoEntries(t *testing.T) {
	db := MustOpen(t, "", sqlite.Options{})
	for want := range uint64(3) {
		got, err := db.AppendAudit(t.Context())
		if err != nil || got != want {
			t.Fatalf("AppendAudit() = %d, %v; want %d", got, err, want)
		}
		if _, err := db.AppendAudit(t.Context(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAppendAuditCancelled: a cancelled context appends nothing.
func TestAppendAuditCancelled(t *testing.T) {
	db := MustOpen(t, "", sqlite.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for i := range 20 {
		if _, err := db.AppendAudit(ctx, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: AppendAudit = %v, want context.Canceled", i, err)
		}
		err := db.CreateResources(ctx, []vitalgate.SealedResource{{Type: "T", ID: "1", Body: []byte("x")}}, []byte("y"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("attempt %d: CreateResources = %v, want context.Canceled", i, err)
		}
	}
	if n, err := db.AuditSize(t.Context()); err != nil || n != 0 {
		t.Errorf("AuditSize = %d, %v after cancelled appends; want 0", n, err)
	}
}
