package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

var _ vitalgate.RolloutStore = (*DB)(nil)

const (
	insertRolloutSQL = `INSERT INTO rollouts (id, model, version, target, critical, state, reason, groups_json,
		current_group, health_window, silence, created_by, created_at, updated_at, revision, site)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`
	updateRolloutSQL = `UPDATE rollouts SET state = ?, reason = ?, groups_json = ?, current_group = ?,
		updated_at = ?, revision = revision + 1 WHERE id = ? AND revision = ?`
	rolloutExistsSQL = `SELECT 1 FROM rollouts WHERE id = ?`
	rolloutColumns   = `SELECT id, model, version, target, critical, state, reason, groups_json, current_group,
		health_window, silence, created_by, created_at, updated_at, revision, site FROM rollouts`
	selectRolloutSQL = rolloutColumns + ` WHERE id = ?`
	latestRolloutSQL = rolloutColumns + ` WHERE model = ? ORDER BY created_at DESC, id DESC LIMIT 1`
	modelRolloutsSQL = rolloutColumns + ` WHERE model = ? ORDER BY created_at DESC, id DESC LIMIT ?`
	allRolloutsSQL   = rolloutColumns + ` ORDER BY created_at DESC, id DESC LIMIT ?`
	upsertRolloutDev = `INSERT INTO rollout_devices (rollout_id, device_id, group_index, state, reason, installed_at, healthy_at, done_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (rollout_id, device_id) DO UPDATE SET group_index = excluded.group_index, state = excluded.state,
		reason = excluded.reason, installed_at = excluded.installed_at, healthy_at = excluded.healthy_at,
		done_at = excluded.done_at, updated_at = excluded.updated_at`
	rolloutDevColumns  = `SELECT rollout_id, device_id, group_index, state, reason, installed_at, healthy_at, done_at, updated_at FROM rollout_devices`
	selectRolloutDev   = rolloutDevColumns + ` WHERE rollout_id = ? AND device_id = ?`
	selectRolloutDevs  = rolloutDevColumns + ` WHERE rollout_id = ? ORDER BY device_id`
	upsertDeviceVerSQL = `INSERT INTO device_versions (device_id, model, version, previous, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET model = excluded.model, version = excluded.version, previous = excluded.previous, updated_at = excluded.updated_at`
	selectDeviceVerSQL = `SELECT device_id, model, version, previous, updated_at FROM device_versions WHERE device_id = ?`
	upsertWindowSQL    = `INSERT INTO maintenance_windows (site, start_min, length_min, days, zone, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (site) DO UPDATE SET start_min = excluded.start_min, length_min = excluded.length_min,
		days = excluded.days, zone = excluded.zone, updated_at = excluded.updated_at`
	deleteWindowSQL  = `DELETE FROM maintenance_windows WHERE site = ?`
	windowColumns    = `SELECT site, start_min, length_min, days, zone, updated_at FROM maintenance_windows`
	selectWindowSQL  = windowColumns + ` WHERE site = ?`
	selectWindowsSQL = windowColumns + ` ORDER BY site`
)

// WriteRollout applies w and appends the audit entries, in one transaction. On success
// w.Rollout.Revision is the stored revision.
func (db *DB) WriteRollout(ctx context.Context, w vitalgate.RolloutWrite, audit ...[]byte) error {
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	stored, groups, err := vitalgate.PrepareRolloutWrite(w, db.opts.Now())
	if err != nil {
		return err
	}
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if r := stored.Rollout; r != nil && w.Create {
			if _, err := tx.ExecContext(ctx, insertRolloutSQL, r.ID, r.Model, r.Version, r.Target, r.Critical, string(r.State),
				r.Reason, groups, r.Current, r.HealthWindow.Microseconds(), r.Silence.Microseconds(), r.CreatedBy,
				dbTime(r.CreatedAt), dbTime(r.UpdatedAt), r.Site); err != nil {
				return mapError(err, "rollout")
			}
		} else if r != nil {
			res, err := tx.ExecContext(ctx, updateRolloutSQL, string(r.State), r.Reason, groups, r.Current,
				dbTime(r.UpdatedAt), r.ID, r.Revision)
			if err != nil {
				return mapError(err, "rollout")
			}
			if n, err := res.RowsAffected(); err != nil {
				return mapError(err, "rollout")
			} else if n == 0 {
				var one int
				if err := tx.QueryRowContext(ctx, rolloutExistsSQL, r.ID).Scan(&one); err != nil {
					return mapError(err, "rollout")
				}
				return vitalgate.Errorf(vitalgate.ECONFLICT, "the rollout changed meanwhile; read it again")
			}
		}
		for _, u := range stored.Devices {
			if _, err := tx.ExecContext(ctx, upsertRolloutDev, u.RolloutID, u.DeviceID, u.Group, string(u.State), u.Reason,
				dbTime(u.InstalledAt), dbTime(u.HealthyAt), dbTime(u.DoneAt), dbTime(u.UpdatedAt)); err != nil {
				return mapError(err, "rollout device")
			}
		}
		for _, v := range stored.Versions {
			if _, err := tx.ExecContext(ctx, upsertDeviceVerSQL, v.DeviceID, v.Model, v.Version, v.Previous, dbTime(v.UpdatedAt)); err != nil {
				return mapError(err, "device version")
			}
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
	if err == nil && w.Rollout != nil {
		w.Rollout.Revision = vitalgate.RevisionAfter(w)
	}
	return err
}

func scanRollout(s rowiter.Scanner) (vitalgate.Rollout, error) {
	var (
		r                vitalgate.Rollout
		state, groups    string
		window, silence  int64
		created, updated sql.NullInt64
	)
	if err := s.Scan(&r.ID, &r.Model, &r.Version, &r.Target, &r.Critical, &state, &r.Reason, &groups, &r.Current,
		&window, &silence, &r.CreatedBy, &created, &updated, &r.Revision, &r.Site); err != nil {
		return r, err
	}
	r.State, r.HealthWindow, r.Silence = vitalgate.RolloutState(state), time.Duration(window)*time.Microsecond, time.Duration(silence)*time.Microsecond
	r.CreatedAt, r.UpdatedAt = goTime(created), goTime(updated)
	var err error
	r.Groups, err = vitalgate.DecodeRolloutGroups(groups)
	return r, err
}

// Rollout returns a rollout by id. Returns ENOTFOUND.
func (db *DB) Rollout(ctx context.Context, id string) (vitalgate.Rollout, error) {
	r, err := scanRollout(db.queryRow(ctx, selectRolloutSQL, id))
	return r, mapError(err, "rollout")
}

// LatestRollout returns the model's newest rollout. Returns ENOTFOUND.
func (db *DB) LatestRollout(ctx context.Context, model string) (vitalgate.Rollout, error) {
	r, err := scanRollout(db.queryRow(ctx, latestRolloutSQL, model))
	return r, mapError(err, "rollout")
}

// Rollouts returns up to limit rollouts, newest first, of model ("" for every model).
func (db *DB) Rollouts(ctx context.Context, model string, limit int) ([]vitalgate.Rollout, error) {
	if model == "" {
		return collect(ctx, db, "rollouts", scanRollout, allRolloutsSQL, limit)
	}
	return collect(ctx, db, "rollouts", scanRollout, modelRolloutsSQL, model, limit)
}

func scanRolloutDevice(s rowiter.Scanner) (vitalgate.DeviceUpdate, error) {
	var (
		u                             vitalgate.DeviceUpdate
		state                         string
		installed, healthy, done, upd sql.NullInt64
	)
	err := s.Scan(&u.RolloutID, &u.DeviceID, &u.Group, &state, &u.Reason, &installed, &healthy, &done, &upd)
	u.State = vitalgate.DeviceUpdateState(state)
	u.InstalledAt, u.HealthyAt, u.DoneAt, u.UpdatedAt = goTime(installed), goTime(healthy), goTime(done), goTime(upd)
	return u, err
}

// DeviceUpdate returns a device's row of a rollout. Returns ENOTFOUND.
func (db *DB) DeviceUpdate(ctx context.Context, rolloutID, deviceID string) (vitalgate.DeviceUpdate, error) {
	u, err := scanRolloutDevice(db.queryRow(ctx, selectRolloutDev, rolloutID, deviceID))
	return u, mapError(err, "rollout device")
}

// RolloutDevices returns every device row of a rollout, ordered by device id.
func (db *DB) RolloutDevices(ctx context.Context, rolloutID string) ([]vitalgate.DeviceUpdate, error) {
	return collect(ctx, db, "rollout devices", scanRolloutDevice, selectRolloutDevs, rolloutID)
}

// DeviceVersion returns the version a device reported installed last. Returns ENOTFOUND.
func (db *DB) DeviceVersion(ctx context.Context, deviceID string) (vitalgate.DeviceVersion, error) {
	var (
		v   vitalgate.DeviceVersion
		upd sql.NullInt64
	)
	err := db.queryRow(ctx, selectDeviceVerSQL, deviceID).Scan(&v.DeviceID, &v.Model, &v.Version, &v.Previous, &upd)
	v.UpdatedAt = goTime(upd)
	return v, mapError(err, "device version")
}

// SetMaintenanceWindow replaces the site's window (a zero Length removes it) and appends
// the audit entries, in one transaction.
func (db *DB) SetMaintenanceWindow(ctx context.Context, w vitalgate.MaintenanceWindow, audit ...[]byte) error {
	if err := vitalgate.CheckMaintenanceWindow(w); err != nil {
		return err
	}
	if err := vitalgate.CheckAuditEntries(audit); err != nil {
		return err
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if w.Length == 0 {
			_, err = tx.ExecContext(ctx, deleteWindowSQL, w.Site)
		} else {
			_, err = tx.ExecContext(ctx, upsertWindowSQL, w.Site, int64(w.Start/time.Minute), int64(w.Length/time.Minute),
				vitalgate.EncodeWeekdays(w.Days), w.Zone, dbTime(db.orNow(w.UpdatedAt)))
		}
		if err != nil {
			return mapError(err, "maintenance window")
		}
		return db.appendAuditTx(ctx, tx, audit)
	})
}

func scanWindow(s rowiter.Scanner) (vitalgate.MaintenanceWindow, error) {
	var (
		w             vitalgate.MaintenanceWindow
		start, length int64
		days          string
		upd           sql.NullInt64
	)
	err := s.Scan(&w.Site, &start, &length, &days, &w.Zone, &upd)
	w.Start, w.Length = time.Duration(start)*time.Minute, time.Duration(length)*time.Minute
	w.Days, w.UpdatedAt = vitalgate.DecodeWeekdays(days), goTime(upd)
	return w, err
}

// MaintenanceWindow returns the site's window. Returns ENOTFOUND when it has none.
func (db *DB) MaintenanceWindow(ctx context.Context, site string) (vitalgate.MaintenanceWindow, error) {
	w, err := scanWindow(db.queryRow(ctx, selectWindowSQL, site))
	return w, mapError(err, "maintenance window")
}

// MaintenanceWindows returns every site's window, ordered by site.
func (db *DB) MaintenanceWindows(ctx context.Context) ([]vitalgate.MaintenanceWindow, error) {
	return collect(ctx, db, "maintenance windows", scanWindow, selectWindowsSQL)
}
