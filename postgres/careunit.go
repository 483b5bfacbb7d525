package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertUnitSQL      = `INSERT INTO care_units (site, id, name, created_at) VALUES ($1, $2, $3, $4)`
	selectUnitsSQL     = `SELECT site, id, name, created_at FROM care_units WHERE site = $1 ORDER BY id`
	siteExistsSQL      = `SELECT 1 FROM sites WHERE id = $1`
	unitExistsSQL      = `SELECT 1 FROM care_units WHERE site = $1 AND id = $2 FOR SHARE`
	deviceSiteSQL      = `SELECT site FROM devices WHERE id = $1 FOR UPDATE`
	setDeviceUnitSQL   = `INSERT INTO device_units (device_id, site, unit) VALUES ($1, $2, $3) ON CONFLICT (device_id) DO UPDATE SET site = excluded.site, unit = excluded.unit`
	clearDeviceUnitSQL = `DELETE FROM device_units WHERE device_id = $1`
	admitPatientSQL    = `INSERT INTO patient_units (site, patient_index, unit, admitted_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (site, patient_index) DO UPDATE SET unit = excluded.unit, admitted_at = excluded.admitted_at`
	dischargePatientSQL = `DELETE FROM patient_units WHERE site = $1 AND patient_index = $2`
	unitCheckSQL        = `SELECT d.unit, p.unit IS NOT NULL FROM device_units d
LEFT JOIN patient_units p ON p.site = $1 AND p.patient_index = $2 AND p.unit = d.unit AND p.site = d.site
WHERE d.device_id = $3`
)

// CreateUnit registers a care unit of a site and appends the audit entries, in one
// transaction. ECONFLICT if the site has a unit of that id, ENOTFOUND for an unknown site.
func (db *DB) CreateUnit(ctx context.Context, u vitalgate.CareUnit, audit ...[]byte) error {
	if err := vitalgate.CheckSiteID(u.Site); err != nil {
		return err
	}
	if err := vitalgate.CheckUnitID(u.ID); err != nil {
		return err
	}
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, siteExistsSQL, u.Site).Scan(new(int)); err != nil {
			return mapError(err, "site")
		}
		_, err := tx.Exec(ctx, insertUnitSQL, u.Site, u.ID, u.Name, dbTime(db.orNow(u.CreatedAt)))
		return mapError(err, "care unit")
	})
}

// Units returns the care units of site, ordered by id.
func (db *DB) Units(ctx context.Context, site string) ([]vitalgate.CareUnit, error) {
	rows, err := db.pool.Query(ctx, selectUnitsSQL, site)
	if err != nil {
		return nil, mapError(err, "care units")
	}
	defer rows.Close()
	out, err := rowiter.Collect(rows, func(s rowiter.Scanner) (vitalgate.CareUnit, error) {
		var u vitalgate.CareUnit
		var created *time.Time
		err := s.Scan(&u.Site, &u.ID, &u.Name, &created)
		u.CreatedAt = goTime(created)
		return u, err
	})
	return out, mapError(err, "care units")
}

// unitExists returns ENOTFOUND unless site has care unit id.
func unitExists(ctx context.Context, tx pgx.Tx, site, id string) error {
	err := tx.QueryRow(ctx, unitExistsSQL, site, id).Scan(new(int))
	if errors.Is(err, pgx.ErrNoRows) {
		return vitalgate.FieldErrorf(vitalgate.ENOTFOUND, "unit", "site %q has no care unit %q (vitalgate unit list)", site, id)
	}
	return mapError(err, "care unit")
}

// SetDeviceUnit places a device in a care unit of its site, or in none for an empty unit.
func (db *DB) SetDeviceUnit(ctx context.Context, deviceID, unit string, audit ...[]byte) error {
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		var site string
		if err := tx.QueryRow(ctx, deviceSiteSQL, deviceID).Scan(&site); err != nil {
			return mapError(err, "device")
		}
		if unit == "" {
			_, err := tx.Exec(ctx, clearDeviceUnitSQL, deviceID)
			return mapError(err, "device unit")
		}
		if err := unitExists(ctx, tx, site, unit); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, setDeviceUnitSQL, deviceID, site, unit)
		return mapError(err, "device unit")
	})
}

// AdmitPatient admits a patient of site to a care unit, replacing an earlier admission.
func (db *DB) AdmitPatient(ctx context.Context, site string, patientIndex []byte, unit string, at time.Time, audit ...[]byte) error {
	if len(patientIndex) == 0 {
		return vitalgate.Errorf(vitalgate.EINVALID, "an admission needs a patient")
	}
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		if err := unitExists(ctx, tx, site, unit); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, admitPatientSQL, site, patientIndex, unit, dbTime(db.orNow(at)))
		return mapError(err, "admission")
	})
}

// DischargePatient ends a patient's admission. ENOTFOUND when it is admitted nowhere.
func (db *DB) DischargePatient(ctx context.Context, site string, patientIndex []byte, audit ...[]byte) error {
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, dischargePatientSQL, site, patientIndex)
		if err != nil {
			return mapError(err, "admission")
		}
		if tag.RowsAffected() == 0 {
			return vitalgate.Errorf(vitalgate.ENOTFOUND, "the patient is admitted to no care unit")
		}
		return nil
	})
}

// UnitCheck returns the care unit of a device and whether the patient is admitted to it.
func (db *DB) UnitCheck(ctx context.Context, deviceID, site string, patientIndex []byte) (string, bool, error) {
	var unit string
	var admitted bool
	err := db.pool.QueryRow(ctx, unitCheckSQL, site, patientIndex, deviceID).Scan(&unit, &admitted)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, mapError(err, "device unit")
	}
	return unit, admitted, nil
}
