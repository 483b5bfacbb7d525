package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/vault"
)

func (m *Main) runKeys(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "keys", args, map[string]func(context.Context, []string) error{"rotate": m.keysRotate})
}

// keysRotate adds a key-encryption key and rewraps every data key under it.
func (m *Main) keysRotate(ctx context.Context, args []string) error {
	fs := m.flags("keys rotate", "keys rotate --data DIR [--site S]")
	dir := fs.String("data", "", "data directory")
	site := fs.String("site", "", "rotate only this site's own key-encryption key (a site added with its own keys)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	n, err := m.openDataDir(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if *site != "" {
		return m.keysRotateSite(ctx, n, *site)
	}
	keys, err := vault.AddKEK(filepath.Join(n.dir, keysDir), rand.Reader)
	if err != nil {
		return fmt.Errorf("add key-encryption key: %w", err)
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	changed, err := vault.New(n.store, keys, m.Now, nil).RotateAs(ctx, alog, operator())
	if err != nil {
		return fmt.Errorf("rewrap data keys (the new key is in place; run rotate again to finish): %w", err)
	}
	id := keys.CurrentKEKID()
	fmt.Fprintf(m.Stderr, "New key-encryption key %s is current; %d data keys rewrapped.\n"+
		"Servers using this data directory load it without a restart. Other nodes on the same database need it too:\n"+
		"copy %s to their data directory's %s/ (mode 0600) now; until then they answer 503 naming %s for patients whose keys moved.\n"+
		"Keep the old key files until you have verified a backup.\n",
		id, changed, filepath.Join(n.dir, keysDir, id+".key"), keysDir, id)
	return nil
}

// keysRotateSite adds a generation of site's own key-encryption key and rewraps that site's
// data keys under it; no other site's keys change.
func (m *Main) keysRotateSite(ctx context.Context, n *node, site string) error {
	keyDir := filepath.Join(n.dir, keysDir)
	v := vault.New(n.store, n.Keys, m.Now, nil)
	v.FollowKeyDir(keyDir, 0)
	kr, err := v.NewSiteKEK(ctx, site)
	if err != nil {
		return fmt.Errorf("add the key-encryption key of site %s: %s", site, vitalgate.ErrorMessage(err))
	}
	alog, err := n.AuditLog("cli")
	if err != nil {
		return err
	}
	changed, err := v.RotateSiteAs(ctx, alog, operator(), site)
	if err != nil {
		return fmt.Errorf("rewrap the data keys of site %s (the new key is in place; run rotate again to finish): %s", site, vitalgate.ErrorMessage(err))
	}
	id := kr.CurrentKEKID()
	fmt.Fprintf(m.Stderr, "Site %s: new key-encryption key %s is current; %d data keys rewrapped, no other site's touched.\n"+
		"Copy %s to the same place in every other node's data directory (mode 0600).\n",
		site, id, changed, filepath.Join(vault.SiteKeyDir(keyDir, site), id+".key"))
	return nil
}
