package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
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

// migration is one embedded schema migration.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in ascending version order.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		text, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(text)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// SchemaVersion returns the highest migration version this build knows.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// migrate applies the pending migrations in one IMMEDIATE transaction, so concurrent openers
// (other processes) apply each migration once, and a failed migration leaves the schema as it
// was.
func migrate(ctx context.Context, w *sql.DB, now func() time.Time) error {
	ms, err := migrations()
	if err != nil {
		return vitalgate.Internal(err, "sqlite: migrations")
	}
	known := 0
	if len(ms) > 0 {
		known = ms[len(ms)-1].version
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
	if current > known {
		return fmt.Errorf("sqlite: database schema version %d, this build supports up to %d: %w",
			current, known, ErrSchemaTooNew)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		// The migration text is embedded, reviewed SQL: the one exception to "SQL is a
		// constant string".
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return vitalgate.Internal(err, "sqlite: migration "+m.name)
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
			m.version, m.name, now().UnixMicro()); err != nil {
			return mapError(err, "migrate")
		}
	}
	if err := tx.Commit(); err != nil {
		return mapError(err, "migrate")
	}
	return nil
}
