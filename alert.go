package vitalgate

import (
	"context"
	"time"
)

// DeviceQuarantined is the state of a device that an operator or the detection engine has
// isolated: every transport refuses its data and connections, its enrollment secret is void,
// its rollouts offer it nothing; an operator releases it (back to DeviceActive) with a reason.
const DeviceQuarantined DeviceStatus = "quarantined"

// AlertStatus is where an alert is in its handling.
type AlertStatus string

// Alert states: open until someone acknowledges it (they are looking at it), then resolved.
const (
	AlertOpen         AlertStatus = "open"
	AlertAcknowledged AlertStatus = "acknowledged"
	AlertResolved     AlertStatus = "resolved"
)

// Alert is a detection: which rule fired, on whom, over which window, with the evidence the
// rule keeps. It never holds a clinical value or a patient identifier.
type Alert struct {
	ID           string
	Rule         string // the rule's id
	RulesVersion int    // the version of the rule set the rule belongs to
	Severity     string // low, medium, high
	Category     string // identity, authentication, protocol, clinical-value
	Description  string // the rule's description
	Device       string // the device the alert implicates, if any
	Client       string // the API client it implicates, if any
	Source       string // the network address it concerns, if any
	Site         string
	From, To     time.Time         // the window of the evidence
	Evidence     map[string]string // the facts the rule keeps (counts, networks, reasons)
	Status       AlertStatus
	// Quarantined is set when the alert quarantined its device automatically.
	Quarantined bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	UpdatedBy   string // who acknowledged or resolved it
	Note        string // their note
}

// AlertFilter selects alerts: each set field must match. Limit 0 means 100.
type AlertFilter struct {
	Status AlertStatus
	Device string
	Site   string
	Limit  int
}

// AlertStore keeps alerts. Write methods take trailing audit entries, appended in the same
// transaction.
type AlertStore interface {
	// CreateAlert stores a new alert. ECONFLICT if its id exists.
	CreateAlert(ctx context.Context, a Alert, audit ...[]byte) error
	// Alert returns one alert. ENOTFOUND.
	Alert(ctx context.Context, id string) (Alert, error)
	// Alerts returns the alerts f selects, newest first.
	Alerts(ctx context.Context, f AlertFilter) ([]Alert, error)
	// SetAlertStatus moves alert id from status from to status to, recording by, note and
	// at. ENOTFOUND, ECONFLICT when the alert is not in status from.
	SetAlertStatus(ctx context.Context, id string, from, to AlertStatus, by, note string, at time.Time, audit ...[]byte) error
}

// QuarantineStore quarantines and releases devices.
type QuarantineStore interface {
	// QuarantineDevice moves an active device to DeviceQuarantined and voids its enrollment
	// secret, in one transaction. ENOTFOUND, ECONFLICT when the device is not active.
	QuarantineDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error
	// ReleaseDevice moves a quarantined device back to DeviceActive. ENOTFOUND, ECONFLICT
	// when the device is not quarantined.
	ReleaseDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error
	// BlockDeviceUpdates refuses a quarantined device the update repository too (by
	// default a quarantined device may still fetch updates, for remediation), until its
	// release. ENOTFOUND, ECONFLICT when the device is not quarantined.
	BlockDeviceUpdates(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error
	// DeviceUpdatesBlocked reports whether BlockDeviceUpdates blocked the device's updates.
	// ENOTFOUND.
	DeviceUpdatesBlocked(ctx context.Context, deviceID string) (bool, error)
}
