package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/migration"
)

// migrationFiles holds the schema migrations, named NNNN_description.sql. They are applied in
// version order, each exactly once, and must never change once released: a schema change is a
// new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

const createMigrationsSQL = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at INTEGER NOT NULL
) STRICT`

// SchemaVersion returns the highest migration version this build knows.
func SchemaVersion() int { return migration.LatestIn(migrationFiles, "migrations") }

// migrate applies the pending migrations in one IMMEDIATE transaction, so concurrent openers
// (other processes) apply each migration once, and a failed migration leaves the schema as it
// was.
func migrate(ctx context.Context, w *sql.DB, now func() time.Time) error {
	ms, err := migration.Load(migrationFiles, "migrations")
	if err != nil {
		return vitalgate.Internal(err, "sqlite: migrations")
	}

	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err, "migrate")
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, createMigrationsSQL); err != nil {
		return mapError(err, "migrate")
	}
	var current int
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return mapError(err, "migrate")
	}
	pending, ok := migration.Pending(ms, current)
	if !ok {
		return fmt.Errorf("sqlite: database schema version %d, this build supports up to %d: %w",
			current, migration.Latest(ms), ErrSchemaTooNew)
	}
	for _, m := range pending {
		// The migration text is embedded, reviewed SQL: the one exception to "SQL is a
		// constant string".
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return vitalgate.Internal(err, "sqlite: migration "+m.Name)
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.Version, m.Name, now().UnixMicro()); err != nil {
			return mapError(err, "migrate")
		}
	}
	if err := tx.Commit(); err != nil {
		return mapError(err, "migrate")
	}
	return nil
}
