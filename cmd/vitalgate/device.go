package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
)

func (m *Main) runDevice(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "device", args, map[string]func(context.Context, []string) error{
		"add": m.deviceAdd, "assign": m.deviceAssign, "revoke": m.deviceRevoke, "list": m.deviceList,
	})
}

func (m *Main) deviceAdd(ctx context.Context, args []string) error {
	fs := m.flags("device add", "device add --data DIR --id ID --patient PATIENT [--model M] [--expires 24h]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id (becomes the CN of its certificate)")
	patient := fs.String("patient", "", "id of the patient the device is assigned to")
	model := fs.String("model", "", "device model (optional)")
	expires := fs.Duration("expires", 24*time.Hour, "how long the enrollment secret stays valid")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	if err := checkID("patient", *patient); err != nil {
		return err
	}
	if *expires <= 0 || *expires > 30*24*time.Hour {
		return fmt.Errorf("--expires must be between 1s and 720h")
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	d, secret, err := m.addDevice(ctx, n, *id, *patient, *model, *expires)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "Registered device %s. Its one-time enrollment secret (valid until %s) is on standard output.\n",
		*id, d.EnrollExpiresAt.Format(time.RFC3339))
	fmt.Fprintln(m.Stdout, secret)
	return nil
}

func (m *Main) deviceRevoke(ctx context.Context, args []string) error {
	fs := m.flags("device revoke", "device revoke --data DIR --id ID")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	entry := audit.Entry{Time: m.Now().UTC(), Action: audit.ActionUpdate, Type: "admin", Subtype: "device-revoke", AgentType: audit.AgentOperator,
		AgentID: operator(), Outcome: audit.OutcomeSuccess, Resources: []string{"Device/" + *id}}
	if err := n.store.RevokeDevice(ctx, *id, m.Now().UTC().Truncate(time.Microsecond), entry.Marshal()); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return fmt.Errorf("no device %q is registered", *id)
		}
		return err
	}
	fmt.Fprintf(m.Stderr, "Revoked device %s: its certificates are no longer accepted.\n", *id)
	return nil
}

func (m *Main) deviceList(ctx context.Context, args []string) error {
	fs := m.flags("device list", "device list --data DIR")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	ds, err := n.store.Devices(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	for _, d := range ds {
		enrolled := d.EnrollSecretHash == ""
		if err := enc.Encode(map[string]any{
			"id": d.ID, "model": d.Model, "status": d.Status, "enrolled": enrolled,
			"created": d.CreatedAt.Format(time.RFC3339),
		}); err != nil {
			return err
		}
	}
	return nil
}

// addDevice registers a device assigned to patient and returns it with its one-time
// enrollment secret.
func (m *Main) addDevice(ctx context.Context, n *node, id, patient, model string, expires time.Duration) (vitalgate.Device, string, error) {
	secret, err := auth.NewSecret(rand.Reader)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	hash, err := auth.HashSecret(secret, auth.DefaultHashParams, rand.Reader)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	now := m.Now().UTC().Truncate(time.Microsecond)
	pidx := n.vault.PatientIndex(patient)
	psealed, err := n.vault.SealValue(ctx, pidx, "device-patient:"+id, []byte(patient))
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	d := vitalgate.Device{
		ID: id, Model: model, Status: vitalgate.DeviceActive,
		PatientIndex: pidx, PatientSealed: psealed, CreatedAt: now, UpdatedAt: now,
		EnrollSecretHash: hash, EnrollExpiresAt: now.Add(expires),
	}
	entry := audit.Entry{Time: m.Now().UTC(), Action: audit.ActionCreate, Type: "admin", Subtype: "device-add", AgentType: audit.AgentOperator,
		AgentID: operator(), Outcome: audit.OutcomeSuccess, PatientIndex: audit.PatientIndex(pidx), Resources: []string{"Device/" + id}}
	if err := n.store.CreateDevice(ctx, d, entry.Marshal()); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return vitalgate.Device{}, "", fmt.Errorf("device %q is already registered", id)
		}
		return vitalgate.Device{}, "", err
	}
	return d, secret, nil
}

// deviceAssign reassigns a device to another patient; it takes effect for the device's next
// observation.
func (m *Main) deviceAssign(ctx context.Context, args []string) error {
	fs := m.flags("device assign", "device assign --data DIR --id ID --patient PATIENT")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id")
	patient := fs.String("patient", "", "id of the patient the device is now assigned to")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	if err := checkID("patient", *patient); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	pidx := n.vault.PatientIndex(*patient)
	sealed, err := n.vault.SealValue(ctx, pidx, "device-patient:"+*id, []byte(*patient))
	if err != nil {
		return err
	}
	entry := audit.Entry{Time: m.Now().UTC(), Action: audit.ActionUpdate, Type: "admin", Subtype: "assign-device", AgentType: audit.AgentOperator,
		AgentID: operator(), Outcome: audit.OutcomeSuccess, PatientIndex: audit.PatientIndex(pidx), Resources: []string{"Device/" + *id}}
	if err := n.store.AssignPatient(ctx, *id, pidx, sealed, m.Now().UTC().Truncate(time.Microsecond), entry.Marshal()); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return fmt.Errorf("no device %q is registered", *id)
		}
		return err
	}
	fmt.Fprintf(m.Stderr, "Device %s is now assigned to patient %s; its next observation must name that patient.\n", *id, *patient)
	return nil
}
