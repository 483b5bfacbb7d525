package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/site"
)

func (m *Main) runSite(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "site", args, map[string]func(context.Context, []string) error{
		"add": m.siteAdd, "list": m.siteList, "erase": m.siteErase,
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
	return &site.Admin{Store: n.store, Keys: v, Operator: operator(), Now: m.Now, Index: v.SitePatientIndex}, n, nil
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
		o := map[string]any{"id": s.ID, "name": s.Name, "own_keys": s.OwnKeys, "created": s.CreatedAt.Format(time.RFC3339)}
		if !s.ErasedAt.IsZero() {
			o["erased"] = s.ErasedAt.Format(time.RFC3339)
		}
		if err := enc.Encode(o); err != nil {
			return err
		}
	}
	return nil
}

// siteErase requests the erasure of a whole site (--id, --reason: the request id alone on
// standard output) or approves one (--approve REQUEST-ID), which erases it.
func (m *Main) siteErase(ctx context.Context, args []string) error {
	fs := m.flags("site erase", "site erase --data DIR --id S --reason TEXT\n"+
		"       vitalgate site erase --data DIR --approve REQUEST-ID   (by another operator)")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "id of the site to erase")
	reason := fs.String("reason", "", "why the site is erased, e.g. the end of the hospital's contract (kept with the request, not in the audit log)")
	approve := fs.String("approve", "", "approve this erasure request (another operator's) and erase the whole site: it cannot be undone")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	svc, n, err := m.erasureService(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if *approve != "" {
		if *id != "" || *reason != "" {
			return errors.New("--approve takes only the request id: the site and reason are the request's")
		}
		res, err := svc.ApproveSite(ctx, operator(), *approve)
		if err != nil {
			return patientError(err)
		}
		fmt.Fprintf(m.Stderr, "Erasure %s approved by %s: the site's data keys (%d), resources (%d) and device assignments (%d) are deleted,\n"+
			"its devices (%d) revoked and its clients (%d) disabled; key-encryption key %s replaces %d destroyed here.\n"+
			"Now copy the data directory's keys/ to every other node (mode 0600) and delete the old keys from any key backup.\n"+
			"Database backups taken before now still hold the erased rows, but only under the destroyed key.\n",
			*approve, operator(), res.DataKeys, res.Resources, res.Assignments, res.Devices, res.Clients, res.NewKEK, len(res.Destroyed))
		return nil
	}
	if *id == "" || *reason == "" {
		return errors.New("site erase needs --id and --reason (or --approve REQUEST-ID to approve a request)")
	}
	req, err := svc.RequestSite(ctx, operator(), *id, *reason)
	if err != nil {
		return patientError(err)
	}
	fmt.Fprintln(m.Stdout, req)
	fmt.Fprintf(m.Stderr, "Erasure of the whole site %s requested by %s as %s. Nothing is erased yet.\n"+
		"Another operator approves it with `vitalgate site erase --data %s --approve %s`; that cannot be undone.\n",
		*id, operator(), req, *dir, req)
	return nil
}

func (m *Main) runModel(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "model", args, map[string]func(context.Context, []string) error{
		"add": m.modelAdd, "set": m.modelSet, "list": m.modelList,
	})
}

// modelFlags are the flags of model add and model set.
type modelFlags struct {
	dir, id  string
	binding  vitalgate.Binding
	idevidCA []byte // the --idevid-ca file's contents; nil without the flag
	noIDevID bool
	site     string // model set: the site whose own binding is set or reset
	reset    bool
}

// parseModelFlags parses the flags of model add (set false) and model set (set true).
func (m *Main) parseModelFlags(name string, args []string, set bool) (modelFlags, error) {
	usage := "model add --data DIR --id MODEL --binding assigned|identified [--idevid-ca FILE]"
	if set {
		usage = "model set --data DIR --id MODEL [--binding assigned|identified] [--idevid-ca FILE | --no-idevid]\n       model set --data DIR --id MODEL --site SITE (--binding assigned|identified | --reset-site)"
	}
	fs := m.flags("model "+name, usage)
	d := fs.String("data", "", "data directory")
	i := fs.String("id", "", "device model (the devices' --model)")
	binding := fs.String("binding", "", "assigned: one patient at a time (device assign); identified: a shared device whose messages name their patient, of the device's site")
	ca := fs.String("idevid-ca", "", "PEM file of the maker's CA certificates for the model's manufacturer identities (IDevID, IEEE 802.1AR): registered devices of the model enroll with their IDevID, no secret")
	var none, reset *bool
	var site *string
	if set {
		none = fs.Bool("no-idevid", false, "remove the model's IDevID CAs: its devices enroll with secrets only")
		site = fs.String("site", "", "set the binding of this site's devices of the model only")
		reset = fs.Bool("reset-site", false, "with --site: remove the site's own binding, so that the model's holds for it again")
	}
	if err := parse(fs, args, false); err != nil {
		return modelFlags{}, err
	}
	f := modelFlags{dir: *d, id: *i, binding: vitalgate.Binding(*binding), noIDevID: none != nil && *none}
	if set {
		f.site, f.reset = *site, *reset
	}
	if *ca != "" {
		data, err := os.ReadFile(*ca) // #nosec G304 -- the operator names the file
		if err != nil {
			return modelFlags{}, fmt.Errorf("--idevid-ca: %w", err)
		}
		f.idevidCA = data
	}
	return f, nil
}

// modelAdd registers a device model with its patient-binding policy.
func (m *Main) modelAdd(ctx context.Context, args []string) error {
	f, err := m.parseModelFlags("add", args, false)
	if err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, f.dir)
	if err != nil {
		return err
	}
	defer n.Close()
	md, err := a.AddModel(ctx, f.id, f.binding, f.idevidCA)
	if err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Added device model %s (binding %s%s).\n", md.ID, md.Binding, idevidNote(md))
	return nil
}

// modelSet changes a device model's patient-binding policy or IDevID CAs.
func (m *Main) modelSet(ctx context.Context, args []string) error {
	f, err := m.parseModelFlags("set", args, true)
	if err != nil {
		return err
	}
	a, n, err := m.siteAdmin(ctx, f.dir)
	if err != nil {
		return err
	}
	defer n.Close()
	md, err := a.SetModel(ctx, f.id, site.ModelChange{Binding: f.binding, IDevIDCA: f.idevidCA, NoIDevID: f.noIDevID, Site: f.site, ResetSite: f.reset})
	if err != nil {
		return cliError(err)
	}
	if f.site != "" {
		fmt.Fprintf(m.Stderr, "Devices of model %s in site %s now bind %s (running servers within a few seconds).\n", md.ID, f.site, md.BindingAt(f.site))
		return nil
	}
	fmt.Fprintf(m.Stderr, "Device model %s now binds %s%s (running servers within a few seconds).\n", md.ID, md.Binding, idevidNote(md))
	return nil
}

// siteBindings is a model's sites with a binding of their own, for model list ({} when none).
func siteBindings(x vitalgate.DeviceModel) map[string]vitalgate.Binding {
	if x.SiteBindings == nil {
		return map[string]vitalgate.Binding{}
	}
	return x.SiteBindings
}

// idevidNote says, for model add and set, whether the model's devices enroll with an IDevID.
func idevidNote(md vitalgate.DeviceModel) string {
	if len(md.IDevIDCA) == 0 {
		return ""
	}
	return "; its registered devices enroll with their manufacturer IDevID, no secret needed"
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
		if err := enc.Encode(map[string]any{"id": x.ID, "binding": x.Binding, "sites": siteBindings(x), "idevid": len(x.IDevIDCA) > 0, "updated": x.UpdatedAt.Format(time.RFC3339)}); err != nil {
			return err
		}
	}
	return nil
}
