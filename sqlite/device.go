package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	deviceColumns = `SELECT id, model, status, patient_index, patient_sealed, created_at, updated_at,
	enroll_secret_hash, enroll_expires_at, site FROM devices`

	selectDeviceSQL  = deviceColumns + ` WHERE id = ?`
	selectDevicesSQL = deviceColumns + ` ORDER BY id`

	insertDeviceSQL = `INSERT INTO devices (id, model, status, patient_index, patient_sealed,
	created_at, updated_at, enroll_secret_hash, enroll_expires_at, site) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	deviceExistsSQL = `SELECT 1 FROM devices WHERE id = ?`

	consumeSecretSQL = `UPDATE devices SET enroll_secret_hash = '', updated_at = ?
	WHERE id = ? AND enroll_secret_hash = ? AND enroll_secret_hash <> ''`

	setSecretSQL = `UPDATE devices SET enroll_secret_hash = ?, enroll_expires_at = ?, updated_at = ?
	WHERE id = ?`

	assignPatientSQL = `UPDATE devices SET patient_index = ?, patient_sealed = ?, updated_at = ?
	WHERE id = ?`

	revokeDeviceSQL = `UPDATE devices SET status = ?, updated_at = ? WHERE id = ?`

	revokeCertsSQL = `UPDATE certificates SET revoked_at = ?
	WHERE device_id = ? AND (revoked_at IS NULL OR revoked_at > ?)`

	insertCertSQL = `INSERT INTO certificates (serial, device_id, not_before, not_after, issued_at,
	revoked_at) VALUES (?, ?, ?, ?, ?, ?)`

	selectCertSQL = `SELECT serial, device_id, not_before, not_after, issued_at, revoked_at
	FROM certificates WHERE serial = ?`

	// renewOldCertSQL ends the replaced certificate at the end of the overlap, unless it
	// ends earlier already.
	renewOldCertSQL = `UPDATE certificates SET revoked_at = ?
	WHERE serial = ? AND device_id = ? AND (revoked_at IS NULL OR revoked_at > ?)`

	certOfDeviceSQL = `SELECT 1 FROM certificates WHERE serial = ? AND device_id = ?`

	assignmentColumns = `SELECT device_id, valid_from, valid_to, patient_index, patient_sealed
	FROM device_assignments`

	// assignmentAtSQL seeks the primary key (device_id, valid_from) backwards: one row.
	assignmentAtSQL = assignmentColumns + ` WHERE device_id = ? AND valid_from <= ?
	ORDER BY valid_from DESC LIMIT 1`

	assignmentsSQL = assignmentColumns + ` WHERE device_id = ? ORDER BY valid_from DESC LIMIT ?`

	latestAssignmentStartSQL = `SELECT valid_from, valid_to IS NULL FROM device_assignments
	WHERE device_id = ? ORDER BY valid_from DESC LIMIT 1`

	dropAssignmentSQL = `DELETE FROM device_assignments WHERE device_id = ? AND valid_from = ?` // #nosec G101 -- SQL text, not a credential

	closeAssignmentSQL = `UPDATE device_assignments SET valid_to = ? WHERE device_id = ? AND valid_to IS NULL`

	openAssignmentSQL = `INSERT INTO device_assignments (device_id, valid_from, valid_to, patient_index,
	patient_sealed) VALUES (?, ?, NULL, ?, ?)`
)

// CreateDevice registers a new device and appends the audit entries, in one transaction. An
// empty Status is stored as DeviceActive; zero CreatedAt and UpdatedAt are set to the current
// time. Returns ECONFLICT if the id exists, EINVALID for an empty id or audit entry.
func (db *DB) CreateDevice(ctx context.Context, d vitalgate.Device, audit ...[]byte) error {
	if d.ID == "" {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Device.id", "device id is empty")
	}
	d.Site = vitalgate.StoredSite(d.Site)
	if err := vitalgate.CheckSiteID(d.Site); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	if d.Status == "" {
		d.Status = vitalgate.DeviceActive
	}
	d.CreatedAt = db.orNow(d.CreatedAt)
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, insertDeviceSQL, d.ID, d.Model, string(d.Status),
			dbBlob(d.PatientIndex), dbBlob(d.PatientSealed), dbTime(d.CreatedAt), dbTime(d.UpdatedAt),
			d.EnrollSecretHash, dbTime(d.EnrollExpiresAt), d.Site)
		if err != nil {
			return mapError(err, "device")
		}
		if len(d.PatientIndex) > 0 {
			if _, err := tx.ExecContext(ctx, openAssignmentSQL, d.ID, dbTime(d.CreatedAt),
				d.PatientIndex, dbBlob(d.PatientSealed)); err != nil {
				return mapError(err, "assignment")
			}
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// scanDevice reads a devices row selected with deviceColumns.
func scanDevice(s rowiter.Scanner) (vitalgate.Device, error) {
	var (
		d                           vitalgate.Device
		status                      string
		created, updated, expiresAt sql.NullInt64
	)
	err := s.Scan(&d.ID, &d.Model, &status, &d.PatientIndex, &d.PatientSealed, &created, &updated,
		&d.EnrollSecretHash, &expiresAt, &d.Site)
	d.Status = vitalgate.DeviceStatus(status)
	d.CreatedAt, d.UpdatedAt, d.EnrollExpiresAt = goTime(created), goTime(updated), goTime(expiresAt)
	return d, err
}

// Device returns a device by id. Returns ENOTFOUND.
func (db *DB) Device(ctx context.Context, id string) (vitalgate.Device, error) {
	d, err := scanDevice(db.queryRow(ctx, selectDeviceSQL, id))
	if err != nil {
		return vitalgate.Device{}, mapError(err, "device")
	}
	return d, nil
}

// Devices lists all devices ordered by id.
func (db *DB) Devices(ctx context.Context) ([]vitalgate.Device, error) {
	return collect(ctx, db, "devices", scanDevice, selectDevicesSQL)
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits if fn returns nil.
// fn must use only tx: the write pool has one connection.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return mapError(err, "begin")
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return mapError(tx.Commit(), "commit")
}

// deviceMissing returns ENOTFOUND if the device does not exist, nil if it does.
func deviceMissing(ctx context.Context, tx *sql.Tx, id string) error {
	var one int
	return mapError(tx.QueryRowContext(ctx, deviceExistsSQL, id).Scan(&one), "device")
}

// ConsumeEnrollSecret marks the device's enrollment secret used, records cert and appends
// the audit entries, in one transaction: the secret is consumed only if the certificate and
// the entries are recorded. The update matches only the current, unused hash, so of
// concurrent callers (in this or another process) exactly one succeeds. An empty
// cert.DeviceID means deviceID. Returns ECONFLICT if the secret was used or replaced or the
// serial exists, ENOTFOUND if the device does not exist, EINVALID for an empty audit entry.
func (db *DB) ConsumeEnrollSecret(ctx context.Context, deviceID, secretHash string, cert vitalgate.Certificate, audit ...[]byte) error {
	if cert.DeviceID == "" {
		cert.DeviceID = deviceID
	}
	if cert.DeviceID != deviceID {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Certificate.deviceID", "certificate is for another device")
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	cert.IssuedAt = db.orNow(cert.IssuedAt)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, consumeSecretSQL, dbTime(db.opts.Now()), deviceID, secretHash)
		if err != nil {
			return mapError(err, "device")
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapError(err, "device")
		}
		if n != 1 {
			if err := deviceMissing(ctx, tx, deviceID); err != nil {
				return err
			}
			return vitalgate.Errorf(vitalgate.ECONFLICT, "enrollment secret already used or replaced")
		}
		if err := insertCert(ctx, tx, cert); err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

func insertCert(ctx context.Context, tx *sql.Tx, c vitalgate.Certificate) error {
	_, err := tx.ExecContext(ctx, insertCertSQL, c.Serial, c.DeviceID, dbTime(c.NotBefore),
		dbTime(c.NotAfter), dbTime(c.IssuedAt), dbTime(c.RevokedAt))
	return mapError(err, "certificate")
}

// SetEnrollSecret replaces the device's enrollment secret hash and expiry and appends the
// audit entries, in one transaction. Returns ENOTFOUND, or EINVALID for an empty audit entry.
func (db *DB) SetEnrollSecret(ctx context.Context, deviceID, secretHash string, expiresAt time.Time, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := oneDevice(tx.ExecContext(ctx, setSecretSQL, secretHash, dbTime(expiresAt),
			dbTime(db.opts.Now()), deviceID)); err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// AssignPatient changes the device's patient, sets UpdatedAt to at, closes the current
// assignment at at and opens the new one from at (none for an empty patientIndex), and
// appends the audit entries, in one transaction. A current assignment that starts at at
// itself lasted no time and is replaced. Returns ENOTFOUND, ECONFLICT when at is before the
// start of the device's latest assignment, or EINVALID for an empty audit entry.
func (db *DB) AssignPatient(ctx context.Context, deviceID string, patientIndex, patientSealed []byte, at time.Time, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	at = db.orNow(at).Truncate(time.Microsecond)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := oneDevice(tx.ExecContext(ctx, assignPatientSQL, dbBlob(patientIndex), dbBlob(patientSealed),
			dbTime(at), deviceID)); err != nil {
			return err
		}
		var latest sql.NullInt64
		var current bool
		err := tx.QueryRowContext(ctx, latestAssignmentStartSQL, deviceID).Scan(&latest, &current)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapError(err, "assignment")
		}
		switch {
		case latest.Valid && at.Equal(goTime(latest)) && current:
			// A reassignment in the same instant replaces an assignment that lasted no time.
			if _, err := tx.ExecContext(ctx, dropAssignmentSQL, deviceID, dbTime(at)); err != nil {
				return mapError(err, "assignment")
			}
		case latest.Valid && !at.After(goTime(latest)):
			return vitalgate.Errorf(vitalgate.ECONFLICT, "the device's latest assignment starts after this time; reassign later")
		default:
			if _, err := tx.ExecContext(ctx, closeAssignmentSQL, dbTime(at), deviceID); err != nil {
				return mapError(err, "assignment")
			}
		}
		if len(patientIndex) > 0 {
			if _, err := tx.ExecContext(ctx, openAssignmentSQL, deviceID, dbTime(at), patientIndex,
				dbBlob(patientSealed)); err != nil {
				return mapError(err, "assignment")
			}
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// scanAssignment reads a device_assignments row selected with assignmentColumns.
func scanAssignment(s rowiter.Scanner) (vitalgate.Assignment, error) {
	var (
		a        vitalgate.Assignment
		from, to sql.NullInt64
	)
	err := s.Scan(&a.DeviceID, &from, &to, &a.PatientIndex, &a.PatientSealed)
	a.From, a.To = goTime(from), goTime(to)
	return a, err
}

// AssignmentAt returns the device's assignment that covers t: the one with the latest start
// at or before t (one seek of the primary key), if it has not ended by t. Returns ENOTFOUND
// when none covers t.
func (db *DB) AssignmentAt(ctx context.Context, deviceID string, t time.Time) (vitalgate.Assignment, error) {
	a, err := scanAssignment(db.queryRow(ctx, assignmentAtSQL, deviceID, t.UnixMicro()))
	if err != nil {
		return vitalgate.Assignment{}, mapError(err, "assignment")
	}
	if !a.Covers(t) {
		return vitalgate.Assignment{}, vitalgate.Errorf(vitalgate.ENOTFOUND, "assignment not found")
	}
	return a, nil
}

// Assignments returns up to limit of the device's assignments, newest first.
func (db *DB) Assignments(ctx context.Context, deviceID string, limit int) ([]vitalgate.Assignment, error) {
	if limit <= 0 {
		return nil, nil
	}
	return collect(ctx, db, "assignments", scanAssignment, assignmentsSQL, deviceID, limit)
}

// oneDevice checks the result of an UPDATE of one device row: ENOTFOUND if it matched none.
func oneDevice(res sql.Result, err error) error {
	if err != nil {
		return mapError(err, "device")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapError(err, "device")
	}
	if n == 0 {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "device not found")
	}
	return nil
}

// AddCertificate records a newly issued certificate and appends the audit entries, in one
// transaction. A zero IssuedAt is set to the current time. ENOTFOUND for an unknown device,
// ECONFLICT if the serial exists, EINVALID for an empty audit entry.
func (db *DB) AddCertificate(ctx context.Context, cert vitalgate.Certificate, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	cert.IssuedAt = db.orNow(cert.IssuedAt)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := deviceMissing(ctx, tx, cert.DeviceID); err != nil {
			return err
		}
		if err := insertCert(ctx, tx, cert); err != nil {
			return err
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// RenewCertificate records cert and ends the device's certificate oldSerial at oldUntil
// (unless it ends earlier already), and appends the audit entries, in one transaction. A
// zero IssuedAt is set to the current time. Returns ENOTFOUND for an unknown device or an
// oldSerial that is not the device's, ECONFLICT if cert's serial exists, EINVALID for an
// empty audit entry.
func (db *DB) RenewCertificate(ctx context.Context, cert vitalgate.Certificate, oldSerial string, oldUntil time.Time, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	cert.IssuedAt = db.orNow(cert.IssuedAt)
	oldUntil = db.orNow(oldUntil)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if err := deviceMissing(ctx, tx, cert.DeviceID); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRowContext(ctx, certOfDeviceSQL, oldSerial, cert.DeviceID).Scan(&one); err != nil {
			return mapError(err, "certificate")
		}
		if err := insertCert(ctx, tx, cert); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, renewOldCertSQL, dbTime(oldUntil), oldSerial, cert.DeviceID,
			dbTime(oldUntil)); err != nil {
			return mapError(err, "certificate")
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

// Certificate returns a certificate by serial. Returns ENOTFOUND.
func (db *DB) Certificate(ctx context.Context, serial string) (vitalgate.Certificate, error) {
	var (
		c                                    vitalgate.Certificate
		notBefore, notAfter, issued, revoked sql.NullInt64
	)
	err := db.queryRow(ctx, selectCertSQL, serial).Scan(&c.Serial, &c.DeviceID,
		&notBefore, &notAfter, &issued, &revoked)
	if err != nil {
		return vitalgate.Certificate{}, mapError(err, "certificate")
	}
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = goTime(notBefore), goTime(notAfter), goTime(issued), goTime(revoked)
	return c, nil
}

// RevokeDevice marks the device revoked and every one of its certificates not yet revoked
// revoked at the given time, and appends the audit entries, in one transaction. Returns
// ENOTFOUND, or EINVALID for an empty audit entry.
func (db *DB) RevokeDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	at = db.orNow(at)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		err := oneDevice(tx.ExecContext(ctx, revokeDeviceSQL, string(vitalgate.DeviceRevoked), dbTime(at), deviceID))
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, revokeCertsSQL, dbTime(at), deviceID, dbTime(at)); err != nil {
			return mapError(err, "certificate")
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}
