package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/registry"
)

func (m *Main) runDevice(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "device", args, map[string]func(context.Context, []string) error{
		"add": m.deviceAdd, "assign": m.deviceAssign, "revoke": m.deviceRevoke, "list": m.deviceList,
	})
}

func (m *Main) deviceAdd(ctx context.Context, args []string) error {
	fs := m.flags("device add", "device add --data DIR --id ID --patient PATIENT [--site S] [--model M] [--expires 24h]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id (becomes the CN of its certificate)")
	patient := fs.String("patient", "", "id of the patient the device is assigned to (none for a model whose binding is identified)")
	model := fs.String("model", "", "device model (optional; its binding decides how the device's patients are found)")
	site := fs.String("site", vitalgate.DefaultSite, "the site the device belongs to")
	expires := fs.Duration("expires", 24*time.Hour, "how long the enrollment secret stays valid")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("device", *id); err != nil {
		return err
	}
	if *patient != "" {
		if err := checkID("patient", *patient); err != nil {
			return err
		}
	}
	if *expires <= 0 || *expires > 30*24*time.Hour {
		return fmt.Errorf("--expires must be between 1s and 720h")
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	d, secret, err := m.addDeviceTo(ctx, n, *site, *id, *patient, *model, *expires)
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
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	if err := reg.Revoke(ctx, registry.Operator(operator()), *id); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Revoked device %s: its certificates are no longer accepted (on running servers within %s).\n",
		*id, reg.MaxStaleness())
	return nil
}

// cliError turns a registry error into the command's message.
func cliError(err error) error {
	switch vitalgate.ErrorCode(err) {
	case vitalgate.ENOTFOUND, vitalgate.ECONFLICT, vitalgate.EINVALID:
		return errors.New(vitalgate.ErrorMessage(err))
	}
	return err
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
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	ds, err := reg.Devices(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	for _, d := range ds {
		enrolled := d.EnrollSecretHash == ""
		row := map[string]any{
			"id": d.ID, "site": d.Site, "model": d.Model, "status": d.Status, "enrolled": enrolled,
			"created": d.CreatedAt.Format(time.RFC3339),
		}
		as, err := reg.Assignments(ctx, d.ID, 2)
		if err != nil {
			return err
		}
		if len(as) > 0 && as[0].Current() {
			row["assigned_since"] = as[0].From.Format(time.RFC3339)
		}
		if len(as) > 1 && !as[1].To.IsZero() {
			// Readings of the previous assignment are accepted for the server's
			// --assignment-grace after this time.
			row["previous_assignment_ended"] = as[1].To.Format(time.RFC3339)
		}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return nil
}

// cliRegistry returns the registry for a command-line action (audited as the operator).
func (m *Main) cliRegistry(n *node) (*registry.Service, error) {
	alog, err := n.AuditLog("cli")
	if err != nil {
		return nil, err
	}
	return n.NewRegistry(alog, registry.DefaultConfig(), nil)
}

// addDevice registers a device assigned to patient and returns it with its one-time
// enrollment secret.
func (m *Main) addDevice(ctx context.Context, n *node, id, patient, model string, expires time.Duration) (vitalgate.Device, string, error) {
	return m.addDeviceTo(ctx, n, vitalgate.DefaultSite, id, patient, model, expires)
}

// addDeviceTo is addDevice for a device of site.
func (m *Main) addDeviceTo(ctx context.Context, n *node, site, id, patient, model string, expires time.Duration) (vitalgate.Device, string, error) {
	reg, err := m.cliRegistry(n)
	if err != nil {
		return vitalgate.Device{}, "", err
	}
	d, secret, err := reg.AddToSite(ctx, registry.Operator(operator()), site, id, patient, model, expires)
	if err != nil {
		return vitalgate.Device{}, "", cliError(err)
	}
	return d, secret, nil
}

// deviceAssign reassigns a device to another patient; it takes effect for readings measured
// from now on (earlier ones still belong to the previous patient).
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
	reg, err := m.cliRegistry(n)
	if err != nil {
		return err
	}
	if _, err := reg.Assign(ctx, registry.Operator(operator()), *id, *patient); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Device %s is now assigned to patient %s; readings it measures from now on must name that patient.\n", *id, *patient)
	return nil
}
