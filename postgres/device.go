package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	deviceColumns = `SELECT id, model, status, patient_index, patient_sealed, created_at, updated_at,
	enroll_secret_hash, enroll_expires_at, site FROM devices`

	selectDeviceSQL  = deviceColumns + ` WHERE id = $1`
	selectDevicesSQL = deviceColumns + ` ORDER BY id`

	insertDeviceSQL = `INSERT INTO devices (id, model, status, patient_index, patient_sealed,
	created_at, updated_at, enroll_secret_hash, enroll_expires_at, site) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`

	deviceExistsSQL = `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1)`

	// consumeSecretSQL matches only the current, unused hash: of concurrent callers on any
	// node, the first to lock the row changes it, and the others, re-checking the condition
	// once it commits, match nothing.
	consumeSecretSQL = `UPDATE devices SET enroll_secret_hash = '', updated_at = $1
	WHERE id = $2 AND enroll_secret_hash = $3 AND enroll_secret_hash <> ''`

	setSecretSQL = `UPDATE devices SET enroll_secret_hash = $1, enroll_expires_at = $2, updated_at = $3
	WHERE id = $4`

	assignPatientSQL = `UPDATE devices SET patient_index = $1, patient_sealed = $2, updated_at = $3
	WHERE id = $4`

	revokeDeviceSQL = `UPDATE devices SET status = $1, updated_at = $2 WHERE id = $3`

	revokeCertsSQL = `UPDATE certificates SET revoked_at = $1
	WHERE device_id = $2 AND (revoked_at IS NULL OR revoked_at > $1)`

	insertCertSQL = `INSERT INTO certificates (serial, device_id, not_before, not_after, issued_at,
	revoked_at) VALUES ($1, $2, $3, $4, $5, $6)`

	selectCertSQL = `SELECT serial, device_id, not_before, not_after, issued_at, revoked_at
	FROM certificates WHERE serial = $1`

	// renewOldCertSQL ends the replaced certificate at the end of the overlap, unless it
	// ends earlier already.
	renewOldCertSQL = `UPDATE certificates SET revoked_at = $1
	WHERE serial = $2 AND device_id = $3 AND (revoked_at IS NULL OR revoked_at > $1)`

	certOfDeviceSQL = `SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = $1 AND device_id = $2)`

	assignmentColumns = `SELECT device_id, valid_from, valid_to, patient_index, patient_sealed
	FROM device_assignments`

	// assignmentAtSQL seeks the primary key (device_id, valid_from) backwards: one row.
	assignmentAtSQL = assignmentColumns + ` WHERE device_id = $1 AND valid_from <= $2
	ORDER BY valid_from DESC LIMIT 1`

	assignmentsSQL = assignmentColumns + ` WHERE device_id = $1 ORDER BY valid_from DESC LIMIT $2`

	latestAssignmentStartSQL = `SELECT valid_from, valid_to IS NULL FROM device_assignments
	WHERE device_id = $1 ORDER BY valid_from DESC LIMIT 1`

	dropAssignmentSQL = `DELETE FROM device_assignments WHERE device_id = $1 AND valid_from = $2` // #nosec G101 -- SQL text, not a credential

	closeAssignmentSQL = `UPDATE device_assignments SET valid_to = $1 WHERE device_id = $2 AND valid_to IS NULL`

	openAssignmentSQL = `INSERT INTO device_assignments (device_id, valid_from, valid_to, patient_index,
	patient_sealed) VALUES ($1, $2, NULL, $3, $4)`
)

// CreateDevice registers a new device and appends the audit entries in the same transaction.
// An empty Status is stored as DeviceActive; zero CreatedAt and UpdatedAt are set to the
// current time. Returns ECONFLICT if the id exists.
func (db *DB) CreateDevice(ctx context.Context, d vitalgate.Device, audit ...[]byte) error {
	if d.ID == "" {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Device.id", "device id is empty")
	}
	d.Site = vitalgate.StoredSite(d.Site)
	if err := vitalgate.CheckSiteID(d.Site); err != nil {
		return err
	}
	if d.Status == "" {
		d.Status = vitalgate.DeviceActive
	}
	d.CreatedAt = db.orNow(d.CreatedAt)
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, insertDeviceSQL, d.ID, d.Model, string(d.Status),
			dbBlob(d.PatientIndex), dbBlob(d.PatientSealed), dbTime(d.CreatedAt), dbTime(d.UpdatedAt),
			d.EnrollSecretHash, dbTime(d.EnrollExpiresAt), d.Site)
		if err != nil || len(d.PatientIndex) == 0 {
			return mapError(err, "device")
		}
		_, err = tx.Exec(ctx, openAssignmentSQL, d.ID, dbTime(d.CreatedAt), d.PatientIndex, dbBlob(d.PatientSealed))
		return mapError(err, "assignment")
	})
}

// scanDevice reads a devices row selected with deviceColumns.
func scanDevice(row rowiter.Scanner) (vitalgate.Device, error) {
	var (
		d                           vitalgate.Device
		status                      string
		created, updated, expiresAt *time.Time
	)
	err := row.Scan(&d.ID, &d.Model, &status, &d.PatientIndex, &d.PatientSealed, &created, &updated,
		&d.EnrollSecretHash, &expiresAt, &d.Site)
	d.Status = vitalgate.DeviceStatus(status)
	d.CreatedAt, d.UpdatedAt, d.EnrollExpiresAt = goTime(created), goTime(updated), goTime(expiresAt)
	return d, err
}

// Device returns a device by id. Returns ENOTFOUND.
func (db *DB) Device(ctx context.Context, id string) (vitalgate.Device, error) {
	d, err := scanDevice(db.pool.QueryRow(ctx, selectDeviceSQL, id))
	if err != nil {
		return vitalgate.Device{}, mapError(err, "device")
	}
	return d, nil
}

// Devices lists all devices ordered by id.
func (db *DB) Devices(ctx context.Context) ([]vitalgate.Device, error) {
	return collect(ctx, db, "devices", scanDevice, selectDevicesSQL)
}

// deviceMissing returns ENOTFOUND if the device does not exist, nil if it does.
func deviceMissing(ctx context.Context, q querier, id string) error {
	var exists bool
	if err := q.QueryRow(ctx, deviceExistsSQL, id).Scan(&exists); err != nil {
		return mapError(err, "device")
	}
	if !exists {
		return notFound("device")
	}
	return nil
}

// ConsumeEnrollSecret marks the device's enrollment secret used, records cert and appends the
// audit entries, in one transaction: the secret is consumed only if the certificate is
// recorded. The update is a single conditional UPDATE on the current, unused hash, so of
// concurrent callers (on this or another node) exactly one succeeds. An empty cert.DeviceID
// means deviceID. Returns ECONFLICT if the secret was used or replaced or the serial exists,
// ENOTFOUND if the device does not exist.
func (db *DB) ConsumeEnrollSecret(ctx context.Context, deviceID, secretHash string, cert vitalgate.Certificate, audit ...[]byte) error {
	if cert.DeviceID == "" {
		cert.DeviceID = deviceID
	}
	if cert.DeviceID != deviceID {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "Certificate.deviceID", "certificate is for another device")
	}
	cert.IssuedAt = db.orNow(cert.IssuedAt)
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, consumeSecretSQL, dbTime(db.opts.Now()), deviceID, secretHash)
		if err != nil {
			return mapError(err, "device")
		}
		if tag.RowsAffected() != 1 {
			if err := deviceMissing(ctx, tx, deviceID); err != nil {
				return err
			}
			return vitalgate.Errorf(vitalgate.ECONFLICT, "enrollment secret already used or replaced")
		}
		return insertCert(ctx, tx, cert)
	})
}

// insertCert records c: ECONFLICT if the serial exists, ENOTFOUND if the device does not.
func insertCert(ctx context.Context, tx pgx.Tx, c vitalgate.Certificate) error {
	_, err := tx.Exec(ctx, insertCertSQL, c.Serial, c.DeviceID, dbTime(c.NotBefore),
		dbTime(c.NotAfter), dbTime(c.IssuedAt), dbTime(c.RevokedAt))
	err = mapError(err, "certificate")
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return &vitalgate.Error{Code: vitalgate.ENOTFOUND, Message: "device not found", Err: err}
	}
	return err
}

// SetEnrollSecret replaces the device's enrollment secret hash and expiry and appends the
// audit entries in the same transaction. ENOTFOUND.
func (db *DB) SetEnrollSecret(ctx context.Context, deviceID, secretHash string, expiresAt time.Time, audit ...[]byte) error {
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		return oneDevice(tx.Exec(ctx, setSecretSQL, secretHash, dbTime(expiresAt), dbTime(db.opts.Now()), deviceID))
	})
}

// AssignPatient changes the device's patient, sets UpdatedAt to at (now if zero), closes the
// current assignment at at and opens the new one from at (none for an empty patientIndex),
// and appends the audit entries, in one transaction. A current assignment that starts at at
// itself lasted no time and is replaced. The device row's update comes first and
// locks it, so concurrent reassignments of one device (on any node) take turns. Returns
// ENOTFOUND, or ECONFLICT when at is before the start of the device's latest assignment.
func (db *DB) AssignPatient(ctx context.Context, deviceID string, patientIndex, patientSealed []byte, at time.Time, audit ...[]byte) error {
	at = db.orNow(at)
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		if err := oneDevice(tx.Exec(ctx, assignPatientSQL, dbBlob(patientIndex), dbBlob(patientSealed),
			dbTime(at), deviceID)); err != nil {
			return err
		}
		var (
			latest  time.Time
			current bool
		)
		err := tx.QueryRow(ctx, latestAssignmentStartSQL, deviceID).Scan(&latest, &current)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return mapError(err, "assignment")
		}
		found, t := err == nil, at.UTC().Truncate(time.Microsecond)
		switch {
		case found && t.Equal(latest) && current:
			// A reassignment in the same instant replaces an assignment that lasted no time.
			if _, err := tx.Exec(ctx, dropAssignmentSQL, deviceID, dbTime(at)); err != nil {
				return mapError(err, "assignment")
			}
		case found && !t.After(latest):
			return vitalgate.Errorf(vitalgate.ECONFLICT, "the device's latest assignment starts after this time; reassign later")
		default:
			if _, err := tx.Exec(ctx, closeAssignmentSQL, dbTime(at), deviceID); err != nil {
				return mapError(err, "assignment")
			}
		}
		if len(patientIndex) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, openAssignmentSQL, deviceID, dbTime(at), patientIndex, dbBlob(patientSealed))
		return mapError(err, "assignment")
	})
}

// scanAssignment reads a device_assignments row selected with assignmentColumns.
func scanAssignment(row rowiter.Scanner) (vitalgate.Assignment, error) {
	var (
		a        vitalgate.Assignment
		from, to *time.Time
	)
	err := row.Scan(&a.DeviceID, &from, &to, &a.PatientIndex, &a.PatientSealed)
	a.From, a.To = goTime(from), goTime(to)
	return a, err
}

// AssignmentAt returns the device's assignment that covers t: the one with the latest start
// at or before t (one seek of the primary key), if it has not ended by t. Returns ENOTFOUND
// when none covers t.
func (db *DB) AssignmentAt(ctx context.Context, deviceID string, t time.Time) (vitalgate.Assignment, error) {
	a, err := scanAssignment(db.pool.QueryRow(ctx, assignmentAtSQL, deviceID, dbTime(t)))
	if err != nil {
		return vitalgate.Assignment{}, mapError(err, "assignment")
	}
	if !a.Covers(t.Truncate(time.Microsecond)) {
		return vitalgate.Assignment{}, notFound("assignment")
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
func oneDevice(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return mapError(err, "device")
	}
	if tag.RowsAffected() == 0 {
		return notFound("device")
	}
	return nil
}

// AddCertificate records a newly issued certificate and appends the audit entries in the same
// transaction. A zero IssuedAt is set to the current time. ENOTFOUND for an unknown device
// (the foreign key), ECONFLICT if the serial exists.
func (db *DB) AddCertificate(ctx context.Context, cert vitalgate.Certificate, audit ...[]byte) error {
	cert.IssuedAt = db.orNow(cert.IssuedAt)
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		return insertCert(ctx, tx, cert)
	})
}

// RenewCertificate records cert and ends the device's certificate oldSerial at oldUntil
// (now if zero; unless it ends earlier already), and appends the audit entries, in one
// transaction. A zero IssuedAt is set to the current time. Returns ENOTFOUND for an unknown
// device or an oldSerial that is not the device's, ECONFLICT if cert's serial exists.
func (db *DB) RenewCertificate(ctx context.Context, cert vitalgate.Certificate, oldSerial string, oldUntil time.Time, audit ...[]byte) error {
	cert.IssuedAt = db.orNow(cert.IssuedAt)
	oldUntil = db.orNow(oldUntil)
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		if err := deviceMissing(ctx, tx, cert.DeviceID); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, certOfDeviceSQL, oldSerial, cert.DeviceID).Scan(&exists); err != nil {
			return mapError(err, "certificate")
		}
		if !exists {
			return notFound("certificate")
		}
		if err := insertCert(ctx, tx, cert); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, renewOldCertSQL, dbTime(oldUntil), oldSerial, cert.DeviceID)
		return mapError(err, "certificate")
	})
}

// Certificate returns a certificate by serial. Returns ENOTFOUND.
func (db *DB) Certificate(ctx context.Context, serial string) (vitalgate.Certificate, error) {
	var (
		c                                    vitalgate.Certificate
		notBefore, notAfter, issued, revoked *time.Time
	)
	err := db.pool.QueryRow(ctx, selectCertSQL, serial).Scan(&c.Serial, &c.DeviceID,
		&notBefore, &notAfter, &issued, &revoked)
	if err != nil {
		return vitalgate.Certificate{}, mapError(err, "certificate")
	}
	c.NotBefore, c.NotAfter, c.IssuedAt, c.RevokedAt = goTime(notBefore), goTime(notAfter), goTime(issued), goTime(revoked)
	return c, nil
}

// RevokeDevice marks the device revoked and every one of its certificates not yet revoked
// revoked at the given time (now if zero), and appends the audit entries, in one
// transaction. Returns ENOTFOUND.
func (db *DB) RevokeDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	at = db.orNow(at)
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		if err := oneDevice(tx.Exec(ctx, revokeDeviceSQL, string(vitalgate.DeviceRevoked), dbTime(at), deviceID)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, revokeCertsSQL, dbTime(at), deviceID)
		return mapError(err, "certificate")
	})
}
