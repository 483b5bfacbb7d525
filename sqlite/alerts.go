package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	alertColumns = `SELECT id, rule, rules_version, severity, category, description, device_id, client_id, source, site,
		window_from, window_to, evidence_json, status, quarantined, created_at, updated_at, updated_by, note FROM alerts`
	selectAlertSQL  = alertColumns + ` WHERE id = ?`
	selectAlertsSQL = alertColumns + ` WHERE (? = '' OR status = ?) AND (? = '' OR device_id = ?) AND (? = '' OR site = ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`
	alertStatusSQL      = `UPDATE alerts SET status = ?, updated_by = ?, note = ?, updated_at = ? WHERE id = ? AND status = ?`
	alertExistsSQL      = `SELECT 1 FROM alerts WHERE id = ?`
	quarantineDeviceSQL = `UPDATE devices SET status = ?, enroll_secret_hash = '', enroll_expires_at = NULL, updated_at = ?
		WHERE id = ? AND status = ?`
	releaseDeviceSQL = `UPDATE devices SET status = ?, updated_at = ? WHERE id = ? AND status = ?`
)

// CreateAlert stores a new alert and appends the audit entries, in one transaction.
// ECONFLICT if its id exists.
func (db *DB) CreateAlert(ctx context.Context, a vitalgate.Alert, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	ev, err := json.Marshal(a.Evidence)
	if err != nil {
		return vitalgate.Internal(err, "alert evidence")
	}
	created := db.orNow(a.CreatedAt)
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, insertAlertSQL, a.ID, a.Rule, a.RulesVersion, a.Severity, a.Category, a.Description,
			a.Device, a.Client, a.Source, a.Site, dbTime(a.From), dbTime(a.To), string(ev), string(a.Status), a.Quarantined,
			dbTime(created), dbTime(db.orNow(a.UpdatedAt)), a.UpdatedBy, a.Note); err != nil {
			return mapError(err, "alert")
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

func scanAlert(s rowiter.Scanner) (vitalgate.Alert, error) {
	var (
		a                          vitalgate.Alert
		status, ev                 string
		from, to, created, updated sql.NullInt64
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
	a, err := scanAlert(db.queryRow(ctx, selectAlertSQL, id))
	return a, mapError(err, "alert")
}

// Alerts returns the alerts f selects, newest first.
func (db *DB) Alerts(ctx context.Context, f vitalgate.AlertFilter) ([]vitalgate.Alert, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	st := string(f.Status)
	return collect(ctx, db, "alerts", scanAlert, selectAlertsSQL, st, st, f.Device, f.Device, f.Site, f.Site, limit)
}

// SetAlertStatus moves an alert from status from to status to. ENOTFOUND, ECONFLICT.
func (db *DB) SetAlertStatus(ctx context.Context, id string, from, to vitalgate.AlertStatus, by, note string, at time.Time, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		return conditional(ctx, tx, "alert", alertExistsSQL, id, func() (sql.Result, error) {
			return tx.ExecContext(ctx, alertStatusSQL, string(to), by, note, dbTime(db.orNow(at)), id, string(from))
		}, func() error { return db.appendAuditTx(ctx, tx, audit) })
	})
}

// QuarantineDevice moves an active device to quarantined and voids its enrollment secret.
// ENOTFOUND, ECONFLICT when it is not active.
func (db *DB) QuarantineDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	return db.deviceState(ctx, deviceID, quarantineDeviceSQL, vitalgate.DeviceActive, vitalgate.DeviceQuarantined, at, audit)
}

// ReleaseDevice moves a quarantined device back to active. ENOTFOUND, ECONFLICT.
func (db *DB) ReleaseDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	return db.deviceState(ctx, deviceID, releaseDeviceSQL, vitalgate.DeviceQuarantined, vitalgate.DeviceActive, at, audit)
}

func (db *DB) deviceState(ctx context.Context, id, query string, from, to vitalgate.DeviceStatus, at time.Time, audit [][]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		return conditional(ctx, tx, "device", deviceExistsSQL, id, func() (sql.Result, error) {
			// assurance:sql-ok query is quarantineDeviceSQL or releaseDeviceSQL, constants
			return tx.ExecContext(ctx, query, string(to), dbTime(db.orNow(at)), id, string(from))
		}, func() error { return db.appendAuditTx(ctx, tx, audit) })
	})
}

// conditional runs a conditional update: no row changed is ENOTFOUND when exists finds no
// row id, ECONFLICT otherwise; then, on success, after.
func conditional(ctx context.Context, tx *sql.Tx, what, exists, id string, update func() (sql.Result, error), after func() error) error {
	res, err := update()
	if err != nil {
		return mapError(err, what)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return mapError(err, what)
	}
	if n == 0 {
		var one int
		// assurance:sql-ok exists is alertExistsSQL or deviceExistsSQL, constants
		if err := tx.QueryRowContext(ctx, exists, id).Scan(&one); err != nil {
			return mapError(err, what)
		}
		return vitalgate.Errorf(vitalgate.ECONFLICT, "the %s is not in the state this change starts from", what)
	}
	return after()
}
