package postgres_test

import (
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate/migration"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/storetest"
)

// TestMigrateLegacyIdentifiers writes storetest.LegacyIdentifierData into a schema at the
// version before migration 0004 (identifier indexes in a table of their own) and checks what
// opening it with this build makes of it.
func TestMigrateLegacyIdentifiers(t *testing.T) {
	schema := NewSchema(t)
	admin := MustServer(t)
	conn, err := admin.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	ms, err := migration.Load(os.DirFS("."), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	storetest.WriteLegacyIdentifiers(t, storetest.LegacyDB{
		Exec: func(t *testing.T, q string, args ...any) {
			t.Helper()
			if len(args) == 0 { // a migration file: several statements
				args = []any{pgx.QueryExecModeSimpleProtocol}
			}
			if _, err := conn.Exec(t.Context(), q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		Migrations:       ms,
		Before:           4,
		CreateMigrations: `SET search_path TO ` + schema + `; CREATE TABLE schema_migrations (version integer NOT NULL PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`,
		RecordMigration:  `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, now())`,
		InsertResource:   `INSERT INTO resources (type, id, version, patient_index, body) VALUES ($1, $2, 1, $3, $4)`,
		InsertCode:       `INSERT INTO resource_codes (type, id, code_index) VALUES ($1, $2, $3)`,
		InsertClient:     `INSERT INTO clients (id, role, created_at) VALUES ($1, $2, now())`,
	})
	if _, err := conn.Exec(t.Context(), `RESET search_path`); err != nil {
		t.Fatal(err)
	}
	db := MustOpen(t, schema, postgres.Options{})
	storetest.CheckLegacyIdentifiers(t, db, db)
}
