package postgres

import (
	"context"
	"io"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate"
)

const (
	insertUpdateMetadataSQL = `INSERT INTO update_metadata (role, version, data, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`

	insertUpdateReleaseSQL = `INSERT INTO update_releases (model, version, target, length, sha256, sbom, live, pending,
		signed, needed, created_by, created_at, live_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	signUpdateReleaseSQL = `UPDATE update_releases SET pending = $1, signed = $2, live = $3, live_at = $4
		WHERE model = $5 AND version = $6 AND NOT live`
	updateReleaseLiveSQL = `SELECT live FROM update_releases WHERE model = $1 AND version = $2`

	insertUpdateChunkSQL = `INSERT INTO update_chunks (model, version, seq, data) VALUES ($1, $2, $3, $4)`
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
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertUpdateReleaseSQL, r.Model, r.Version, r.Target, r.Length, r.SHA256,
			dbBlob(r.SBOM), r.Live, dbBlob(r.Pending), r.Signed, r.Needed, r.By, dbTime(db.orNow(r.Created)), dbTime(r.LiveAt)); err != nil {
			return mapError(err, "update release")
		}
		if err := vitalgate.EachUpdateChunk(content, func(seq int, chunk []byte) error {
			_, err := tx.Exec(ctx, insertUpdateChunkSQL, r.Model, r.Version, seq, chunk)
			return mapError(err, "update target chunk")
		}); err != nil {
			return err
		}
		return db.putUpdateMetadataTx(ctx, tx, ms)
	})
}

func (db *DB) putUpdateMetadataTx(ctx context.Context, tx pgx.Tx, ms []vitalgate.UpdateMetadata) error {
	for _, m := range ms {
		if _, err := tx.Exec(ctx, insertUpdateMetadataSQL, m.Role, m.Version, m.Data, dbTime(m.Expires), dbTime(db.orNow(m.CreatedAt))); err != nil {
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
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, signUpdateReleaseSQL, dbBlob(r.Pending), r.Signed, r.Live, dbTime(r.LiveAt), r.Model, r.Version)
		if err != nil {
			return mapError(err, "update release")
		}
		if tag.RowsAffected() == 0 {
			var live bool
			if err := tx.QueryRow(ctx, updateReleaseLiveSQL, r.Model, r.Version).Scan(&live); err != nil {
				return mapError(err, "update release")
			}
			return vitalgate.Errorf(vitalgate.ECONFLICT, "release %s of model %s is live already", r.Version, r.Model)
		}
		return db.putUpdateMetadataTx(ctx, tx, ms)
	})
}

// PutUpdateMetadata stores metadata versions with the audit entries, in one transaction.
// ECONFLICT if one exists.
func (db *DB) PutUpdateMetadata(ctx context.Context, ms []vitalgate.UpdateMetadata, audit ...[]byte) error {
	if err := vitalgate.CheckUpdateMetadata(ms); err != nil {
		return err
	}
	return db.inTx(ctx, audit, func(tx pgx.Tx) error { return db.putUpdateMetadataTx(ctx, tx, ms) })
}
