package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/migration"
)

// ErrSchemaTooNew is returned (wrapped) by Open when the database's schema version is newer
// than any migration this build knows: it was written by a newer version of Vitalgate.
var ErrSchemaTooNew = errors.New("database schema is newer than this build supports")

// ErrNoSchema is returned (wrapped) by Open when the schema named by Options.Schema does not
// exist, or the connection's search_path names no existing schema.
var ErrNoSchema = errors.New("schema does not exist")

// migrationFiles holds the schema migrations, named NNNN_description.sql. They are applied in
// version order, each exactly once, and must never change once released: a schema change is a
// new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// MigrationLockKey is the first key of the transaction-scoped advisory lock
// (pg_advisory_xact_lock(MigrationLockKey, hashtext(schema))) that serializes the migration
// of one schema across every process opening it.
const MigrationLockKey = 0x56474d47 // "VGMG"

const (
	currentSchemaSQL   = `SELECT current_schema()`
	migrationLockSQL   = `SELECT pg_advisory_xact_lock($1::integer, hashtext($2::text))`
	createMigrationSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL
)`
	currentVersionSQL  = `SELECT coalesce(max(version), 0) FROM schema_migrations`
	insertMigrationSQL = `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`
)

// SchemaVersion returns the highest migration version this build knows.
func SchemaVersion() int { return migration.LatestIn(migrationFiles, "migrations") }

// migrate applies the pending migrations in one transaction holding the schema's advisory
// lock, so that concurrent openers (other nodes) apply each migration exactly once, and a
// failed migration leaves the schema as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool, now func() time.Time) error {
	ms, err := migration.Load(migrationFiles, "migrations")
	if err != nil {
		return vitalgate.Internal(err, "postgres: migrations")
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return mapError(err, "migrate")
	}
	defer func() { _ = tx.Rollback(ctx) }()

	var schema *string
	if err := tx.QueryRow(ctx, currentSchemaSQL).Scan(&schema); err != nil {
		return mapError(err, "migrate")
	}
	if schema == nil {
		return fmt.Errorf("postgres: the search_path names no existing schema: %w", ErrNoSchema)
	}
	if _, err := tx.Exec(ctx, migrationLockSQL, int32(MigrationLockKey), *schema); err != nil {
		return mapError(err, "migrate")
	}
	if _, err := tx.Exec(ctx, createMigrationSQL); err != nil {
		return mapError(err, "migrate")
	}
	var current int
	if err := tx.QueryRow(ctx, currentVersionSQL).Scan(&current); err != nil {
		return mapError(err, "migrate")
	}
	pending, ok := migration.Pending(ms, current)
	if !ok {
		return fmt.Errorf("postgres: database schema %s has version %d, this build supports up to %d: %w",
			*schema, current, migration.Latest(ms), ErrSchemaTooNew)
	}
	for _, m := range pending {
		// The migration text is embedded, reviewed SQL: the one exception to "SQL is a
		// constant string". It runs with the simple protocol, which allows several statements.
		// assurance:sql-ok embedded migration file (go:embed), reviewed like code
		if _, err := tx.Exec(ctx, m.SQL, pgx.QueryExecModeSimpleProtocol); err != nil {
			return vitalgate.Internal(err, "postgres: migration "+m.Name)
		}
		if _, err := tx.Exec(ctx, insertMigrationSQL, m.Version, m.Name, dbTime(now())); err != nil {
			return mapError(err, "migrate")
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return mapError(err, "migrate")
	}
	return nil
}
