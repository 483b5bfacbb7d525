package registry

import (
	"context"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
)

// Reissuer is what Reissue needs from the store beyond vitalgate.DeviceStore: replacing a
// device's enrollment secret only if the device is still as it was read (both stores
// implement it).
type Reissuer interface {
	// ReissueEnrollSecret gives device was.ID a new secret hash and expiry and makes it
	// active, if its status and secret hash are still was's. ENOTFOUND, ECONFLICT.
	ReissueEnrollSecret(ctx context.Context, was vitalgate.Device, secretHash string, expiresAt time.Time, audit ...[]byte) error
}

// Reissue gives a registered device that has not enrolled yet (its secret lost or expired),
// or a revoked one (to provision it again), a new one-time enrollment secret valid for
// expires (DefaultEnrollTTL when zero), and returns the device and the secret. The previous
// secret stops working. A revoked device becomes active again, but its certificates stay
// revoked: it must enroll anew. Audited as device-reissue. Errors: EFORBIDDEN without the
// Device update scope, EINVALID for a bad expiry, ENOTFOUND for an unknown device, ECONFLICT
// for an enrolled active device (revoke it first) or one that changed meanwhile.
func (s *Service) Reissue(ctx context.Context, p vitalgate.Principal, id string, expires time.Duration) (vitalgate.Device, string, error) {
	if err := s.mayAdminister(p, "Device", access.OpUpdate); err != nil {
		return vitalgate.Device{}, "", err
	}
	if expires == 0 {
		expires = DefaultEnrollTTL
	}
	if expires < 0 || expires > MaxEnrollTTL {
		return vitalgate.Device{}, "", vitalgate.FieldErrorf(vitalgate.EINVALID, "expires", "the enrollment secret's life must be between 1s and 720h")
	}
	rs, ok := s.cfg.Store.(Reissuer)
	if !ok {
		return vitalgate.Device{}, "", vitalgate.Errorf(vitalgate.EINTERNAL, "this store cannot reissue enrollment secrets")
	}
	if checkID("id", "the device id", id) != nil {
		return vitalgate.Device{}, "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", id)
	}
	d, err := s.cfg.Store.Device(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Device{}, "", vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered: register it with `vitalgate device add`", id)
	} else if err != nil {
		return vitalgate.Device{}, "", err
	}
	if d.Status == vitalgate.DeviceActive && d.EnrollSecretHash == "" {
		return vitalgate.Device{}, "", vitalgate.Errorf(vitalgate.ECONFLICT,
			"device %q has enrolled (it holds a certificate): to provision it again, revoke it first (`vitalgate device revoke`), then reissue", id)
	}
	secret, err := auth.NewSecret(s.rand)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	hash, err := auth.HashSecret(secret, s.cfg.HashParams, s.rand)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	now := s.clock()
	e := s.entry(ctx, p, audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "device-reissue",
		Outcome: audit.OutcomeSuccess, PatientIndex: audit.PatientIndex(d.PatientIndex), Resources: []string{"Device/" + id}})
	err = rs.ReissueEnrollSecret(ctx, d, hash, now.Add(expires), e)
	s.devices.Forget(id)
	if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
		return vitalgate.Device{}, "", vitalgate.Errorf(vitalgate.ECONFLICT, "device %q changed while its secret was reissued (it enrolled or was revoked): look at `vitalgate device list` and try again", id)
	} else if err != nil {
		return vitalgate.Device{}, "", err
	}
	d.Status, d.EnrollSecretHash, d.EnrollExpiresAt, d.UpdatedAt = vitalgate.DeviceActive, hash, now.Add(expires), now
	return d, secret, nil
}

// enrollRefusal names, for the operator's server log, why an enrollment with these facts is
// refused; the client only ever gets badEnrollment.
func enrollRefusal(known bool, d vitalgate.Device, verr error, match bool, now time.Time) string {
	switch {
	case !known:
		return "unknown device id"
	case active(d) != nil:
		return "device is revoked (reissue a secret to provision it again)"
	case d.EnrollSecretHash == "":
		return "the enrollment secret was used already: the device has enrolled (reissue one after a revocation)"
	case verr != nil:
		return "the stored secret hash cannot be checked: " + verr.Error()
	case !match:
		return "wrong enrollment secret"
	case !now.Before(d.EnrollExpiresAt):
		return "the enrollment secret expired at " + d.EnrollExpiresAt.UTC().Format(time.RFC3339) + " (reissue one)"
	}
	return "refused"
}

// logEnrollRefusal writes why an enrollment was refused to the server log (never the
// secret).
func (s *Service) logEnrollRefusal(ctx context.Context, p vitalgate.Principal, reason string) {
	s.enrollSignal(p, reason)
	s.log.Info("enrollment refused", "request_id", vitalgate.RequestInfoFrom(ctx).ID, "device", p.ID,
		"remote", p.RemoteIP, "reason", reason)
}

// Device returns the registered device id as stored now. Errors: ENOTFOUND.
func (s *Service) Device(ctx context.Context, id string) (vitalgate.Device, error) {
	d, err := s.cfg.Store.Device(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return d, vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered: register it with `vitalgate device add`", id)
	}
	return d, err
}
