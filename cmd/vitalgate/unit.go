package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vitalgate/vitalgate"
)

// runUnit is `vitalgate unit`: the care units (wards) of a site.
func (m *Main) runUnit(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "unit", args, map[string]func(context.Context, []string) error{
		"add": m.unitAdd, "list": m.unitList,
	})
}

// unitAdd registers a care unit of a site.
func (m *Main) unitAdd(ctx context.Context, args []string) error {
	fs := m.flags("unit add", "unit add --data DIR --id UNIT --name NAME [--site S]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "care unit id: lower-case letters, digits and '-'")
	name := fs.String("name", "", "the unit's name (the ward or department)")
	site := fs.String("site", vitalgate.DefaultSite, "the site the unit belongs to")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	u, err := a.AddUnit(ctx, *site, *id, *name)
	if err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Added care unit %s (%s) of site %s. Place shared devices in it with `vitalgate device place` and admit patients with `vitalgate patient admit`.\n", u.ID, u.Name, u.Site)
	return nil
}

// unitList lists the care units of a site, one JSON object a line.
func (m *Main) unitList(ctx context.Context, args []string) error {
	fs := m.flags("unit list", "unit list --data DIR [--site S]")
	dir := fs.String("data", "", "data directory")
	site := fs.String("site", vitalgate.DefaultSite, "the site whose units are listed")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	units, err := a.Units(ctx, *site)
	if err != nil {
		return cliError(err)
	}
	enc := json.NewEncoder(m.Stdout)
	for _, u := range units {
		if err := enc.Encode(map[string]any{"site": u.Site, "id": u.ID, "name": u.Name, "created": u.CreatedAt.Format(time.RFC3339)}); err != nil {
			return err
		}
	}
	return nil
}

// devicePlace places a device in a care unit of its site (or in none with --none).
func (m *Main) devicePlace(ctx context.Context, args []string) error {
	fs := m.flags("device place", "device place --data DIR --id ID (--unit UNIT | --none)")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "device id")
	unit := fs.String("unit", "", "the care unit of the device's site: a shared device then writes only for the patients admitted to it")
	none := fs.Bool("none", false, "take the device out of its care unit")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if (*unit == "") == !*none {
		return errors.New("device place needs --unit UNIT or --none")
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := a.PlaceDevice(ctx, *id, *unit); err != nil {
		return cliError(err)
	}
	if *none {
		fmt.Fprintf(m.Stderr, "Device %s is in no care unit now.\n", *id)
	} else {
		fmt.Fprintf(m.Stderr, "Device %s is in care unit %s: as a shared device it writes only for the patients admitted to it.\n", *id, *unit)
	}
	return nil
}

// patientAdmit admits a patient to a care unit of its site.
func (m *Main) patientAdmit(ctx context.Context, args []string) error {
	fs := m.flags("patient admit", "patient admit --data DIR --id ID --unit UNIT [--site S]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "the patient's id")
	unit := fs.String("unit", "", "the care unit of the site the patient is admitted to")
	site := fs.String("site", vitalgate.DefaultSite, "the patient's site")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("patient", *id); err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := a.Admit(ctx, *site, *id, *unit); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Patient %s of site %s is admitted to care unit %s.\n", *id, *site, *unit)
	return nil
}

// patientDischarge ends a patient's admission to a care unit.
func (m *Main) patientDischarge(ctx context.Context, args []string) error {
	fs := m.flags("patient discharge", "patient discharge --data DIR --id ID [--site S]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "the patient's id")
	site := fs.String("site", vitalgate.DefaultSite, "the patient's site")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("patient", *id); err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := a.Discharge(ctx, *site, *id); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Patient %s of site %s is discharged: shared devices placed in a care unit no longer write for it.\n", *id, *site)
	return nil
}
