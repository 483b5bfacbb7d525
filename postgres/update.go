package postgres

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertUpdateMetadataSQL = `INSERT INTO update_metadata (role, version, data, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`
	updateMetadataColumns   = `SELECT role, version, data, expires_at, created_at FROM update_metadata`
	selectUpdateMetadataSQL = updateMetadataColumns + ` WHERE role = $1 AND version = $2`
	latestUpdateMetadataSQL = updateMetadataColumns + ` WHERE role = $1 ORDER BY version DESC LIMIT 1`

	insertUpdateReleaseSQL = `INSERT INTO update_releases (model, version, target, length, sha256, sbom, live, pending,
		signed, needed, created_by, created_at, live_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	signUpdateReleaseSQL = `UPDATE update_releases SET pending = $1, signed = $2, live = $3, live_at = $4
		WHERE model = $5 AND version = $6 AND NOT live`
	updateReleaseColumns = `SELECT model, version, target, length, sha256, sbom, live, pending, signed, needed,
		created_by, created_at, live_at FROM update_releases`
	selectUpdateReleaseSQL     = updateReleaseColumns + ` WHERE model = $1 AND version = $2`
	selectUpdateReleasesSQL    = updateReleaseColumns + ` WHERE model = $1 ORDER BY created_at, version`
	selectAllUpdateReleasesSQL = updateReleaseColumns + ` ORDER BY model, created_at, version`
	updateReleaseLiveSQL       = `SELECT live FROM update_releases WHERE model = $1 AND version = $2`

	insertUpdateChunkSQL = `INSERT INTO update_chunks (model, version, seq, data) VALUES ($1, $2, $3, $4)`
	selectUpdateChunkSQL = `SELECT data FROM update_chunks WHERE model = $1 AND version = $2 AND seq = $3`
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

func scanUpdateMetadata(s rowiter.Scanner) (vitalgate.UpdateMetadata, error) {
	var (
		m                vitalgate.UpdateMetadata
		expires, created *time.Time
	)
	err := s.Scan(&m.Role, &m.Version, &m.Data, &expires, &created)
	m.Expires, m.CreatedAt = goTime(expires), goTime(created)
	return m, err
}

// UpdateMetadata returns a metadata version, the highest for version 0. ENOTFOUND.
func (db *DB) UpdateMetadata(ctx context.Context, role string, version int64) (vitalgate.UpdateMetadata, error) {
	var row pgx.Row
	if version == 0 {
		row = db.pool.QueryRow(ctx, latestUpdateMetadataSQL, role)
	} else {
		row = db.pool.QueryRow(ctx, selectUpdateMetadataSQL, role, version)
	}
	m, err := scanUpdateMetadata(row)
	if err != nil {
		return vitalgate.UpdateMetadata{}, mapError(err, "update metadata")
	}
	return m, nil
}

func scanUpdateRelease(s rowiter.Scanner) (vitalgate.UpdateRelease, error) {
	var (
		r             vitalgate.UpdateRelease
		created, live *time.Time
	)
	err := s.Scan(&r.Model, &r.Version, &r.Target, &r.Length, &r.SHA256, &r.SBOM, &r.Live, &r.Pending,
		&r.Signed, &r.Needed, &r.By, &created, &live)
	r.Created, r.LiveAt = goTime(created), goTime(live)
	return r, err
}

// UpdateRelease returns a release. ENOTFOUND.
func (db *DB) UpdateRelease(ctx context.Context, model, version string) (vitalgate.UpdateRelease, error) {
	return get(ctx, db, "update release", scanUpdateRelease, selectUpdateReleaseSQL, model, version)
}

// UpdateReleases returns the releases of model, of every model for "".
func (db *DB) UpdateReleases(ctx context.Context, model string) ([]vitalgate.UpdateRelease, error) {
	if model == "" {
		return collect(ctx, db, "update releases", scanUpdateRelease, selectAllUpdateReleasesSQL)
	}
	return collect(ctx, db, "update releases", scanUpdateRelease, selectUpdateReleasesSQL, model)
}

// WriteUpdateTarget writes a release's target file to w one chunk at a time. ENOTFOUND.
func (db *DB) WriteUpdateTarget(ctx context.Context, model, version string, w io.Writer) (int64, error) {
	if _, err := db.UpdateRelease(ctx, model, version); err != nil {
		return 0, err
	}
	return vitalgate.CopyUpdateChunks(w, func(seq int) ([]byte, error) {
		var chunk []byte
		err := db.pool.QueryRow(ctx, selectUpdateChunkSQL, model, version, seq).Scan(&chunk)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, io.EOF
		}
		return chunk, mapError(err, "update target chunk")
	})
}
