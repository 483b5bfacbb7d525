package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/site"
)

func (m *Main) runSite(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "site", args, map[string]func(context.Context, []string) error{
		"add": m.siteAdd, "list": m.siteList,
	})
}

// siteAdmin opens the data dir and returns the administration of its sites and models.
func (m *Main) siteAdmin(ctx context.Context, dir string) (*site.Admin, *node, error) {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	v := n.vault
	v.FollowKeyDir(filepath.Join(n.dir, keysDir), 0)
	return &site.Admin{Store: n.store, Keys: v, Operator: operator(), Now: m.Now}, n, nil
}

// siteAdd registers a site (a hospital or facility), with its own key-encryption key unless
// --shared-keys.
func (m *Main) siteAdd(ctx context.Context, args []string) error {
	fs := m.flags("site add", "site add --data DIR --id S --name NAME [--shared-keys]")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "site id: lower-case letters, digits and '-'")
	name := fs.String("name", "", "the site's name (the hospital or facility)")
	shared := fs.Bool("shared-keys", false, "wrap the site's data keys with the deployment's key-encryption key instead of its own")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	s, err := a.Add(ctx, *id, *name, !*shared)
	if err != nil {
		return cliError(err)
	}
	keys := "the deployment's key-encryption key"
	if s.OwnKeys {
		keys = "its own key-encryption key in " + filepath.Join(n.dir, keysDir, "sites", s.ID) + " (copy it to every node)"
	}
	fmt.Fprintf(m.Stderr, "Added site %s (%s); its patients' data keys are wrapped by %s.\n", s.ID, s.Name, keys)
	return nil
}

// siteList lists the sites, one JSON object a line.
func (m *Main) siteList(ctx context.Context, args []string) error {
	fs := m.flags("site list", "site list --data DIR")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	sites, err := a.List(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	for _, s := range sites {
		if err := enc.Encode(map[string]any{"id": s.ID, "name": s.Name, "own_keys": s.OwnKeys,
			"created": s.CreatedAt.Format(time.RFC3339)}); err != nil {
			return err
		}
	}
	return nil
}

func (m *Main) runModel(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "model", args, map[string]func(context.Context, []string) error{
		"add": m.modelAdd, "set": m.modelSet, "list": m.modelList,
	})
}

// modelFlags parses the flags of model add and model set.
func (m *Main) modelFlags(name string, args []string) (dir, id string, b vitalgate.Binding, err error) {
	fs := m.flags("model "+name, "model "+name+" --data DIR --id MODEL --binding assigned|identified")
	d := fs.String("data", "", "data directory")
	i := fs.String("id", "", "device model (the devices' --model)")
	binding := fs.String("binding", "", "assigned: one patient at a time (device assign); identified: a shared device whose messages name their patient, of the device's site")
	if err := parse(fs, args, false); err != nil {
		return "", "", "", err
	}
	return *d, *i, vitalgate.Binding(*binding), nil
}

// modelAdd registers a device model with its patient-binding policy.
func (m *Main) modelAdd(ctx context.Context, args []string) error {
	dir, id, b, err := m.modelFlags("add", args)
	if err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if _, err := a.AddModel(ctx, id, b); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Added device model %s (binding %s).\n", id, b)
	return nil
}

// modelSet changes a device model's patient-binding policy.
func (m *Main) modelSet(ctx context.Context, args []string) error {
	dir, id, b, err := m.modelFlags("set", args)
	if err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if _, err := a.SetModel(ctx, id, b); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Device model %s now binds %s (running servers within a few seconds).\n", id, b)
	return nil
}

// modelList lists the device models, one JSON object a line.
func (m *Main) modelList(ctx context.Context, args []string) error {
	fs := m.flags("model list", "model list --data DIR")
	dir := fs.String("data", "", "data directory")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	ms, err := a.Models(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	for _, x := range ms {
		if err := enc.Encode(map[string]any{"id": x.ID, "binding": x.Binding, "updated": x.UpdatedAt.Format(time.RFC3339)}); err != nil {
			return err
		}
	}
	return nil
}
