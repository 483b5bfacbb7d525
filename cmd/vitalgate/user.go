package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

func (m *Main) runUser(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "user", args, map[string]func(context.Context, []string) error{
		"add": m.userAdd, "list": m.userList, "disable": m.userDisable, "reset": m.userReset,
	})
}

// userAdmin opens the data dir and returns the administration of its console users.
func (m *Main) userAdmin(ctx context.Context, dir string) (*auth.UserAdmin, *node, error) {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	return &auth.UserAdmin{Store: n.store, Operator: operator(), Now: m.Now, Hash: n.HashParams(), Rand: rand.Reader, Index: n.vault.SitePatientIndex}, n, nil
}

// printSetup prints a one-time setup code alone on standard output, guidance on standard
// error.
func (m *Main) printSetup(id, code string) {
	fmt.Fprintf(m.Stderr, "User %s signs in at https://HOST:PORT/console/setup with this one-time setup code (on standard output, shown only now,\n"+
		"good for %s): they choose a password and enroll an authenticator app (TOTP).\n", id, auth.SetupCodeTTL)
	fmt.Fprintln(m.Stdout, code)
}

// userAdd registers a person for the web console and prints the one-time setup code.
func (m *Main) userAdd(ctx context.Context, args []string) error {
	fs := m.flags("user add", "user add --data DIR --id NAME --role ROLE [--site S] [--patient ID]...")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "user name")
	role := fs.String("role", "", "role: admin, clinician or auditor")
	site := fs.String("site", vitalgate.DefaultSite, "the site the user acts within ('*': every site, for an auditor of the whole deployment)")
	var patients stringList
	fs.Var(&patients, "patient", "for a clinician: a patient id of the care team (repeatable)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("user", *id); err != nil {
		return err
	}
	if !auth.UserRole(vitalgate.Role(*role)) {
		return fmt.Errorf("--role must be admin, clinician or auditor")
	}
	for _, p := range patients {
		if err := checkID("patient", p); err != nil {
			return err
		}
	}
	a, n, err := m.userAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	code, err := a.Add(ctx, vitalgate.User{ID: *id, Role: vitalgate.Role(*role), Site: *site}, patients)
	if err != nil {
		return cliError(err)
	}
	m.printSetup(*id, code)
	return nil
}

// userFlags parses --data and --id.
func (m *Main) userFlags(name string, args []string) (dir, id string, err error) {
	fs := m.flags("user "+name, "user "+name+" --data DIR --id NAME")
	d := fs.String("data", "", "data directory")
	i := fs.String("id", "", "user name")
	if err := parse(fs, args, false); err != nil {
		return "", "", err
	}
	return *d, *i, checkID("user", *i)
}

// userList lists the console users (never a password, secret or setup code).
func (m *Main) userList(ctx context.Context, args []string) error {
	fs := m.flags("user list", "user list --data DIR [--json]")
	dir := fs.String("data", "", "data directory")
	asJSON := fs.Bool("json", false, "one JSON object per user")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	a, n, err := m.userAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	us, err := a.List(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tROLE\tSITE\tSTATUS\tPATIENTS\tCREATED")
	}
	for _, u := range us {
		status := "active"
		switch {
		case u.Disabled:
			status = "disabled"
		case u.SetupHash != "":
			status = "setup pending"
		}
		if *asJSON {
			if err := enc.Encode(map[string]any{"id": u.ID, "role": u.Role, "site": u.Site, "status": status,
				"patients": len(u.PatientIndexes), "created": u.CreatedAt.Format(time.RFC3339)}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", u.ID, u.Role, u.Site, status, len(u.PatientIndexes), u.CreatedAt.UTC().Format(time.RFC3339))
	}
	if *asJSON {
		return nil
	}
	return tw.Flush()
}

// userDisable disables a console user and ends its sessions on every node.
func (m *Main) userDisable(ctx context.Context, args []string) error {
	dir, id, err := m.userFlags("disable", args)
	if err != nil {
		return err
	}
	a, n, err := m.userAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := a.Disable(ctx, id); err != nil {
		return cliError(err)
	}
	fmt.Fprintf(m.Stderr, "Disabled user %s; their console sessions have ended.\n", id)
	return nil
}

// userReset clears a user's password and authenticator and prints a new setup code.
func (m *Main) userReset(ctx context.Context, args []string) error {
	dir, id, err := m.userFlags("reset", args)
	if err != nil {
		return err
	}
	a, n, err := m.userAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	code, err := a.Reset(ctx, id)
	if err != nil {
		return cliError(err)
	}
	m.printSetup(id, code)
	return nil
}
