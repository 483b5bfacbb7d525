package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/vitalgate/vitalgate/migration"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/storetest"
)

// TestMigrateLegacyIdentifiers writes storetest.LegacyIdentifierData into a database at the
// schema before migration 0007 (identifier indexes in a table of their own) and checks what
// opening it with this build makes of it.
func TestMigrateLegacyIdentifiers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vitalgate.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := migration.Load(os.DirFS("."), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	storetest.WriteLegacyIdentifiers(t, storetest.LegacyDB{
		Exec: func(t *testing.T, q string, args ...any) {
			t.Helper()
			if _, err := raw.ExecContext(t.Context(), q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		Migrations:       ms,
		Before:           7,
		CreateMigrations: `CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`,
		RecordMigration:  `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, unixepoch() * 1000000)`,
		InsertResource:   `INSERT INTO resources (type, id, version, patient_index, body) VALUES (?, ?, 1, ?, ?)`,
		InsertCode:       `INSERT INTO resource_codes (type, id, code_index) VALUES (?, ?, ?)`,
		InsertClient:     `INSERT INTO clients (id, role, created_at) VALUES (?, ?, 0)`,
	})
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	db := MustOpen(t, path, sqlite.Options{})
	storetest.CheckLegacyIdentifiers(t, db, db)
}
