package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/vitalgate/vitalgate"
)

const (
	// reissueSecretSQL replaces the enrollment secret only if the device is still as the
	// caller read it (status and secret hash), so that a concurrent enrollment or revocation
	// is never overwritten.
	reissueSecretSQL = `UPDATE devices SET status = ?, enroll_secret_hash = ?, enroll_expires_at = ?, updated_at = ?
	WHERE id = ? AND status = ? AND enroll_secret_hash = ?`

	// latestCertSQL reads the device's certificates through certificates_device.
	latestCertSQL = `SELECT serial, device_id, not_before, not_after, issued_at, revoked_at
	FROM certificates WHERE device_id = ? ORDER BY issued_at DESC, serial DESC LIMIT 1`
)

// ReissueEnrollSecret gives device was.ID a new enrollment secret (hash and expiry) and makes
// it active, if its status and secret hash are still those of was; it appends the audit
// entries in the same transaction. The device's certificates are left as they are (a revoked
// device's stay revoked). Returns ENOTFOUND, ECONFLICT when the device changed meanwhile,
// EINVALID for an empty audit entry.
func (db *DB) ReissueEnrollSecret(ctx context.Context, was vitalgate.Device, secretHash string, expiresAt time.Time, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, reissueSecretSQL, string(vitalgate.DeviceActive), secretHash, dbTime(expiresAt),
			dbTime(db.opts.Now()), was.ID, string(was.Status), was.EnrollSecretHash)
		if err != nil {
			return mapError(err, "device")
		}
		if n, err := res.RowsAffected(); err != nil {
			return mapError(err, "device")
		} else if n == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, deviceExistsSQL, was.ID).Scan(&one); err != nil {
				return mapError(err, "device")
			}
			return vitalgate.Errorf(vitalgate.ECONFLICT, "device %q changed meanwhile", was.ID)
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// LatestCertificate returns the certificate issued last to the device. ENOTFOUND when it
// has none.
func (db *DB) LatestCertificate(ctx context.Context, deviceID string) (vitalgate.Certificate, error) {
	var (
		c                                    vitalgate.Certificate
		notBefore, notAfter, issued, revoked sql.NullInt64
	)
	err := db.queryRow(ctx, latestCertSQL, deviceID).Scan(&c.Serial, &c.DeviceID, &notBefore, &notAfter, &issued, &revoked)
	if err != nil {
		return vitalgate.Certificate{}, mapError(err, "certificate")
	}
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = goTime(notBefore), goTime(notAfter), goTime(issued), goTime(revoked)
	return c, nil
}
