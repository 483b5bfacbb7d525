package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate"
)

const (
	// reissueSecretSQL replaces the enrollment secret only if the device is still as the
	// caller read it (status and secret hash), so that a concurrent enrollment or revocation
	// on any node is never overwritten.
	reissueSecretSQL = `UPDATE devices SET status = $1, enroll_secret_hash = $2, enroll_expires_at = $3, updated_at = $4
	WHERE id = $5 AND status = $6 AND enroll_secret_hash = $7`

	// latestCertSQL reads the device's certificates through certificates_device.
	latestCertSQL = `SELECT serial, device_id, not_before, not_after, issued_at, revoked_at
	FROM certificates WHERE device_id = $1 ORDER BY issued_at DESC, serial DESC LIMIT 1`
)

// ReissueEnrollSecret gives device was.ID a new enrollment secret (hash and expiry) and makes
// it active, if its status and secret hash are still those of was; it appends the audit
// entries in the same transaction. The device's certificates are left as they are (a revoked
// device's stay revoked). Returns ENOTFOUND, ECONFLICT when the device changed meanwhile.
func (db *DB) ReissueEnrollSecret(ctx context.Context, was vitalgate.Device, secretHash string, expiresAt time.Time, audit ...[]byte) error {
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, reissueSecretSQL, string(vitalgate.DeviceActive), secretHash, dbTime(expiresAt),
			dbTime(db.opts.Now()), was.ID, string(was.Status), was.EnrollSecretHash)
		if err != nil {
			return mapError(err, "device")
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, deviceExistsSQL, was.ID).Scan(&exists); err != nil {
				return mapError(err, "device")
			}
			if !exists {
				return notFound("device")
			}
			return vitalgate.Errorf(vitalgate.ECONFLICT, "device %q changed meanwhile", was.ID)
		}
		return nil
	})
}

// LatestCertificate returns the certificate issued last to the device. ENOTFOUND when it
// has none.
func (db *DB) LatestCertificate(ctx context.Context, deviceID string) (vitalgate.Certificate, error) {
	var (
		c                                    vitalgate.Certificate
		notBefore, notAfter, issued, revoked *time.Time
	)
	err := db.pool.QueryRow(ctx, latestCertSQL, deviceID).Scan(&c.Serial, &c.DeviceID, &notBefore, &notAfter, &issued, &revoked)
	if err != nil {
		return vitalgate.Certificate{}, mapError(err, "certificate")
	}
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = goTime(notBefore), goTime(notAfter), goTime(issued), goTime(revoked)
	return c, nil
}
