package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/vitalgate/vitalgate"
)

const (
	createErasureSQL = `INSERT INTO erasure_requests (id, site, patient_index, reason, requested_by, requested_at)
VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`
	erasureSQL = `SELECT id, site, patient_index, reason, requested_by, requested_at, approved_by, approved_at
FROM erasure_requests WHERE id = ?`
	putHoldSQL = `INSERT INTO legal_holds (site, patient_index, reason, placed_by, placed_at)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, patient_index) DO NOTHING`
	releaseHoldSQL = `DELETE FROM legal_holds WHERE site = ? AND patient_index = ?`
	holdSQL        = `SELECT site, patient_index, reason, placed_by, placed_at FROM legal_holds
WHERE site = ? AND patient_index = ?`
	approveSQL     = `UPDATE erasure_requests SET approved_by = ?, approved_at = ? WHERE id = ? AND approved_by = ''`
	eraseKeySQL    = `DELETE FROM data_keys WHERE site = ? AND patient_index = ?`
	eraseCodesSQL  = `DELETE FROM resource_codes WHERE (type, id) IN (SELECT type, id FROM resources WHERE site = ? AND patient_index = ?)`
	eraseIdentsSQL = `DELETE FROM resource_identifiers WHERE (type, id) IN (SELECT type, id FROM resources WHERE site = ? AND patient_index = ?)
OR (site = ? AND patient_index = ?)`
	eraseResourcesSQL   = `DELETE FROM resources WHERE site = ? AND patient_index = ?`
	eraseAssignmentsSQL = `DELETE FROM device_assignments WHERE patient_index = ?
AND device_id IN (SELECT id FROM devices WHERE site = ?)`
	eraseDevicesSQL   = `UPDATE devices SET patient_index = NULL, patient_sealed = NULL WHERE site = ? AND patient_index = ?`
	eraseCareTeamsSQL = `DELETE FROM client_patients WHERE patient_index = ?
AND client_id IN (SELECT id FROM clients WHERE site = ?)`
	eraseAdmissionSQL = `DELETE FROM patient_units WHERE site = ? AND patient_index = ?`
)

// CreateErasureRequest stores a new, unapproved erasure request. ECONFLICT if the id exists.
func (db *DB) CreateErasureRequest(ctx context.Context, r vitalgate.ErasureRequest) error {
	if r.ID == "" || r.Site == "" || r.RequestedBy == "" {
		return vitalgate.Errorf(vitalgate.EINVALID, "an erasure request needs an id, a site and a requester")
	}
	idx := r.PatientIndex
	if idx == nil {
		idx = []byte{} // a site erasure: an empty index, never NULL
	}
	res, err := db.w.ExecContext(ctx, createErasureSQL, r.ID, r.Site, idx, r.Reason, r.RequestedBy, db.orNow(r.RequestedAt).UnixMicro())
	if err != nil {
		return mapError(err, "erasure request")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "erasure request %q exists", r.ID)
	}
	return nil
}

// ErasureRequest returns one erasure request. ENOTFOUND.
func (db *DB) ErasureRequest(ctx context.Context, id string) (vitalgate.ErasureRequest, error) {
	return scanErasure(db.w.QueryRowContext(ctx, erasureSQL, id))
}

func scanErasure(row *sql.Row) (vitalgate.ErasureRequest, error) {
	var r vitalgate.ErasureRequest
	var req, appr int64
	if err := row.Scan(&r.ID, &r.Site, &r.PatientIndex, &r.Reason, &r.RequestedBy, &req, &r.ApprovedBy, &appr); err != nil {
		return r, mapError(err, "erasure request")
	}
	r.RequestedAt = time.UnixMicro(req).UTC()
	if appr != 0 {
		r.ApprovedAt = time.UnixMicro(appr).UTC()
	}
	return r, nil
}

// PutLegalHold places a legal hold on a patient. ECONFLICT if one is in place.
func (db *DB) PutLegalHold(ctx context.Context, h vitalgate.LegalHold) error {
	if h.Site == "" || len(h.PatientIndex) == 0 || h.PlacedBy == "" {
		return vitalgate.Errorf(vitalgate.EINVALID, "a legal hold needs a site, a patient and who places it")
	}
	res, err := db.w.ExecContext(ctx, putHoldSQL, h.Site, h.PatientIndex, h.Reason, h.PlacedBy, db.orNow(h.PlacedAt).UnixMicro())
	if err != nil {
		return mapError(err, "legal hold")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "a legal hold is in place on this patient")
	}
	return nil
}

// ReleaseLegalHold removes the legal hold on a patient. ENOTFOUND if none.
func (db *DB) ReleaseLegalHold(ctx context.Context, site string, patientIndex []byte) error {
	res, err := db.w.ExecContext(ctx, releaseHoldSQL, site, patientIndex)
	if err != nil {
		return mapError(err, "legal hold")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no legal hold on this patient")
	}
	return nil
}

// LegalHold returns the legal hold on a patient. ENOTFOUND.
func (db *DB) LegalHold(ctx context.Context, site string, patientIndex []byte) (vitalgate.LegalHold, error) {
	var h vitalgate.LegalHold
	var at int64
	err := db.w.QueryRowContext(ctx, holdSQL, site, patientIndex).Scan(&h.Site, &h.PatientIndex, &h.Reason, &h.PlacedBy, &at)
	if err != nil {
		return h, mapError(err, "legal hold")
	}
	h.PlacedAt = time.UnixMicro(at).UTC()
	return h, nil
}

// ErasePatient approves erasure request id and deletes the patient's data in the same
// transaction (see vitalgate.ErasureStore).
func (db *DB) ErasePatient(ctx context.Context, id, approvedBy string, at time.Time, audit ...[]byte) (vitalgate.Erased, error) {
	var out vitalgate.Erased
	if approvedBy == "" {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "an erasure needs an approver")
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var r vitalgate.ErasureRequest
		var req, appr int64
		if err := tx.QueryRowContext(ctx, erasureSQL, id).Scan(&r.ID, &r.Site, &r.PatientIndex, &r.Reason, &r.RequestedBy, &req, &r.ApprovedBy, &appr); err != nil {
			return mapError(err, "erasure request")
		}
		if err := r.CheckApproval(approvedBy, false); err != nil {
			return err
		}
		var one int
		err := tx.QueryRowContext(ctx, holdSQL, r.Site, r.PatientIndex).Scan(new(string), new([]byte), new(string), new(string), &one)
		if err == nil {
			return vitalgate.Errorf(vitalgate.ECONFLICT, "a legal hold is in place on this patient: release it first")
		} else if !errors.Is(err, sql.ErrNoRows) {
			return mapError(err, "legal hold")
		}
		if _, err := tx.ExecContext(ctx, approveSQL, approvedBy, db.orNow(at).UnixMicro(), id); err != nil {
			return mapError(err, "approve erasure")
		}
		if out, err = deletePatientTx(ctx, tx, r.Site, r.PatientIndex); err != nil {
			return err
		}
		if len(audit) > 0 {
			return db.appendAuditTx(ctx, tx, audit)
		}
		return nil
	})
	if err != nil {
		return vitalgate.Erased{}, err
	}
	return out, nil
}

const (
	eraseSiteKeysSQL   = `DELETE FROM data_keys WHERE site = ? RETURNING patient_index`
	eraseSiteCodesSQL  = `DELETE FROM resource_codes WHERE (type, id) IN (SELECT type, id FROM resources WHERE site = ?)`
	eraseSiteIdentsSQL = `DELETE FROM resource_identifiers WHERE site = ?
OR (type, id) IN (SELECT type, id FROM resources WHERE site = ?)`
	eraseSiteResourcesSQL   = `DELETE FROM resources WHERE site = ?`
	eraseSiteAssignmentsSQL = `DELETE FROM device_assignments WHERE device_id IN (SELECT id FROM devices WHERE site = ?)`
	eraseSiteCertsSQL       = `UPDATE certificates SET revoked_at = ?
WHERE device_id IN (SELECT id FROM devices WHERE site = ?) AND (revoked_at IS NULL OR revoked_at > ?)`
	eraseSiteDevicesSQL = `UPDATE devices SET status = 'revoked', patient_index = NULL, patient_sealed = NULL,
enroll_secret_hash = '', enroll_expires_at = NULL, updated_at = ? WHERE site = ?`
	eraseSiteCareTeamsSQL   = `DELETE FROM client_patients WHERE client_id IN (SELECT id FROM clients WHERE site = ?)`
	eraseSiteClientsSQL     = `UPDATE clients SET disabled = 1 WHERE site = ?`
	eraseSiteSQL            = `UPDATE sites SET erased_at = ? WHERE id = ? AND erased_at IS NULL`
	eraseSiteAdmissionsSQL  = `DELETE FROM patient_units WHERE site = ?`
	eraseSiteDeviceUnitsSQL = `DELETE FROM device_units WHERE site = ?`
)

// EraseSite approves site-erasure request id and erases the whole site in the same
// transaction (see vitalgate.ErasureStore).
func (db *DB) EraseSite(ctx context.Context, id, approvedBy string, at time.Time, audit ...[]byte) (vitalgate.Erased, error) {
	var out vitalgate.Erased
	if approvedBy == "" {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "an erasure needs an approver")
	}
	now := db.orNow(at).UnixMicro()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var r vitalgate.ErasureRequest
		var req, appr int64
		if err := tx.QueryRowContext(ctx, erasureSQL, id).Scan(&r.ID, &r.Site, &r.PatientIndex, &r.Reason, &r.RequestedBy, &req, &r.ApprovedBy, &appr); err != nil {
			return mapError(err, "erasure request")
		}
		if err := r.CheckApproval(approvedBy, true); err != nil {
			return err
		}
		if err := db.ApproveSiteErasureTx(ctx, sqlConn{tx}, id, r.Site, approvedBy, now); err != nil {
			return err
		}
		exec := func(q string, args ...any) (int, error) {
			res, err := tx.ExecContext(ctx, q, args...) // assurance:sql-ok q is one of the eraseSite*SQL constants at every call below
			if err != nil {
				return 0, mapError(err, "erase site")
			}
			n, _ := res.RowsAffected()
			return int(n), nil
		}
		var errs [12]error
		_, errs[10] = exec(eraseSiteAdmissionsSQL, r.Site)
		_, errs[11] = exec(eraseSiteDeviceUnitsSQL, r.Site)
		out.PatientIndexes, errs[0] = deletedKeys(ctx, tx, eraseSiteKeysSQL, r.Site)
		out.DataKeys = len(out.PatientIndexes)
		_, errs[1] = exec(eraseSiteCodesSQL, r.Site)
		_, errs[2] = exec(eraseSiteIdentsSQL, r.Site, r.Site)
		out.Resources, errs[3] = exec(eraseSiteResourcesSQL, r.Site)
		out.Assignments, errs[4] = exec(eraseSiteAssignmentsSQL, r.Site)
		_, errs[5] = exec(eraseSiteCertsSQL, now, r.Site, now)
		out.Devices, errs[6] = exec(eraseSiteDevicesSQL, now, r.Site)
		_, errs[7] = exec(eraseSiteCareTeamsSQL, r.Site)
		out.Clients, errs[8] = exec(eraseSiteClientsSQL, r.Site)
		_, errs[9] = exec(eraseSiteSQL, now, r.Site)
		if err := errors.Join(errs[:]...); err != nil {
			return err
		}
		if len(audit) > 0 {
			return db.appendAuditTx(ctx, tx, audit)
		}
		return nil
	})
	if err != nil {
		return vitalgate.Erased{}, err
	}
	return out, nil
}

// deletedKeys runs a DELETE ... RETURNING patient_index and returns the indexes.
func deletedKeys(ctx context.Context, tx *sql.Tx, q string, args ...any) ([][]byte, error) {
	rows, err := tx.QueryContext(ctx, q, args...) // assurance:sql-ok q is eraseSiteKeysSQL
	if err != nil {
		return nil, mapError(err, "erase site")
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var idx []byte
		if err := rows.Scan(&idx); err != nil {
			return nil, mapError(err, "erase site")
		}
		out = append(out, idx)
	}
	return out, mapError(rows.Err(), "erase site")
}

// deletePatientTx deletes, in tx, a patient's data key, resources with their code and
// identifier rows, device assignments, device links, care-team rows and admission: what
// an approved erasure (ErasePatient) and a replayed one (ShredPatient) both delete.
func deletePatientTx(ctx context.Context, tx *sql.Tx, site string, idx []byte) (vitalgate.Erased, error) {
	var out vitalgate.Erased
	exec := func(q string, args ...any) (int, error) {
		res, err := tx.ExecContext(ctx, q, args...) // assurance:sql-ok q is one of the erase*SQL constants at every call below
		if err != nil {
			return 0, mapError(err, "erase patient")
		}
		n, _ := res.RowsAffected()
		return int(n), nil
	}
	var errs [8]error
	out.DataKeys, errs[0] = exec(eraseKeySQL, site, idx)
	_, errs[1] = exec(eraseCodesSQL, site, idx)
	_, errs[2] = exec(eraseIdentsSQL, site, idx, site, idx)
	out.Resources, errs[3] = exec(eraseResourcesSQL, site, idx)
	out.Assignments, errs[4] = exec(eraseAssignmentsSQL, idx, site)
	_, errs[5] = exec(eraseDevicesSQL, site, idx)
	_, errs[6] = exec(eraseCareTeamsSQL, idx, site)
	_, errs[7] = exec(eraseAdmissionSQL, site, idx)
	return out, errors.Join(errs[:]...)
}
