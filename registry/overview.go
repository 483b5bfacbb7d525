package registry

import (
	"context"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/access"
	"github.com/vitalgate/vitalgate/audit"
)

// DeviceRow is one device as an operator's list shows it.
type DeviceRow struct {
	vitalgate.Device
	// PatientID is the id of the patient the device is assigned to ("" for none, or when the
	// sealed reference cannot be opened: PatientErr says why).
	PatientID  string
	PatientErr error
	// Cert is the certificate issued last to the device (zero Serial: it never enrolled).
	Cert vitalgate.Certificate
	// LastSeen is the time of the device's newest successful act in the audit log
	// (enrollment, renewal, stored data); zero when there is none.
	LastSeen time.Time
}

// Enrolled reports whether the device used its enrollment secret.
func (r DeviceRow) Enrolled() bool { return r.EnrollSecretHash == "" }

// overviewStore is what Overview reads beyond vitalgate.DeviceStore (both stores implement
// it): the latest certificate of a device and the indexed audit search.
type overviewStore interface {
	LatestCertificate(ctx context.Context, deviceID string) (vitalgate.Certificate, error)
	AuditSearch(ctx context.Context, q vitalgate.AuditQuery, fn func(vitalgate.AuditRecord) error) error
}

// opener opens the sealed patient reference of a device (the vault).
type opener interface {
	OpenValue(ctx context.Context, patientIndex []byte, purpose string, sealed []byte) ([]byte, error)
}

// Overview lists the devices with their patient, latest certificate and last activity: every
// device for an operator at the command line, the devices of their own site for an admin
// signed in to the console (who must hold the Device read and update scopes). It shows
// patient ids, so it is audited as a read: device-list. Each device costs a few indexed
// lookups, whatever the history. EFORBIDDEN for anyone else.
func (s *Service) Overview(ctx context.Context, p vitalgate.Principal) ([]DeviceRow, error) {
	if p.Kind != KindOperator {
		if p.Kind != audit.AgentUser || p.Role != vitalgate.RoleAdmin || !vitalgate.InSite(p.Site, p.Site) {
			return nil, vitalgate.Errorf(vitalgate.EFORBIDDEN, "not permitted")
		}
		if err := access.RequireScope(p, "Device", access.OpUpdate); err != nil {
			return nil, err
		}
	}
	all, err := s.cfg.Store.Devices(ctx)
	if err != nil {
		return nil, err
	}
	ds := all[:0:0]
	for _, d := range all {
		if p.Kind == KindOperator || vitalgate.InSite(p.Site, d.Site) {
			ds = append(ds, d)
		}
	}
	st, _ := s.cfg.Store.(overviewStore)
	op, _ := s.cfg.Vault.(opener)
	rows := make([]DeviceRow, 0, len(ds))
	for _, d := range ds {
		r := DeviceRow{Device: d}
		if op != nil && len(d.PatientSealed) > 0 {
			pid, err := op.OpenValue(ctx, d.PatientIndex, "device-patient:"+d.ID, d.PatientSealed)
			if err != nil {
				r.PatientErr = err
			} else {
				r.PatientID = string(pid)
			}
		}
		if st != nil {
			c, err := st.LatestCertificate(ctx, d.ID)
			if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
				return nil, err
			}
			r.Cert = c
			err = st.AuditSearch(ctx, vitalgate.AuditQuery{AgentID: d.ID, Outcome: audit.OutcomeSuccess, Limit: 1},
				func(rec vitalgate.AuditRecord) error {
					if e, err := audit.UnmarshalEntry(rec.Data); err == nil {
						r.LastSeen = e.Time
					}
					return nil
				})
			if err != nil {
				return nil, err
			}
		}
		rows = append(rows, r)
	}
	if err := s.cfg.Audit.Append(ctx, agent(audit.Entry{Action: audit.ActionRead, Type: "admin", Subtype: "device-list",
		Outcome: audit.OutcomeSuccess, Resources: []string{"Device"}}, p)); err != nil {
		return nil, err
	}
	return rows, nil
}
