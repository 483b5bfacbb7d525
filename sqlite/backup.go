package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

// What package backup needs from a SQLite store: a consistent snapshot taken while the
// server runs, the rows per table of it, and the destruction of an erased patient's data
// keys when a restore replays an erasure tombstone.

const (
	snapshotSQL  = `VACUUM INTO ?`
	tablesSQL    = `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	dataKeysSQL  = `SELECT site, patient_index FROM data_keys ORDER BY site, patient_index`
	countRowsSQL = `SELECT count(*) FROM "%s"`
)

// tableName is the form of every table name of the schema (checked before a name read from
// sqlite_schema goes into a count query).
var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Snapshot writes a consistent copy of the whole database to path (which must not exist) with
// VACUUM INTO, on a read connection: it sees every transaction committed before it started
// (so every acknowledged write) and none after, and it does not block writers (WAL mode).
func (db *DB) Snapshot(ctx context.Context, path string) error {
	if _, err := db.r.ExecContext(ctx, snapshotSQL, path); err != nil {
		return mapError(err, "snapshot")
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return vitalgate.Internal(err, "snapshot")
	}
	return nil
}

// TableCounts returns the number of rows of every table.
func (db *DB) TableCounts(ctx context.Context) (map[string]int64, error) {
	rows, err := db.r.QueryContext(ctx, tablesSQL)
	if err != nil {
		return nil, mapError(err, "table counts")
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			_ = rows.Close()
			return nil, mapError(err, "table counts")
		}
		names = append(names, n)
	}
	if err := rows.Close(); err != nil {
		return nil, mapError(err, "table counts")
	}
	out := make(map[string]int64, len(names))
	for _, n := range names {
		if !tableName.MatchString(n) {
			return nil, vitalgate.Errorf(vitalgate.EINTERNAL, "unexpected table name %q", n)
		}
		var c int64
		// assurance:sql-ok the table name comes from sqlite_schema and matches tableName
		if err := db.r.QueryRowContext(ctx, fmt.Sprintf(countRowsSQL, n)).Scan(&c); err != nil {
			return nil, mapError(err, "table counts")
		}
		out[n] = c
	}
	return out, nil
}

// EachDataKey calls fn with the site and patient blind index of every stored data key.
func (db *DB) EachDataKey(ctx context.Context, fn func(site string, patientIndex []byte) error) error {
	rows, err := db.r.QueryContext(ctx, dataKeysSQL)
	if err != nil {
		return mapError(err, "data keys")
	}
	defer rows.Close()
	return rowiter.EachPair(rows, mapping("data keys"), fn)
}

// ShredPatient deletes a patient's data key, resources, index rows, assignments and care
// team links, as ErasePatient does but without an erasure request (a restore replaying an
// erasure that happened after the backup), with the audit entries in the same transaction.
// It returns the number of data keys deleted.
func (db *DB) ShredPatient(ctx context.Context, site string, patientIndex []byte, audit ...[]byte) (int, error) {
	var keys int
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		out, err := deletePatientTx(ctx, tx, site, patientIndex)
		if err != nil {
			return err
		}
		keys = out.DataKeys
		if len(audit) > 0 {
			return db.appendAuditTx(ctx, tx, audit)
		}
		return nil
	})
	return keys, err
}
