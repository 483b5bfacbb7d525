package sqlite

import (
	"context"
	"database/sql"

	"github.com/vitalgate/vitalgate"
)

var _ vitalgate.PostureStore = (*DB)(nil)

const (
	upsertPostureDocSQL = `INSERT INTO posture_docs (kind, key, data, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`
	selectPostureDocsSQL = `SELECT kind, key, data, updated_at FROM posture_docs WHERE kind = ? ORDER BY key`
)

// PutPostureDocs inserts or replaces the documents and appends the audit entries, in one
// transaction.
func (db *DB) PutPostureDocs(ctx context.Context, docs []vitalgate.PostureDoc, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	for _, d := range docs {
		if err := vitalgate.CheckPostureDoc(d); err != nil {
			return err
		}
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		for _, d := range docs {
			if _, err := tx.ExecContext(ctx, upsertPostureDocSQL, d.Kind, d.Key, d.Data, dbTime(db.orNow(d.UpdatedAt))); err != nil {
				return mapError(err, "posture document")
			}
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// PostureDocs returns every document of kind, ordered by key.
func (db *DB) PostureDocs(ctx context.Context, kind string) ([]vitalgate.PostureDoc, error) {
	rows, err := db.query(ctx, selectPostureDocsSQL, kind)
	if err != nil {
		return nil, mapError(err, "posture documents")
	}
	defer rows.Close()
	var out []vitalgate.PostureDoc
	for rows.Next() {
		var (
			d  vitalgate.PostureDoc
			at sql.NullInt64
		)
		if err := rows.Scan(&d.Kind, &d.Key, &d.Data, &at); err != nil {
			return nil, mapError(err, "posture document")
		}
		d.UpdatedAt = goTime(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, mapError(err, "posture documents")
	}
	return out, nil
}
