package sqlstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
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
	deviceExistsSQL     = `SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1)`
	quarantineDeviceSQL = `UPDATE devices SET status = $1, enroll_secret_hash = '', enroll_expires_at = NULL, updated_at = $2
		WHERE id = $3 AND status = $4`
	releaseDeviceSQL  = `UPDATE devices SET status = $1, updates_blocked = false, updated_at = $2 WHERE id = $3 AND status = $4`
	blockUpdatesSQL   = `UPDATE devices SET updates_blocked = true, updated_at = $1 WHERE id = $2 AND status = $3`
	updatesBlockedSQL = `SELECT updates_blocked FROM devices WHERE id = $1`
)

// CreateAlert stores a new alert and appends the audit entries, in one transaction.
// ECONFLICT if its id exists.
func (s Shared) CreateAlert(ctx context.Context, a vitalgate.Alert, audit ...[]byte) error {
	ev, err := json.Marshal(a.Evidence)
	if err != nil {
		return vitalgate.Internal(err, "alert evidence")
	}
	t := s.b.Time
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		_, err := tx.Exec(ctx, insertAlertSQL, a.ID, a.Rule, a.RulesVersion, a.Severity, a.Category, a.Description,
			a.Device, a.Client, a.Source, a.Site, t(a.From), t(a.To), string(ev), string(a.Status), a.Quarantined,
			t(s.orNow(a.CreatedAt)), t(s.orNow(a.UpdatedAt)), a.UpdatedBy, a.Note)
		return s.b.MapError(err, "alert")
	})
}

func scanAlert(r rowiter.Scanner) (vitalgate.Alert, error) {
	var (
		a                          vitalgate.Alert
		status, ev                 string
		from, to, created, updated Time
	)
	if err := r.Scan(&a.ID, &a.Rule, &a.RulesVersion, &a.Severity, &a.Category, &a.Description, &a.Device, &a.Client,
		&a.Source, &a.Site, &from, &to, &ev, &status, &a.Quarantined, &created, &updated, &a.UpdatedBy, &a.Note); err != nil {
		return a, err
	}
	a.Status, a.From, a.To, a.CreatedAt, a.UpdatedAt = vitalgate.AlertStatus(status), from.T, to.T, created.T, updated.T
	if err := json.Unmarshal([]byte(ev), &a.Evidence); err != nil {
		return a, vitalgate.Internal(err, "alert evidence")
	}
	return a, nil
}

// Alert returns one alert. ENOTFOUND.
func (s Shared) Alert(ctx context.Context, id string) (vitalgate.Alert, error) {
	return get(ctx, s, "alert", scanAlert, selectAlertSQL, id)
}

// Alerts returns the alerts f selects, newest first (100 at most unless f says).
func (s Shared) Alerts(ctx context.Context, f vitalgate.AlertFilter) ([]vitalgate.Alert, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	return collect(ctx, s, "alerts", scanAlert, selectAlertsSQL, string(f.Status), f.Device, f.Site, limit)
}

// SetAlertStatus moves an alert from status from to status to and appends the audit
// entries, in one transaction. ENOTFOUND, ECONFLICT when it is not in status from.
func (s Shared) SetAlertStatus(ctx context.Context, id string, from, to vitalgate.AlertStatus, by, note string, at time.Time, audit ...[]byte) error {
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		return s.conditional(ctx, tx, "alert", alertExistsSQL, id, func() (int64, error) {
			return tx.Exec(ctx, alertStatusSQL, string(to), by, note, s.b.Time(s.orNow(at)), id, string(from))
		})
	})
}

// QuarantineDevice moves an active device to quarantined, voids its enrollment secret and
// appends the audit entries, in one transaction. ENOTFOUND, ECONFLICT when it is not active.
func (s Shared) QuarantineDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	return s.deviceState(ctx, deviceID, quarantineDeviceSQL, vitalgate.DeviceActive, vitalgate.DeviceQuarantined, at, audit)
}

// ReleaseDevice moves a quarantined device back to active and appends the audit entries, in
// one transaction. ENOTFOUND, ECONFLICT when it is not quarantined.
func (s Shared) ReleaseDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	return s.deviceState(ctx, deviceID, releaseDeviceSQL, vitalgate.DeviceQuarantined, vitalgate.DeviceActive, at, audit)
}

// BlockDeviceUpdates refuses a quarantined device its updates too, until its release, and
// appends the audit entries, in one transaction. ENOTFOUND, ECONFLICT when it is not
// quarantined.
func (s Shared) BlockDeviceUpdates(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error {
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		return s.conditional(ctx, tx, "device", deviceExistsSQL, deviceID, func() (int64, error) {
			return tx.Exec(ctx, blockUpdatesSQL, s.b.Time(s.orNow(at)), deviceID, string(vitalgate.DeviceQuarantined))
		})
	})
}

// DeviceUpdatesBlocked reports whether the device's updates are blocked. ENOTFOUND.
func (s Shared) DeviceUpdatesBlocked(ctx context.Context, deviceID string) (bool, error) {
	var blocked bool
	if err := s.b.Reader().QueryRow(ctx, updatesBlockedSQL, deviceID).Scan(&blocked); err != nil {
		return false, s.b.MapError(err, "device "+deviceID)
	}
	return blocked, nil
}

func (s Shared) deviceState(ctx context.Context, id, query string, from, to vitalgate.DeviceStatus, at time.Time, audit [][]byte) error {
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		return s.conditional(ctx, tx, "device", deviceExistsSQL, id, func() (int64, error) {
			// assurance:sql-ok query is quarantineDeviceSQL or releaseDeviceSQL, constants
			return tx.Exec(ctx, query, string(to), s.b.Time(s.orNow(at)), id, string(from))
		})
	})
}
