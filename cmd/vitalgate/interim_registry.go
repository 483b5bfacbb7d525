package main

import (
	"context"
	"time"

	"github.com/vitalgate/vitalgate"
)

// interimRegistry is ingest.Registry over the device store until the registry package
// lands: it knows only the current assignment (no history), so it binds data of any time to
// the device's current patient. The coordinator replaces it with the registry service and
// deletes this file.
type interimRegistry struct{ devices vitalgate.DeviceStore }

// Sender returns the device if it is registered and active. EFORBIDDEN otherwise.
func (r interimRegistry) Sender(ctx context.Context, id string) (vitalgate.Device, error) {
	d, err := r.devices.Device(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q is not registered", id)
	} else if err != nil {
		return d, err
	}
	if d.Status != vitalgate.DeviceActive {
		return d, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q has been revoked", id)
	}
	return d, nil
}

// PatientAt returns the device's current assignment. EFORBIDDEN when it has none.
func (r interimRegistry) PatientAt(ctx context.Context, id string, _ time.Time) (vitalgate.Assignment, error) {
	d, err := r.Sender(ctx, id)
	if err != nil {
		return vitalgate.Assignment{}, err
	}
	if len(d.PatientIndex) == 0 {
		return vitalgate.Assignment{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "device %q is not assigned to a patient", id)
	}
	return vitalgate.Assignment{DeviceID: id, PatientIndex: d.PatientIndex, PatientSealed: d.PatientSealed}, nil
}
