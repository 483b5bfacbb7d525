package registry

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/pki"
)

// KindDetector is the Principal kind of the detection capability when it quarantines a
// device on a high-severity alert (automatic quarantine, when configured).
const KindDetector = detect.PrincipalKind

// maxReason bounds a quarantine or release reason.
const maxReason = 500

func checkReason(reason string) error {
	r := strings.TrimSpace(reason)
	if r == "" || len(r) > maxReason || strings.ContainsAny(r, "\r\n") {
		return vitalgate.FieldErrorf(vitalgate.EINVALID, "reason", "give a reason of 1 to %d characters on one line (--reason TEXT)", maxReason)
	}
	return nil
}

// quarantines returns the store's quarantine operations.
func (s *Service) quarantines() (vitalgate.QuarantineStore, error) {
	q, ok := s.cfg.Store.(vitalgate.QuarantineStore)
	if !ok {
		return nil, vitalgate.Errorf(vitalgate.EUNAVAILABLE, "this store keeps no quarantines")
	}
	return q, nil
}

// Quarantine isolates device deviceID: from now on (on every node within MaxStaleness,
// on this one at once) every transport refuses its certificate, hence its data and its
// open connections' next message or request; its enrollment secret is void; its rollouts
// offer it nothing (rollout offers only to active devices). An operator, an API client
// with the Device update scope, or the detection capability (Detector) may do it; the act
// is audited with its reason. Errors: EINVALID (reason), ENOTFOUND, ECONFLICT (the device
// is not active: revoked or quarantined already), EFORBIDDEN.
func (s *Service) Quarantine(ctx context.Context, p vitalgate.Principal, deviceID, reason string) error {
	return s.quarantine(ctx, p, deviceID, reason, true)
}

// Release ends the quarantine of device deviceID with a reason: it may act again with the
// certificates it holds (a new enrollment secret needs `vitalgate device reissue`). Only
// an operator or an API client with the Device update scope. Errors: EINVALID, ENOTFOUND,
// ECONFLICT (not quarantined), EFORBIDDEN.
func (s *Service) Release(ctx context.Context, p vitalgate.Principal, deviceID, reason string) error {
	return s.quarantine(ctx, p, deviceID, reason, false)
}

func (s *Service) quarantine(ctx context.Context, p vitalgate.Principal, deviceID, reason string, on bool) error {
	subtype := map[bool]string{true: "device-quarantine", false: "device-release"}[on]
	if p.Kind != KindDetector || !on {
		if err := s.mayAdminister(p, "Device", 'u'); err != nil {
			return err
		}
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	q, err := s.quarantines()
	if err != nil {
		return err
	}
	unknown := vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", deviceID)
	d, err := s.cfg.Store.Device(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return unknown
	} else if err != nil {
		return err
	}
	ae := audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: subtype, Resources: []string{"Device/" + deviceID}, Site: d.Site}
	if err := inSite(p, d.Site, fmt.Sprintf("no device %q is registered", deviceID)); err != nil {
		s.refused(ctx, p, ae, err)
		return err
	}
	ae.Outcome, ae.OutcomeDesc = audit.OutcomeSuccess, strings.TrimSpace(reason)
	e := s.entry(ctx, p, ae)
	if on {
		err = q.QuarantineDevice(ctx, deviceID, s.clock(), e)
	} else {
		err = q.ReleaseDevice(ctx, deviceID, s.clock(), e)
	}
	s.devices.Forget(deviceID)
	switch vitalgate.ErrorCode(err) {
	case vitalgate.ENOTFOUND:
		return unknown
	case vitalgate.ECONFLICT:
		cur, _ := s.cfg.Store.Device(ctx, deviceID)
		if on {
			return vitalgate.Errorf(vitalgate.ECONFLICT, "device %q is %s, not active: nothing to quarantine", deviceID, cur.Status)
		}
		return vitalgate.Errorf(vitalgate.ECONFLICT, "device %q is %s, not quarantined: nothing to release", deviceID, cur.Status)
	}
	if err == nil {
		s.log.Warn("device "+map[bool]string{true: "quarantined", false: "released"}[on], "device", deviceID, "by", p.ID)
	}
	return err
}

// BlockUpdates refuses a quarantined device the update repository too, until its release
// (a quarantined device may otherwise still fetch updates, for remediation). Operators only,
// audited (admin/device-block-updates). Errors: ENOTFOUND, ECONFLICT (not quarantined),
// EINVALID (reason), EFORBIDDEN.
func (s *Service) BlockUpdates(ctx context.Context, p vitalgate.Principal, deviceID, reason string) error {
	if err := s.mayAdminister(p, "Device", 'u'); err != nil {
		return err
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	q, err := s.quarantines()
	if err != nil {
		return err
	}
	unknown := vitalgate.Errorf(vitalgate.ENOTFOUND, "no device %q is registered", deviceID)
	d, err := s.cfg.Store.Device(ctx, deviceID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return unknown
	} else if err != nil {
		return err
	}
	ae := audit.Entry{Action: audit.ActionUpdate, Type: "admin", Subtype: "device-block-updates", Resources: []string{"Device/" + deviceID}, Site: d.Site}
	if err := inSite(p, d.Site, fmt.Sprintf("no device %q is registered", deviceID)); err != nil {
		s.refused(ctx, p, ae, err)
		return err
	}
	ae.Outcome, ae.OutcomeDesc = audit.OutcomeSuccess, strings.TrimSpace(reason)
	err = q.BlockDeviceUpdates(ctx, deviceID, s.clock(), s.entry(ctx, p, ae))
	s.devices.Forget(deviceID)
	switch vitalgate.ErrorCode(err) {
	case vitalgate.ENOTFOUND:
		return unknown
	case vitalgate.ECONFLICT:
		return vitalgate.Errorf(vitalgate.ECONFLICT, "device %q is %s, not quarantined: quarantine it first", deviceID, d.Status)
	}
	if err == nil {
		s.log.Warn("device updates blocked", "device", deviceID, "by", p.ID)
	}
	return err
}

// updatesBlocked reports whether a quarantined device's updates are blocked; when the store
// cannot say, they are (deny by default).
func (s *Service) updatesBlocked(ctx context.Context, deviceID string) bool {
	q, err := s.quarantines()
	if err != nil {
		return true
	}
	blocked, err := q.DeviceUpdatesBlocked(ctx, deviceID)
	return err != nil || blocked
}

// certSignal reports a refused device certificate to detection (revoked, unknown, expired,
// or its device not active). Reason is the refusal's message, which names no patient.
func (s *Service) certSignal(ctx context.Context, cert *x509.Certificate, err error) {
	if err == nil || s.cfg.Signals == nil || vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
		return
	}
	id, _ := pki.DeviceIDFromCert(cert)
	s.cfg.Signals.Emit(detect.Signal{Kind: detect.KindCertRefused, At: s.now(), Source: vitalgate.RequestInfoFrom(ctx).RemoteIP,
		Device: id, Reason: vitalgate.ErrorMessage(err)})
}

// enrollSignal reports a refused enrollment to detection.
func (s *Service) enrollSignal(p vitalgate.Principal, reason string) {
	detect.Emit(s.cfg.Signals, detect.Signal{Kind: detect.KindEnrollFailure, At: s.now(), Source: p.RemoteIP, Device: p.ID,
		Reason: reason[:min(len(reason), 64)]})
}
