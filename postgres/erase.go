package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate"
)

const (
	createErasureSQL = `INSERT INTO erasure_requests (id, site, patient_index, reason, requested_by, requested_at)
VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`
	erasureSQL = `SELECT id, site, patient_index, reason, requested_by, requested_at, approved_by, approved_at
FROM erasure_requests WHERE id = $1`
	erasureLockSQL = erasureSQL + ` FOR UPDATE`
	putHoldSQL     = `INSERT INTO legal_holds (site, patient_index, reason, placed_by, placed_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (site, patient_index) DO NOTHING`
	releaseHoldSQL = `DELETE FROM legal_holds WHERE site = $1 AND patient_index = $2`
	holdSQL        = `SELECT site, patient_index, reason, placed_by, placed_at FROM legal_holds
WHERE site = $1 AND patient_index = $2`
	holdLockSQL         = holdSQL + ` FOR SHARE`
	approveSQL          = `UPDATE erasure_requests SET approved_by = $1, approved_at = $2 WHERE id = $3 AND approved_by = ''`
	eraseKeySQL         = `DELETE FROM data_keys WHERE site = $1 AND patient_index = $2`
	eraseCodesSQL       = `DELETE FROM resource_codes c USING resources r WHERE r.type = c.type AND r.id = c.id AND r.site = $1 AND r.patient_index = $2`
	eraseIdentsSQL      = `DELETE FROM resource_identifiers WHERE site = $1 AND patient_index = $2`
	eraseIdentsOfSQL    = `DELETE FROM resource_identifiers i USING resources r WHERE r.type = i.type AND r.id = i.id AND r.site = $1 AND r.patient_index = $2`
	eraseResourcesSQL   = `DELETE FROM resources WHERE site = $1 AND patient_index = $2`
	eraseAssignmentsSQL = `DELETE FROM device_assignments a USING devices d WHERE d.id = a.device_id AND d.site = $1 AND a.patient_index = $2`
	eraseDevicesSQL     = `UPDATE devices SET patient_index = NULL, patient_sealed = NULL WHERE site = $1 AND patient_index = $2`
	eraseCareTeamsSQL   = `DELETE FROM client_patients p USING clients c WHERE c.id = p.client_id AND c.site = $1 AND p.patient_index = $2`
	eraseAdmissionSQL   = `DELETE FROM patient_units WHERE site = $1 AND patient_index = $2`
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
	tag, err := db.pool.Exec(ctx, createErasureSQL, r.ID, r.Site, idx, r.Reason, r.RequestedBy, dbTime(db.orNow(r.RequestedAt)))
	if err != nil {
		return mapError(err, "erasure request")
	}
	if tag.RowsAffected() == 0 {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "erasure request %q exists", r.ID)
	}
	return nil
}

// ErasureRequest returns one erasure request. ENOTFOUND.
func (db *DB) ErasureRequest(ctx context.Context, id string) (vitalgate.ErasureRequest, error) {
	return scanErasure(db.pool.QueryRow(ctx, erasureSQL, id))
}

func scanErasure(row pgx.Row) (vitalgate.ErasureRequest, error) {
	var r vitalgate.ErasureRequest
	var appr *time.Time
	if err := row.Scan(&r.ID, &r.Site, &r.PatientIndex, &r.Reason, &r.RequestedBy, &r.RequestedAt, &r.ApprovedBy, &appr); err != nil {
		return r, mapError(err, "erasure request")
	}
	r.RequestedAt = r.RequestedAt.UTC()
	if appr != nil {
		r.ApprovedAt = appr.UTC()
	}
	return r, nil
}

// PutLegalHold places a legal hold on a patient. ECONFLICT if one is in place.
func (db *DB) PutLegalHold(ctx context.Context, h vitalgate.LegalHold) error {
	if h.Site == "" || len(h.PatientIndex) == 0 || h.PlacedBy == "" {
		return vitalgate.Errorf(vitalgate.EINVALID, "a legal hold needs a site, a patient and who places it")
	}
	tag, err := db.pool.Exec(ctx, putHoldSQL, h.Site, h.PatientIndex, h.Reason, h.PlacedBy, dbTime(db.orNow(h.PlacedAt)))
	if err != nil {
		return mapError(err, "legal hold")
	}
	if tag.RowsAffected() == 0 {
		return vitalgate.Errorf(vitalgate.ECONFLICT, "a legal hold is in place on this patient")
	}
	return nil
}

// ReleaseLegalHold removes the legal hold on a patient. ENOTFOUND if none.
func (db *DB) ReleaseLegalHold(ctx context.Context, site string, patientIndex []byte) error {
	tag, err := db.pool.Exec(ctx, releaseHoldSQL, site, patientIndex)
	if err != nil {
		return mapError(err, "legal hold")
	}
	if tag.RowsAffected() == 0 {
		return vitalgate.Errorf(vitalgate.ENOTFOUND, "no legal hold on this patient")
	}
	return nil
}

// LegalHold returns the legal hold on a patient. ENOTFOUND.
func (db *DB) LegalHold(ctx context.Context, site string, patientIndex []byte) (vitalgate.LegalHold, error) {
	var h vitalgate.LegalHold
	if err := db.pool.QueryRow(ctx, holdSQL, site, patientIndex).Scan(&h.Site, &h.PatientIndex, &h.Reason, &h.PlacedBy, &h.PlacedAt); err != nil {
		return h, mapError(err, "legal hold")
	}
	h.PlacedAt = h.PlacedAt.UTC()
	return h, nil
}

// ErasePatient approves erasure request id and deletes the patient's data in the same
// transaction (see vitalgate.ErasureStore). The request row is locked (FOR UPDATE) and the
// hold row read FOR SHARE, so a concurrent approval waits and a concurrent hold is seen.
func (db *DB) ErasePatient(ctx context.Context, id, approvedBy string, at time.Time, audit ...[]byte) (vitalgate.Erased, error) {
	var out vitalgate.Erased
	if approvedBy == "" {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "an erasure needs an approver")
	}
	err := db.inTx(ctx, audit, func(tx pgx.Tx) error {
		r, err := scanErasure(tx.QueryRow(ctx, erasureLockSQL, id))
		if err != nil {
			return err
		}
		if err := r.CheckApproval(approvedBy, false); err != nil {
			return err
		}
		var h vitalgate.LegalHold
		err = tx.QueryRow(ctx, holdLockSQL, r.Site, r.PatientIndex).Scan(&h.Site, &h.PatientIndex, &h.Reason, &h.PlacedBy, &h.PlacedAt)
		if err == nil {
			return vitalgate.Errorf(vitalgate.ECONFLICT, "a legal hold is in place on this patient: release it first")
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return mapError(err, "legal hold")
		}
		if _, err := tx.Exec(ctx, approveSQL, approvedBy, dbTime(db.orNow(at)), id); err != nil {
			return mapError(err, "approve erasure")
		}
		out, err = deletePatientTx(ctx, tx, r.Site, r.PatientIndex)
		return err
	})
	if err != nil {
		return vitalgate.Erased{}, err
	}
	return out, nil
}

// kekFenceLock is the advisory lock key that serializes storing a data key
// (PutDataKeyUnder, shared) with retiring key-encryption keys (RetireKEKs, exclusive).
const kekFenceLock = 0x76676b656b66 // "vgkekf"

const (
	kekFenceSharedSQL = `SELECT pg_advisory_xact_lock_shared($1)`
	kekFenceSQL       = `SELECT pg_advisory_xact_lock($1)`
	retiredKEKSQL     = `SELECT EXISTS (SELECT 1 FROM retired_keks WHERE keyring = $1 AND kek = $2)`
	retireKEKSQL      = `INSERT INTO retired_keks (keyring, kek, retired_at) SELECT $1, k, $3 FROM unnest($2::text[]) AS k
ON CONFLICT (keyring, kek) DO NOTHING`
	retiredKEKsSQL = `SELECT keyring, kek, retired_at FROM retired_keks ORDER BY keyring, kek LIMIT 100001`
)

// PutDataKeyUnder is PutDataKey for a key wrapped under KEK kek of keyring, refused with
// ECONFLICT when that KEK is retired. It holds a shared advisory lock for its transaction,
// which RetireKEKs takes exclusively: a key stored here is committed before a retirement
// commits, so the rewrap that follows the retirement sees it, and a call that starts after
// the retirement sees the retirement (READ COMMITTED: its check reads after the lock).
func (db *DB) PutDataKeyUnder(ctx context.Context, k vitalgate.DataKey, keyring, kek string) (vitalgate.DataKey, error) {
	if err := vitalgate.CheckDataKey(k); err != nil {
		return vitalgate.DataKey{}, err
	}
	var stored vitalgate.DataKey
	err := db.inTx(ctx, nil, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, kekFenceSharedSQL, int64(kekFenceLock)); err != nil {
			return mapError(err, "data key")
		}
		var retired bool
		if err := tx.QueryRow(ctx, retiredKEKSQL, keyring, kek).Scan(&retired); err != nil {
			return mapError(err, "retired key-encryption keys")
		}
		if retired {
			return vitalgate.Errorf(vitalgate.ECONFLICT, "key-encryption key %s is retired: wrap the data key under the current one", kek)
		}
		if _, err := tx.Exec(ctx, insertDataKeySQL, k.PatientIndex, k.Wrapped, dbTime(db.orNow(k.CreatedAt)), vitalgate.StoredSite(k.Site)); err != nil {
			return mapError(err, "data key")
		}
		var err error
		stored, err = scanDataKey(tx.QueryRow(ctx, selectDataKeySQL, k.PatientIndex))
		return mapError(err, "data key")
	})
	if err != nil {
		return vitalgate.DataKey{}, err
	}
	return stored, nil
}

// RetireKEKs records the KEKs ids of keyring as retired, under the exclusive advisory lock
// that PutDataKeyUnder shares (so it waits for keys being stored to commit).
func (db *DB) RetireKEKs(ctx context.Context, keyring string, ids []string, at time.Time) error {
	if len(ids) == 0 || len(ids) > 1000 {
		return vitalgate.Errorf(vitalgate.EINVALID, "retire between 1 and 1000 key-encryption keys at once")
	}
	for _, id := range ids {
		if id == "" {
			return vitalgate.Errorf(vitalgate.EINVALID, "a retired key-encryption key needs its id")
		}
	}
	return db.inTx(ctx, nil, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, kekFenceSQL, int64(kekFenceLock)); err != nil {
			return mapError(err, "retire key-encryption key")
		}
		_, err := tx.Exec(ctx, retireKEKSQL, keyring, ids, db.orNow(at).UTC())
		return mapError(err, "retire key-encryption key")
	})
}

// RetiredKEKs returns every retired KEK, by keyring and id.
func (db *DB) RetiredKEKs(ctx context.Context) ([]vitalgate.RetiredKEK, error) {
	rows, err := db.pool.Query(ctx, retiredKEKsSQL)
	if err != nil {
		return nil, mapError(err, "retired key-encryption keys")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (vitalgate.RetiredKEK, error) {
		var r vitalgate.RetiredKEK
		err := row.Scan(&r.Keyring, &r.KEK, &r.RetiredAt)
		r.RetiredAt = r.RetiredAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, mapError(err, "retired key-encryption keys")
	}
	if len(out) > 100000 {
		return nil, vitalgate.Errorf(vitalgate.EINTERNAL, "more than 100000 retired key-encryption keys")
	}
	return out, nil
}

const (
	eraseSiteKeysSQL        = `DELETE FROM data_keys WHERE site = $1 RETURNING patient_index`
	eraseSiteCodesSQL       = `DELETE FROM resource_codes c USING resources r WHERE r.type = c.type AND r.id = c.id AND r.site = $1`
	eraseSiteIdentsOfSQL    = `DELETE FROM resource_identifiers i USING resources r WHERE r.type = i.type AND r.id = i.id AND r.site = $1`
	eraseSiteIdentsSQL      = `DELETE FROM resource_identifiers WHERE site = $1`
	eraseSiteResourcesSQL   = `DELETE FROM resources WHERE site = $1`
	eraseSiteAssignmentsSQL = `DELETE FROM device_assignments a USING devices d WHERE d.id = a.device_id AND d.site = $1`
	eraseSiteCertsSQL       = `UPDATE certificates c SET revoked_at = $2 FROM devices d
WHERE d.id = c.device_id AND d.site = $1 AND (c.revoked_at IS NULL OR c.revoked_at > $2)`
	eraseSiteDevicesSQL = `UPDATE devices SET status = 'revoked', patient_index = NULL, patient_sealed = NULL,
enroll_secret_hash = '', enroll_expires_at = NULL, updated_at = $2 WHERE site = $1`
	eraseSiteCareTeamsSQL   = `DELETE FROM client_patients p USING clients c WHERE c.id = p.client_id AND c.site = $1`
	eraseSiteClientsSQL     = `UPDATE clients SET disabled = true WHERE site = $1`
	eraseSiteSQL            = `UPDATE sites SET erased_at = $2 WHERE id = $1 AND erased_at IS NULL`
	eraseSiteAdmissionsSQL  = `DELETE FROM patient_units WHERE site = $1`
	eraseSiteDeviceUnitsSQL = `DELETE FROM device_units WHERE site = $1`
)

// EraseSite approves site-erasure request id and erases the whole site in the same
// transaction (see vitalgate.ErasureStore).
func (db *DB) EraseSite(ctx context.Context, id, approvedBy string, at time.Time, audit ...[]byte) (vitalgate.Erased, error) {
	var out vitalgate.Erased
	if approvedBy == "" {
		return out, vitalgate.Errorf(vitalgate.EINVALID, "an erasure needs an approver")
	}
	now := dbTime(db.orNow(at))
	err := db.inTx(ctx, audit, func(tx pgx.Tx) error {
		r, err := scanErasure(tx.QueryRow(ctx, erasureLockSQL, id))
		if err != nil {
			return err
		}
		if err := r.CheckApproval(approvedBy, true); err != nil {
			return err
		}
		if err := db.ApproveSiteErasureTx(ctx, pgConn{tx}, id, r.Site, approvedBy, now); err != nil {
			return err
		}
		exec := func(q string, args ...any) (int, error) {
			tag, err := tx.Exec(ctx, q, args...) // assurance:sql-ok q is one of the eraseSite*SQL constants at every call below
			if err != nil {
				return 0, mapError(err, "erase site")
			}
			return int(tag.RowsAffected()), nil
		}
		var errs [13]error
		_, errs[11] = exec(eraseSiteAdmissionsSQL, r.Site)
		_, errs[12] = exec(eraseSiteDeviceUnitsSQL, r.Site)
		rows, err := tx.Query(ctx, eraseSiteKeysSQL, r.Site)
		if err != nil {
			return mapError(err, "erase site")
		}
		out.PatientIndexes, errs[0] = pgx.CollectRows(rows, pgx.RowTo[[]byte])
		out.DataKeys = len(out.PatientIndexes)
		_, errs[1] = exec(eraseSiteCodesSQL, r.Site)
		_, errs[2] = exec(eraseSiteIdentsOfSQL, r.Site)
		_, errs[3] = exec(eraseSiteIdentsSQL, r.Site)
		out.Resources, errs[4] = exec(eraseSiteResourcesSQL, r.Site)
		out.Assignments, errs[5] = exec(eraseSiteAssignmentsSQL, r.Site)
		_, errs[6] = exec(eraseSiteCertsSQL, r.Site, now)
		out.Devices, errs[7] = exec(eraseSiteDevicesSQL, r.Site, now)
		_, errs[8] = exec(eraseSiteCareTeamsSQL, r.Site)
		out.Clients, errs[9] = exec(eraseSiteClientsSQL, r.Site)
		_, errs[10] = exec(eraseSiteSQL, r.Site, now)
		return errors.Join(errs[:]...)
	})
	if err != nil {
		return vitalgate.Erased{}, err
	}
	return out, nil
}

// deletePatientTx deletes, in tx, a patient's data key, resources with their code and
// identifier rows, device assignments, device links, care-team rows and admission: what
// an approved erasure (ErasePatient) and a replayed one (ShredPatient) both delete.
func deletePatientTx(ctx context.Context, tx pgx.Tx, site string, idx []byte) (vitalgate.Erased, error) {
	var out vitalgate.Erased
	exec := func(q string) (int, error) {
		tag, err := tx.Exec(ctx, q, site, idx) // assurance:sql-ok q is one of the erase*SQL constants at every call below
		if err != nil {
			return 0, mapError(err, "erase patient")
		}
		return int(tag.RowsAffected()), nil
	}
	var errs [9]error
	out.DataKeys, errs[0] = exec(eraseKeySQL)
	_, errs[1] = exec(eraseCodesSQL)
	_, errs[2] = exec(eraseIdentsOfSQL)
	_, errs[3] = exec(eraseIdentsSQL)
	out.Resources, errs[4] = exec(eraseResourcesSQL)
	out.Assignments, errs[5] = exec(eraseAssignmentsSQL)
	_, errs[6] = exec(eraseDevicesSQL)
	_, errs[7] = exec(eraseCareTeamsSQL)
	_, errs[8] = exec(eraseAdmissionSQL)
	return out, errors.Join(errs[:]...)
}
