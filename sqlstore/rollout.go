package sqlstore

import (
	"context"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/rowiter"
)

const (
	insertRolloutSQL = `INSERT INTO rollouts (id, model, version, target, critical, state, reason, groups_json,
		current_group, health_window, silence, created_by, created_at, updated_at, revision, site)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15)`
	updateRolloutSQL = `UPDATE rollouts SET state = $1, reason = $2, groups_json = $3, current_group = $4,
		updated_at = $5, revision = revision + 1 WHERE id = $6 AND revision = $7`
	rolloutExistsSQL = `SELECT 1 FROM rollouts WHERE id = $1`
	rolloutColumns   = `SELECT id, model, version, target, critical, state, reason, groups_json, current_group,
		health_window, silence, created_by, created_at, updated_at, revision, site FROM rollouts`
	selectRolloutSQL = rolloutColumns + ` WHERE id = $1`
	latestRolloutSQL = rolloutColumns + ` WHERE model = $1 ORDER BY created_at DESC, id DESC LIMIT 1`
	modelRolloutsSQL = rolloutColumns + ` WHERE model = $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	allRolloutsSQL   = rolloutColumns + ` ORDER BY created_at DESC, id DESC LIMIT $1`
	upsertRolloutDev = `INSERT INTO rollout_devices (rollout_id, device_id, group_index, state, reason, installed_at, healthy_at, done_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (rollout_id, device_id) DO UPDATE SET group_index = excluded.group_index, state = excluded.state,
		reason = excluded.reason, installed_at = excluded.installed_at, healthy_at = excluded.healthy_at,
		done_at = excluded.done_at, updated_at = excluded.updated_at`
	rolloutDevColumns  = `SELECT rollout_id, device_id, group_index, state, reason, installed_at, healthy_at, done_at, updated_at FROM rollout_devices`
	selectRolloutDev   = rolloutDevColumns + ` WHERE rollout_id = $1 AND device_id = $2`
	selectRolloutDevs  = rolloutDevColumns + ` WHERE rollout_id = $1 ORDER BY device_id`
	upsertDeviceVerSQL = `INSERT INTO device_versions (device_id, model, version, previous, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (device_id) DO UPDATE SET model = excluded.model, version = excluded.version, previous = excluded.previous, updated_at = excluded.updated_at`
	selectDeviceVerSQL = `SELECT device_id, model, version, previous, updated_at FROM device_versions WHERE device_id = $1`
	upsertWindowSQL    = `INSERT INTO maintenance_windows (site, start_min, length_min, days, zone, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (site) DO UPDATE SET start_min = excluded.start_min, length_min = excluded.length_min,
		days = excluded.days, zone = excluded.zone, updated_at = excluded.updated_at`
	deleteWindowSQL  = `DELETE FROM maintenance_windows WHERE site = $1`
	windowColumns    = `SELECT site, start_min, length_min, days, zone, updated_at FROM maintenance_windows`
	selectWindowSQL  = windowColumns + ` WHERE site = $1`
	selectWindowsSQL = windowColumns + ` ORDER BY site`
)

// WriteRollout applies w and appends the audit entries, in one transaction. On success
// w.Rollout.Revision is the stored revision.
func (s Shared) WriteRollout(ctx context.Context, w vitalgate.RolloutWrite, audit ...[]byte) error {
	stored, groups, err := vitalgate.PrepareRolloutWrite(w, s.b.Now())
	if err != nil {
		return err
	}
	err = s.b.InTx(ctx, audit, func(tx Conn) error {
		if r := stored.Rollout; r != nil && w.Create {
			if _, err := tx.Exec(ctx, insertRolloutSQL, r.ID, r.Model, r.Version, r.Target, r.Critical, string(r.State),
				r.Reason, groups, r.Current, r.HealthWindow.Microseconds(), r.Silence.Microseconds(), r.CreatedBy,
				s.b.Time(r.CreatedAt), s.b.Time(r.UpdatedAt), r.Site); err != nil {
				return s.b.MapError(err, "rollout")
			}
		} else if r != nil {
			n, err := tx.Exec(ctx, updateRolloutSQL, string(r.State), r.Reason, groups, r.Current,
				s.b.Time(r.UpdatedAt), r.ID, r.Revision)
			if err != nil {
				return s.b.MapError(err, "rollout")
			}
			if n == 0 {
				var one int
				if err := tx.QueryRow(ctx, rolloutExistsSQL, r.ID).Scan(&one); err != nil {
					return s.b.MapError(err, "rollout")
				}
				return vitalgate.Errorf(vitalgate.ECONFLICT, "the rollout changed meanwhile; read it again")
			}
		}
		for _, u := range stored.Devices {
			if _, err := tx.Exec(ctx, upsertRolloutDev, u.RolloutID, u.DeviceID, u.Group, string(u.State), u.Reason,
				s.b.Time(u.InstalledAt), s.b.Time(u.HealthyAt), s.b.Time(u.DoneAt), s.b.Time(u.UpdatedAt)); err != nil {
				return s.b.MapError(err, "rollout device")
			}
		}
		for _, v := range stored.Versions {
			if _, err := tx.Exec(ctx, upsertDeviceVerSQL, v.DeviceID, v.Model, v.Version, v.Previous, s.b.Time(v.UpdatedAt)); err != nil {
				return s.b.MapError(err, "device version")
			}
		}
		return nil
	})
	if err == nil && w.Rollout != nil {
		w.Rollout.Revision = vitalgate.RevisionAfter(w)
	}
	return err
}

func scanRollout(row rowiter.Scanner) (vitalgate.Rollout, error) {
	var (
		r                vitalgate.Rollout
		state, groups    string
		window, silence  int64
		created, updated Time
	)
	if err := row.Scan(&r.ID, &r.Model, &r.Version, &r.Target, &r.Critical, &state, &r.Reason, &groups, &r.Current,
		&window, &silence, &r.CreatedBy, &created, &updated, &r.Revision, &r.Site); err != nil {
		return r, err
	}
	r.State, r.HealthWindow, r.Silence = vitalgate.RolloutState(state), time.Duration(window)*time.Microsecond, time.Duration(silence)*time.Microsecond
	r.CreatedAt, r.UpdatedAt = created.T, updated.T
	var err error
	r.Groups, err = vitalgate.DecodeRolloutGroups(groups)
	return r, err
}

// Rollout returns a rollout by id. Returns ENOTFOUND.
func (s Shared) Rollout(ctx context.Context, id string) (vitalgate.Rollout, error) {
	r, err := scanRollout(s.b.Reader().QueryRow(ctx, selectRolloutSQL, id))
	return r, s.b.MapError(err, "rollout")
}

// LatestRollout returns the model's newest rollout. Returns ENOTFOUND.
func (s Shared) LatestRollout(ctx context.Context, model string) (vitalgate.Rollout, error) {
	r, err := scanRollout(s.b.Reader().QueryRow(ctx, latestRolloutSQL, model))
	return r, s.b.MapError(err, "rollout")
}

// Rollouts returns up to limit rollouts, newest first, of model ("" for every model).
func (s Shared) Rollouts(ctx context.Context, model string, limit int) ([]vitalgate.Rollout, error) {
	if model == "" {
		return collect(ctx, s, "rollouts", scanRollout, allRolloutsSQL, limit)
	}
	return collect(ctx, s, "rollouts", scanRollout, modelRolloutsSQL, model, limit)
}

func scanRolloutDevice(row rowiter.Scanner) (vitalgate.DeviceUpdate, error) {
	var (
		u                             vitalgate.DeviceUpdate
		state                         string
		installed, healthy, done, upd Time
	)
	err := row.Scan(&u.RolloutID, &u.DeviceID, &u.Group, &state, &u.Reason, &installed, &healthy, &done, &upd)
	u.State = vitalgate.DeviceUpdateState(state)
	u.InstalledAt, u.HealthyAt, u.DoneAt, u.UpdatedAt = installed.T, healthy.T, done.T, upd.T
	return u, err
}

// DeviceUpdate returns a device's row of a rollout. Returns ENOTFOUND.
func (s Shared) DeviceUpdate(ctx context.Context, rolloutID, deviceID string) (vitalgate.DeviceUpdate, error) {
	u, err := scanRolloutDevice(s.b.Reader().QueryRow(ctx, selectRolloutDev, rolloutID, deviceID))
	return u, s.b.MapError(err, "rollout device")
}

// RolloutDevices returns every device row of a rollout, ordered by device id.
func (s Shared) RolloutDevices(ctx context.Context, rolloutID string) ([]vitalgate.DeviceUpdate, error) {
	return collect(ctx, s, "rollout devices", scanRolloutDevice, selectRolloutDevs, rolloutID)
}

// DeviceVersion returns the version a device reported installed last. Returns ENOTFOUND.
func (s Shared) DeviceVersion(ctx context.Context, deviceID string) (vitalgate.DeviceVersion, error) {
	var (
		v   vitalgate.DeviceVersion
		upd Time
	)
	err := s.b.Reader().QueryRow(ctx, selectDeviceVerSQL, deviceID).Scan(&v.DeviceID, &v.Model, &v.Version, &v.Previous, &upd)
	v.UpdatedAt = upd.T
	return v, s.b.MapError(err, "device version")
}

// SetMaintenanceWindow replaces the site's window (a zero Length removes it) and appends
// the audit entries, in one transaction.
func (s Shared) SetMaintenanceWindow(ctx context.Context, w vitalgate.MaintenanceWindow, audit ...[]byte) error {
	if err := vitalgate.CheckMaintenanceWindow(w); err != nil {
		return err
	}
	return s.b.InTx(ctx, audit, func(tx Conn) error {
		var err error
		if w.Length == 0 {
			_, err = tx.Exec(ctx, deleteWindowSQL, w.Site)
		} else {
			_, err = tx.Exec(ctx, upsertWindowSQL, w.Site, int64(w.Start/time.Minute), int64(w.Length/time.Minute),
				vitalgate.EncodeWeekdays(w.Days), w.Zone, s.b.Time(s.orNow(w.UpdatedAt)))
		}
		if err != nil {
			return s.b.MapError(err, "maintenance window")
		}
		return nil
	})
}

func scanWindow(row rowiter.Scanner) (vitalgate.MaintenanceWindow, error) {
	var (
		w             vitalgate.MaintenanceWindow
		start, length int64
		days          string
		upd           Time
	)
	err := row.Scan(&w.Site, &start, &length, &days, &w.Zone, &upd)
	w.Start, w.Length = time.Duration(start)*time.Minute, time.Duration(length)*time.Minute
	w.Days, w.UpdatedAt = vitalgate.DecodeWeekdays(days), upd.T
	return w, err
}

// MaintenanceWindow returns the site's window. Returns ENOTFOUND when it has none.
func (s Shared) MaintenanceWindow(ctx context.Context, site string) (vitalgate.MaintenanceWindow, error) {
	w, err := scanWindow(s.b.Reader().QueryRow(ctx, selectWindowSQL, site))
	return w, s.b.MapError(err, "maintenance window")
}

// MaintenanceWindows returns every site's window, ordered by site.
func (s Shared) MaintenanceWindows(ctx context.Context) ([]vitalgate.MaintenanceWindow, error) {
	return collect(ctx, s, "maintenance windows", scanWindow, selectWindowsSQL)
}
