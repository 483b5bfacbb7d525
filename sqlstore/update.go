package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"io"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	updateMetadataColumns   = `SELECT role, version, data, expires_at, created_at FROM update_metadata`
	selectUpdateMetadataSQL = updateMetadataColumns + ` WHERE role = $1 AND version = $2`
	latestUpdateMetadataSQL = updateMetadataColumns + ` WHERE role = $1 ORDER BY version DESC LIMIT 1`

	updateReleaseColumns = `SELECT model, version, target, length, sha256, sbom, live, pending, signed, needed,
		created_by, created_at, live_at FROM update_releases`
	selectUpdateReleaseSQL     = updateReleaseColumns + ` WHERE model = $1 AND version = $2`
	selectUpdateReleasesSQL    = updateReleaseColumns + ` WHERE model = $1 ORDER BY created_at, version`
	selectAllUpdateReleasesSQL = updateReleaseColumns + ` ORDER BY model, created_at, version`

	selectUpdateChunkSQL = `SELECT data FROM update_chunks WHERE model = $1 AND version = $2 AND seq = $3`
)

func scanUpdateMetadata(r rowiter.Scanner) (vitalgate.UpdateMetadata, error) {
	var (
		m                vitalgate.UpdateMetadata
		expires, created Time
	)
	err := r.Scan(&m.Role, &m.Version, &m.Data, &expires, &created)
	m.Expires, m.CreatedAt = expires.T, created.T
	return m, err
}

// UpdateMetadata returns a metadata version, the highest for version 0. ENOTFOUND.
func (s Shared) UpdateMetadata(ctx context.Context, role string, version int64) (vitalgate.UpdateMetadata, error) {
	if version == 0 {
		return get(ctx, s, "update metadata", scanUpdateMetadata, latestUpdateMetadataSQL, role)
	}
	return get(ctx, s, "update metadata", scanUpdateMetadata, selectUpdateMetadataSQL, role, version)
}

// scanUpdateRelease reads an update_releases row in the column layout of both stores'
// release queries.
func scanUpdateRelease(r rowiter.Scanner) (vitalgate.UpdateRelease, error) {
	var (
		u             vitalgate.UpdateRelease
		created, live Time
	)
	err := r.Scan(&u.Model, &u.Version, &u.Target, &u.Length, &u.SHA256, &u.SBOM, &u.Live, &u.Pending,
		&u.Signed, &u.Needed, &u.By, &created, &live)
	u.Created, u.LiveAt = created.T, live.T
	return u, err
}

// UpdateRelease returns a release. ENOTFOUND.
func (s Shared) UpdateRelease(ctx context.Context, model, version string) (vitalgate.UpdateRelease, error) {
	return get(ctx, s, "update release", scanUpdateRelease, selectUpdateReleaseSQL, model, version)
}

// UpdateReleases returns the releases of model, of every model for "".
func (s Shared) UpdateReleases(ctx context.Context, model string) ([]vitalgate.UpdateRelease, error) {
	if model == "" {
		return collect(ctx, s, "update releases", scanUpdateRelease, selectAllUpdateReleasesSQL)
	}
	return collect(ctx, s, "update releases", scanUpdateRelease, selectUpdateReleasesSQL, model)
}

// WriteUpdateTarget writes a release's target file to w one chunk at a time. ENOTFOUND.
func (s Shared) WriteUpdateTarget(ctx context.Context, model, version string, w io.Writer) (int64, error) {
	if _, err := s.UpdateRelease(ctx, model, version); err != nil {
		return 0, err
	}
	return vitalgate.CopyUpdateChunks(w, func(seq int) ([]byte, error) {
		var chunk []byte
		err := s.b.Reader().QueryRow(ctx, selectUpdateChunkSQL, model, version, seq).Scan(&chunk)
		if errors.Is(err, sql.ErrNoRows) { // pgx's ErrNoRows is sql.ErrNoRows too
			return nil, io.EOF
		}
		return chunk, s.b.MapError(err, "update target chunk")
	})
}
