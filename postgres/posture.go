package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate"
)

var _ vitalgate.PostureStore = (*DB)(nil)

const (
	upsertPostureDocSQL = `INSERT INTO posture_docs (kind, key, data, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`
	selectPostureDocsSQL = `SELECT kind, key, data, updated_at FROM posture_docs WHERE kind = $1 ORDER BY key`
)

// PutPostureDocs inserts or replaces the documents and appends the audit entries, in one
// transaction.
func (db *DB) PutPostureDocs(ctx context.Context, docs []vitalgate.PostureDoc, audit ...[]byte) error {
	for _, d := range docs {
		if err := vitalgate.CheckPostureDoc(d); err != nil {
			return err
		}
	}
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		for _, d := range docs {
			if _, err := tx.Exec(ctx, upsertPostureDocSQL, d.Kind, d.Key, d.Data, dbTime(db.orNow(d.UpdatedAt))); err != nil {
				return mapError(err, "posture document")
			}
		}
		return nil
	})
}

// PostureDocs returns every document of kind, ordered by key.
func (db *DB) PostureDocs(ctx context.Context, kind string) ([]vitalgate.PostureDoc, error) {
	rows, err := db.pool.Query(ctx, selectPostureDocsSQL, kind)
	if err != nil {
		return nil, mapError(err, "posture documents")
	}
	defer rows.Close()
	var out []vitalgate.PostureDoc
	for rows.Next() {
		var (
			d  vitalgate.PostureDoc
			at *time.Time
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
