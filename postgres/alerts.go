package postgres

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

var (
	_ vitalgate.AlertStore      = (*DB)(nil)
	_ vitalgate.QuarantineStore = (*DB)(nil)
)

const (
	insertAlertSQL = `INSERT INTO alerts (id, rule, rules_version, severity, category, description, device_id, client_id,
		source, site, window_from, window_to, evidence_json, status, quarantined, created_at, updated_at, updated_by, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`
	alertColumns = `SELECT id, rule, rules_version, severity, category, description, device_id, client_id, source, site,
		window_from, window_to, evidence_json, status, quarantined, created_at, updated_at, updated_by, note FROM alerts`
	selectAlertSQL  = alertColumns + ` WHERE id = $1`
	selectAlertsSQL = alertColumns + ` WHERE ($1 = '' OR status = $1) AND ($2 = '' OR device_id = $2) AND ($3 = '' OR site = $3)
		ORDER BY created_at DESC, id DESC LIMIT $4`
	alertStatusSQL      = `UPDATE alerts SET status = $1, updated_by = $2, note = $3, updated_at = $4 WHERE id = $5 AND status = $6`
	alertExistsSQL      = `SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $1)`
	quarantineDeviceSQL = `UPDATE devices SET status = $1, enroll_secret_hash = '', enroll_expires_at = NULL, updated_at = $2
		WHERE id = $3 AND status = $4`
	releaseDeviceSQL = `UPDATE devices SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4`
)

// CreateAlert stores a new alert and appends the audit entries, in one transaction.
// ECONFLICT if its id exists.
func (db *DB) CreateAlert(ctx context.Context, a vitalgate.Alert, audit ...[]byte) error {
	ev, err := json.Marshal(a.Evidence)
	if err != nil {
		return vitalgate.Internal(err, "alert evidence")
	}
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, insertAlertSQL, a.ID, a.Rule, a.RulesVersion, a.Severity, a.Category, a.Description,
			a.Device, a.Client, a.Source, a.Site, dbTime(a.From), dbTime(a.To), string(ev), string(a.Status), a.Quarantined,
			dbTime(db.orNow(a.CreatedAt)), dbTime(db.orNow(a.UpdatedAt)), a.UpdatedBy, a.Note)
		return mapError(err, "alert")
	})
}

func scanAlert(s rowiter.Scanner) (vitalgate.Alert, error) {
	var (
		a                          vitalgate.Alert
		status, ev                 string
		from, to, created, updated *time.Time
	)
	if err := s.Scan(&a.ID, &a.Rule, &a.RulesVersion, &a.Severity, &a.Category, &a.Description, &a.Device, &a.Client,
		&a.Source, &a.Site, &from, &to, &ev, &status, &a.Quarantined, &created, &updated, &a.UpdatedBy, &a.Note); err != nil {
		return a, err
	}
	a.Status, a.From, a.To, a.CreatedAt, a.UpdatedAt = vitalgate.AlertStatus(status), goTime(from), goTime(to), goTime(created), goTime(updated)
	if err := json.Unmarshal([]byte(ev), &a.Evidence); err != nil {
		return a, vitalgate.Internal(err, "alert evidence")
	}
	return a, nil
}

// Alert returns one alert. ENOTFOUND.
func (db *DB) Alert(ctx context.Context, id string) (vitalgate.Alert, error) {
	a, err := scanAlert(db.pool.QueryRow(ctx, selectAlertSQL, id))
	return a, mapError(err, "alert")
}

// Alerts returns the alerts f selects, newest first.
func (db *DB) Alerts(ctx context.Context, f vitalgate.AlertFilter) ([]vitalgate.Alert, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	return collect(ctx, db, "alerts", scanAlert, selectAlertsSQL, string(f.Status), f.Device, f.Site, limit)
}

// SetAlertStatus moves an alert from status from to status to. ENOTFOUND, ECONFLICT.
func (db *DB) SetAlertStatus(ctx context.Context, id string, from, to vitalgate.AlertStatus, by, note string, at time.Time, audit ...[]byte) error {
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		return conditional(ctx, tx, "alert", alertExistsSQL, id,
			func() (pgconn.CommandTag, error) {
				return tx.Exec(ctx, alertStatusSQL, string(to), by, note, dbTime(db.orNow(at)), id, string(from))
			})
	})
}

// QuarantineDevice moves an active device to quarantined and voids its enrollment secret.
// ENOTFOUND, ECONFLICT when it is not active.
func (db *DB) QuarantineDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		return conditional(ctx, tx, "device", deviceExistsSQL, deviceID, func() (pgconn.CommandTag, error) {
			return tx.Exec(ctx, quarantineDeviceSQL, string(vitalgate.DeviceQuarantined), dbTime(db.orNow(at)), deviceID, string(vitalgate.DeviceActive))
		})
	})
}

// ReleaseDevice moves a quarantined device back to active. ENOTFOUND, ECONFLICT.
func (db *DB) ReleaseDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	return db.inTx(ctx, audit, func(tx pgx.Tx) error {
		return conditional(ctx, tx, "device", deviceExistsSQL, deviceID, func() (pgconn.CommandTag, error) {
			return tx.Exec(ctx, releaseDeviceSQL, string(vitalgate.DeviceActive), dbTime(db.orNow(at)), deviceID, string(vitalgate.DeviceQuarantined))
		})
	})
}

// conditional runs a conditional update: no row changed is ENOTFOUND when exists finds no
// row id, ECONFLICT otherwise.
func conditional(ctx context.Context, tx pgx.Tx, what, exists, id string, update func() (pgconn.CommandTag, error)) error {
	tag, err := update()
	if err != nil {
		return mapError(err, what)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var found bool
	// assurance:sql-ok exists is alertExistsSQL or deviceExistsSQL, constants
	if err := tx.QueryRow(ctx, exists, id).Scan(&found); err != nil {
		return mapError(err, what)
	}
	if !found {
		return notFound(what)
	}
	return vitalgate.Errorf(vitalgate.ECONFLICT, "the %s is not in the state this change starts from", what)
}
