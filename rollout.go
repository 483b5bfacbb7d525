package vitalgate

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// RolloutState is where a rollout stands.
type RolloutState string

// Rollout states. A model has at most one live rollout (active, paused or waiting).
const (
	RolloutActive    RolloutState = "active"    // the current group is offered the version
	RolloutPaused    RolloutState = "paused"    // nothing is offered: an operator or an error threshold paused it
	RolloutWaiting   RolloutState = "waiting"   // the next group waits for an operator's approval
	RolloutCompleted RolloutState = "completed" // every group started and met its success threshold
	RolloutAborted   RolloutState = "aborted"   // stopped for good: nothing more is offered
)

// Live reports whether the rollout still changes (it is not completed or aborted).
func (s RolloutState) Live() bool {
	return s == RolloutActive || s == RolloutPaused || s == RolloutWaiting
}

// RolloutGroup is one stage of a rollout: either a percentage of the model's devices
// (cumulative: the groups 10, 50, 100 take the first 10 %, the next 40 % and the rest) or
// an explicit list of device ids.
type RolloutGroup struct {
	Percent int      `json:"percent,omitempty"` // 1..100, cumulative, when Devices is empty
	Devices []string `json:"devices,omitempty"` // explicit members (then Percent is 0)
	// SuccessPercent of the group's devices must pass their health gate before the next
	// group starts; ErrorPercent of them failing pauses the rollout.
	SuccessPercent int `json:"success"`
	ErrorPercent   int `json:"errors"`
	// Approval: the group starts only when an operator approves it (update rollout
	// approve); a critical rollout never waits.
	Approval bool `json:"approval,omitempty"`
	// StartedAt is when the group was first offered the version (zero: not yet).
	StartedAt time.Time `json:"started,omitzero"`
	// Accepted is the number of the group's failures an operator accepted by resuming the
	// rollout: they no longer count against the error threshold, nor in the success ratio.
	Accepted int `json:"accepted,omitempty"`
}

// Rollout chooses which devices of a model are offered one approved release, group by
// group. It is online state, not signed metadata: it can only offer a release the
// repository holds as approved (signed by the offline keys).
type Rollout struct {
	ID       string
	Model    string
	Version  string
	Target   string // the TUF target path MODEL/VERSION/FILENAME of the release
	Critical bool   // out of cycle: skips maintenance windows and approvals
	// Site, when set, is the one site whose devices of the model the rollout targets; empty:
	// every site the model has devices in (each site's maintenance window applies).
	Site    string
	State   RolloutState
	Reason  string // why it is paused or aborted (plain words; no identifiers of patients)
	Groups  []RolloutGroup
	Current int // index of the newest started group
	// HealthWindow is how long after its healthy report a device must keep sending valid
	// data before it counts as a success; Silence is how long it may go without valid data
	// (and how long after installed it has to report healthy).
	HealthWindow time.Duration
	Silence      time.Duration
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// Revision is incremented by every update; UpdateRollout refuses a stale one
	// (ECONFLICT), so that concurrent evaluations cannot lose each other's changes.
	Revision int64
}

// DeviceUpdateState is where one device stands in a rollout.
type DeviceUpdateState string

// Device update states: assigned (in a group, nothing reported yet), then as the device
// reports (downloading, installed, healthy, failed, rolled-back), and passed once its
// health gate is over.
const (
	UpdateAssigned    DeviceUpdateState = "assigned"
	UpdateDownloading DeviceUpdateState = "downloading"
	UpdateInstalled   DeviceUpdateState = "installed"
	UpdateHealthy     DeviceUpdateState = "healthy"
	UpdatePassed      DeviceUpdateState = "passed"
	UpdateFailed      DeviceUpdateState = "failed"
	UpdateRolledBack  DeviceUpdateState = "rolled-back"
)

// Failed reports whether the state is a failure of the device's update.
func (s DeviceUpdateState) Failed() bool { return s == UpdateFailed || s == UpdateRolledBack }

// DeviceUpdate is one device's part in a rollout.
type DeviceUpdate struct {
	RolloutID   string
	DeviceID    string
	Group       int // index into Rollout.Groups
	State       DeviceUpdateState
	Reason      string    // the device's or the health gate's reason of a failure
	InstalledAt time.Time // when it reported installed (zero: not yet)
	HealthyAt   time.Time // when it reported healthy
	DoneAt      time.Time // when it passed or failed
	UpdatedAt   time.Time
}

// DeviceVersion is the software version a device reported installed last.
type DeviceVersion struct {
	DeviceID string
	Model    string
	Version  string
	// Previous is the version it ran before Version, so that a rollback restores it ("" when
	// unknown).
	Previous  string
	UpdatedAt time.Time
}

// MaintenanceWindow is when a site's devices may be offered a non-critical update: every
// day of Days (empty: every day) from Start for Length, in the time zone Zone (an IANA
// name; empty: UTC). A site without a window takes updates at any time.
type MaintenanceWindow struct {
	Site      string
	Start     time.Duration // offset from midnight, 0..24h
	Length    time.Duration // 1 minute .. 24h
	Days      []time.Weekday
	Zone      string
	UpdatedAt time.Time
}

// RolloutWrite is one atomic change of rollout state: an optional rollout (created, or
// updated at its revision), device rows (inserted or replaced by rollout and device) and
// installed versions (replaced by device).
type RolloutWrite struct {
	Rollout  *Rollout
	Create   bool // Rollout is new (else it replaces the stored one of the same revision)
	Devices  []DeviceUpdate
	Versions []DeviceVersion
}

// RolloutStore persists rollouts, the devices' progress in them, the versions devices run
// and the sites' maintenance windows. Trailing audit entries are appended in the same
// transaction. The offer path reads a device's row, the model's latest rollout and the
// site's window: each an indexed lookup whose cost does not grow with history.
type RolloutStore interface {
	// WriteRollout applies w atomically. Returns ECONFLICT when a created rollout's id
	// exists or its model has a live rollout already, or an updated rollout's revision is
	// not the stored one; ENOTFOUND when an updated rollout does not exist; EINVALID for
	// what CheckRollout refuses. On success w.Rollout.Revision is the stored revision (1
	// for a new rollout).
	WriteRollout(ctx context.Context, w RolloutWrite, audit ...[]byte) error
	// Rollout returns a rollout by id. Returns ENOTFOUND.
	Rollout(ctx context.Context, id string) (Rollout, error)
	// LatestRollout returns the model's newest rollout (of any state). Returns ENOTFOUND.
	LatestRollout(ctx context.Context, model string) (Rollout, error)
	// Rollouts returns up to limit rollouts, newest first, of model ("" for every model).
	Rollouts(ctx context.Context, model string, limit int) ([]Rollout, error)
	// DeviceUpdate returns a device's row of a rollout. Returns ENOTFOUND.
	DeviceUpdate(ctx context.Context, rolloutID, deviceID string) (DeviceUpdate, error)
	// RolloutDevices returns every device row of a rollout, ordered by device id.
	RolloutDevices(ctx context.Context, rolloutID string) ([]DeviceUpdate, error)
	// DeviceVersion returns the version a device reported installed last. ENOTFOUND.
	DeviceVersion(ctx context.Context, deviceID string) (DeviceVersion, error)
	// SetMaintenanceWindow replaces the site's window; a zero Length removes it.
	SetMaintenanceWindow(ctx context.Context, w MaintenanceWindow, audit ...[]byte) error
	// MaintenanceWindow returns the site's window. Returns ENOTFOUND when it has none.
	MaintenanceWindow(ctx context.Context, site string) (MaintenanceWindow, error)
	// MaintenanceWindows returns every site's window, ordered by site.
	MaintenanceWindows(ctx context.Context) ([]MaintenanceWindow, error)
}

// RevisionAfter is the revision a store gives w.Rollout when w succeeds: 1 for a new
// rollout, one more than the stored one for an update.
func RevisionAfter(w RolloutWrite) int64 {
	if w.Rollout == nil || w.Create {
		return 1
	}
	return w.Rollout.Revision + 1
}

// PrepareRolloutWrite checks w as both stores must before writing it (CheckRollout,
// CheckDeviceUpdate, a device version names its device and version) and returns a copy
// with every zero time of the rollout, device updates and versions set to now, and the
// rollout's groups encoded for its column. w itself is not changed.
func PrepareRolloutWrite(w RolloutWrite, now time.Time) (RolloutWrite, string, error) {
	orNow := func(t time.Time) time.Time {
		if t.IsZero() {
			return now
		}
		return t
	}
	var groups string
	if w.Rollout != nil {
		if err := CheckRollout(*w.Rollout); err != nil {
			return w, "", err
		}
		var err error
		if groups, err = EncodeRolloutGroups(w.Rollout.Groups); err != nil {
			return w, "", err
		}
		r := *w.Rollout
		r.CreatedAt, r.UpdatedAt = orNow(r.CreatedAt), orNow(r.UpdatedAt)
		w.Rollout = &r
	}
	devices := make([]DeviceUpdate, len(w.Devices))
	for i, u := range w.Devices {
		if err := CheckDeviceUpdate(u); err != nil {
			return w, "", err
		}
		u.UpdatedAt = orNow(u.UpdatedAt)
		devices[i] = u
	}
	versions := make([]DeviceVersion, len(w.Versions))
	for i, v := range w.Versions {
		if v.DeviceID == "" || v.Version == "" {
			return w, "", Errorf(EINVALID, "a device version needs a device and a version")
		}
		v.UpdatedAt = orNow(v.UpdatedAt)
		versions[i] = v
	}
	w.Devices, w.Versions = devices, versions
	return w, groups, nil
}

// CheckRollout reports whether a store may keep r: EINVALID for an empty id, model or
// version, an unknown state, no group, or a current group out of range. Both stores call it.
func CheckRollout(r Rollout) error {
	switch {
	case r.ID == "" || r.Model == "" || r.Version == "":
		return Errorf(EINVALID, "a rollout needs an id, a model and a version")
	case !r.State.Live() && r.State != RolloutCompleted && r.State != RolloutAborted:
		return FieldErrorf(EINVALID, "state", "unknown rollout state %q", r.State)
	case len(r.Groups) == 0:
		return FieldErrorf(EINVALID, "groups", "a rollout needs at least one group")
	case r.Current < 0 || r.Current >= len(r.Groups):
		return FieldErrorf(EINVALID, "current", "current group %d out of range", r.Current)
	}
	return nil
}

// CheckDeviceUpdate reports whether a store may keep u: EINVALID for an empty rollout or
// device id or a negative group. Both stores call it.
func CheckDeviceUpdate(u DeviceUpdate) error {
	if u.RolloutID == "" || u.DeviceID == "" || u.Group < 0 || u.State == "" {
		return Errorf(EINVALID, "a device update needs a rollout, a device, a group and a state")
	}
	return nil
}

// EncodeRolloutGroups encodes groups for a store's text column; DecodeRolloutGroups reverses
// it. Both stores use them, so that they keep the same text.
func EncodeRolloutGroups(groups []RolloutGroup) (string, error) {
	b, err := json.Marshal(groups)
	if err != nil {
		return "", Internal(err, "encode rollout groups")
	}
	return string(b), nil
}

// DecodeRolloutGroups decodes what EncodeRolloutGroups wrote.
func DecodeRolloutGroups(s string) ([]RolloutGroup, error) {
	var g []RolloutGroup
	if err := json.Unmarshal([]byte(s), &g); err != nil {
		return nil, Internal(fmt.Errorf("decode rollout groups: %w", err), "rollout groups")
	}
	for i := range g {
		if !g[i].StartedAt.IsZero() {
			g[i].StartedAt = g[i].StartedAt.UTC()
		}
	}
	return g, nil
}

// EncodeWeekdays encodes days as a string of digits (Sunday 0); DecodeWeekdays reverses it.
func EncodeWeekdays(days []time.Weekday) string {
	b := make([]byte, 0, len(days))
	for _, d := range days {
		b = append(b, byte('0'+d%7))
	}
	return string(b)
}

// DecodeWeekdays decodes what EncodeWeekdays wrote.
func DecodeWeekdays(s string) []time.Weekday {
	var out []time.Weekday
	for _, c := range s {
		if c >= '0' && c <= '6' {
			out = append(out, time.Weekday(c-'0'))
		}
	}
	return out
}

// CheckMaintenanceWindow reports whether a store may keep w: EINVALID for an empty site, a
// start outside the day, a length over a day or not in whole minutes. A zero Length (no
// window) is valid. Both stores call it.
func CheckMaintenanceWindow(w MaintenanceWindow) error {
	switch {
	case w.Site == "":
		return FieldErrorf(EINVALID, "site", "a maintenance window needs a site")
	case w.Length == 0:
		return nil
	case w.Start < 0 || w.Start >= 24*time.Hour || w.Start%time.Minute != 0:
		return FieldErrorf(EINVALID, "start", "a maintenance window starts at a whole minute of the day")
	case w.Length < time.Minute || w.Length > 24*time.Hour || w.Length%time.Minute != 0:
		return FieldErrorf(EINVALID, "length", "a maintenance window lasts 1 minute to 24 hours, in whole minutes")
	}
	return nil
}
