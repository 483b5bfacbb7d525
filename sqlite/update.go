package sqlite

import (
	"context"
	"database/sql"
	"io"

	"github.com/vitalgate/vitalgate"
)

const (
	insertUpdateMetadataSQL = `INSERT INTO update_metadata (role, version, data, expires_at, created_at) VALUES (?, ?, ?, ?, ?)`

	insertUpdateReleaseSQL = `INSERT INTO update_releases (model, version, target, length, sha256, sbom, live, pending,
		signed, needed, created_by, created_at, live_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	signUpdateReleaseSQL = `UPDATE update_releases SET pending = ?, signed = ?, live = ?, live_at = ?
		WHERE model = ? AND version = ? AND live = 0`
	updateReleaseLiveSQL = `SELECT live FROM update_releases WHERE model = ? AND version = ?`

	insertUpdateChunkSQL = `INSERT INTO update_chunks (model, version, seq, data) VALUES (?, ?, ?, ?)`
)

// CreateUpdateRelease stores r, its target file read from content in chunks of at most
// vitalgate.UpdateChunkSize bytes, and ms, with the audit entries, in one transaction.
// ECONFLICT if the release or a metadata version exists; an error from content aborts it.
func (db *DB) CreateUpdateRelease(ctx context.Context, r vitalgate.UpdateRelease, content io.Reader, ms []vitalgate.UpdateMetadata, audit ...[]byte) error {
	if err := vitalgate.CheckUpdateRelease(r); err != nil {
		return err
	}
	if err := vitalgate.CheckUpdateMetadata(ms); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, insertUpdateReleaseSQL, r.Model, r.Version, r.Target, r.Length, r.SHA256,
			dbBlob(r.SBOM), r.Live, dbBlob(r.Pending), r.Signed, r.Needed, r.By, dbTime(db.orNow(r.Created)), dbTime(r.LiveAt)); err != nil {
			return mapError(err, "update release")
		}
		if err := vitalgate.EachUpdateChunk(content, func(seq int, chunk []byte) error {
			_, err := tx.ExecContext(ctx, insertUpdateChunkSQL, r.Model, r.Version, seq, chunk)
			return mapError(err, "update target chunk")
		}); err != nil {
			return err
		}
		if err := putUpdateMetadataTx(ctx, tx, db, ms); err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

func putUpdateMetadataTx(ctx context.Context, tx *sql.Tx, db *DB, ms []vitalgate.UpdateMetadata) error {
	for _, m := range ms {
		if _, err := tx.ExecContext(ctx, insertUpdateMetadataSQL, m.Role, m.Version, m.Data, dbTime(m.Expires), dbTime(db.orNow(m.CreatedAt))); err != nil {
			return mapError(err, "update metadata "+m.Role)
		}
	}
	return nil
}

// SignUpdateRelease replaces the signing state of a release that is not live yet and stores
// ms, with the audit entries, in one transaction. ENOTFOUND, ECONFLICT.
func (db *DB) SignUpdateRelease(ctx context.Context, r vitalgate.UpdateRelease, ms []vitalgate.UpdateMetadata, audit ...[]byte) error {
	if err := vitalgate.CheckUpdateMetadata(ms); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, signUpdateReleaseSQL, dbBlob(r.Pending), r.Signed, r.Live, dbTime(r.LiveAt), r.Model, r.Version)
		if err != nil {
			return mapError(err, "update release")
		}
		if n, err := res.RowsAffected(); err != nil {
			return mapError(err, "update release")
		} else if n == 0 {
			var live bool
			if err := tx.QueryRowContext(ctx, updateReleaseLiveSQL, r.Model, r.Version).Scan(&live); err != nil {
				return mapError(err, "update release")
			}
			return vitalgate.Errorf(vitalgate.ECONFLICT, "release %s of model %s is live already", r.Version, r.Model)
		}
		if err := putUpdateMetadataTx(ctx, tx, db, ms); err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// PutUpdateMetadata stores metadata versions with the audit entries, in one transaction.
// ECONFLICT if one exists.
func (db *DB) PutUpdateMetadata(ctx context.Context, ms []vitalgate.UpdateMetadata, audit ...[]byte) error {
	if err := vitalgate.CheckUpdateMetadata(ms); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := putUpdateMetadataTx(ctx, tx, db, ms); err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}
