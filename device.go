package vitalgate

import (
	"context"
	"time"
)

// DeviceStatus is the lifecycle state of a registered device.
type DeviceStatus string

// Device states.
const (
	DeviceActive  DeviceStatus = "active"  // may enroll (with a valid secret) and send data
	DeviceRevoked DeviceStatus = "revoked" // every certificate revoked; handshakes fail
)

// Device is a registered medical device. The patient it is assigned to is held only as a blind
// index (PatientIndex) and sealed (PatientSealed): the registry never stores a plaintext patient
// identifier.
type Device struct {
	ID string
	// Site is the site the device belongs to: it writes only for patients of that site.
	Site          string
	Model         string
	Status        DeviceStatus
	PatientIndex  []byte // keyed HMAC blind index of the assigned patient's id
	PatientSealed []byte // the assigned patient's id, sealed under the patient's data key
	CreatedAt     time.Time
	UpdatedAt     time.Time

	// EnrollSecretHash is the argon2id hash (PHC string) of the one-time enrollment secret;
	// empty once it has been used.
	EnrollSecretHash string
	// EnrollExpiresAt is when the enrollment secret stops being accepted.
	EnrollExpiresAt time.Time
}

// Assignment is one period during which a device was assigned to a patient. Data a device
// measured at time t belongs to the patient of the assignment with From <= t < To (To zero:
// the current assignment). Like Device, it holds the patient only as a blind index and sealed.
type Assignment struct {
	DeviceID      string
	PatientIndex  []byte // keyed HMAC blind index of the patient's id
	PatientSealed []byte // the patient's id, sealed under the patient's data key
	From          time.Time
	To            time.Time // zero while the assignment is current
}

// Current reports whether the assignment has not ended.
func (a Assignment) Current() bool { return a.To.IsZero() }

// Covers reports whether t falls within the assignment.
func (a Assignment) Covers(t time.Time) bool {
	return !t.Before(a.From) && (a.To.IsZero() || t.Before(a.To))
}

// Certificate is the registry's record of a device certificate issued by the built-in CA.
type Certificate struct {
	Serial    string // lowercase hex serial number
	DeviceID  string
	NotBefore time.Time
	NotAfter  time.Time
	IssuedAt  time.Time
	// RevokedAt is when the certificate stops being accepted; zero while valid. It may lie in
	// the future: a certificate replaced by a renewal (simplereenroll) stays usable until the
	// end of the configured overlap.
	RevokedAt time.Time
}

// Revoked reports whether the certificate has been revoked or is due to be (RevokedAt set).
func (c Certificate) Revoked() bool { return !c.RevokedAt.IsZero() }

// RevokedBy reports whether the certificate is no longer accepted at t.
func (c Certificate) RevokedBy(t time.Time) bool {
	return !c.RevokedAt.IsZero() && !t.Before(c.RevokedAt)
}

// DeviceStore persists devices and their certificates. Every write method takes trailing
// audit entries, appended to the audit log in the same transaction: if the write fails none
// is appended, and if they cannot be appended the write fails.
type DeviceStore interface {
	// CreateDevice registers a new device and, when it has a patient, opens its first
	// assignment (From = CreatedAt). Returns ECONFLICT if the id exists.
	CreateDevice(ctx context.Context, d Device, audit ...[]byte) error
	// Device returns a device by id. Returns ENOTFOUND.
	Device(ctx context.Context, id string) (Device, error)
	// Devices lists all devices ordered by id, of every site.
	Devices(ctx context.Context) ([]Device, error)
	// ConsumeEnrollSecret atomically marks the enrollment secret whose hash is secretHash as
	// used and records cert, so that a secret can be used exactly once even with several
	// nodes. Returns ECONFLICT if the secret was used or replaced meanwhile, ENOTFOUND if the
	// device does not exist.
	ConsumeEnrollSecret(ctx context.Context, deviceID, secretHash string, cert Certificate, audit ...[]byte) error
	// SetEnrollSecret replaces the device's enrollment secret hash and expiry. ENOTFOUND.
	SetEnrollSecret(ctx context.Context, deviceID, secretHash string, expiresAt time.Time, audit ...[]byte) error
	// AssignPatient changes the device's patient: atomically it closes the current assignment
	// at at (To = at) and opens the new one (From = at); a current assignment that starts at
	// at itself lasted no time and is replaced. Returns ENOTFOUND, ECONFLICT when at is before
	// the start of the device's latest assignment (or at a closed one's start).
	AssignPatient(ctx context.Context, deviceID string, patientIndex, patientSealed []byte, at time.Time, audit ...[]byte) error
	// AssignmentAt returns the assignment that covers t (From <= t < To). Its cost does not
	// grow with the device's history. Returns ENOTFOUND when none covers t.
	AssignmentAt(ctx context.Context, deviceID string, t time.Time) (Assignment, error)
	// Assignments returns up to limit of the device's assignments, newest first (an unknown
	// device has none).
	Assignments(ctx context.Context, deviceID string, limit int) ([]Assignment, error)
	// AddCertificate records a newly issued certificate (renewal). ENOTFOUND for an unknown
	// device, ECONFLICT if the serial exists.
	AddCertificate(ctx context.Context, cert Certificate, audit ...[]byte) error
	// RenewCertificate records cert, a renewal of the device's certificate oldSerial, and
	// atomically sets oldSerial's RevokedAt to oldUntil unless it is revoked earlier already.
	// Returns ENOTFOUND for an unknown device or an oldSerial that is not the device's,
	// ECONFLICT if cert's serial exists.
	RenewCertificate(ctx context.Context, cert Certificate, oldSerial string, oldUntil time.Time, audit ...[]byte) error
	// Certificate returns a certificate by serial. Returns ENOTFOUND.
	Certificate(ctx context.Context, serial string) (Certificate, error)
	// RevokeDevice marks the device revoked and every one of its certificates revoked at the
	// given time. Returns ENOTFOUND.
	RevokeDevice(ctx context.Context, deviceID string, at time.Time, audit ...[]byte) error
}
