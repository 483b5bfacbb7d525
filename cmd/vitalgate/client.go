package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

func (m *Main) runClient(ctx context.Context, args []string) error {
	return m.dispatch(ctx, "client", args, map[string]func(context.Context, []string) error{
		"add": m.clientAdd, "list": m.clientList, "disable": m.clientDisable, "rotate-secret": m.clientRotateSecret,
		"set-patients": m.clientSetPatients, "set-scopes": m.clientSetScopes,
	})
}

// clientAdmin opens the data dir and returns the administration of its API clients.
func (m *Main) clientAdmin(ctx context.Context, dir string) (*auth.ClientAdmin, *node, error) {
	n, err := m.openDataDir(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	return &auth.ClientAdmin{Store: n.store, Operator: operator(), Now: m.Now, Hash: n.HashParams(), Rand: rand.Reader, Index: n.vault.SitePatientIndex}, n, nil
}

// clientFlags parses the flags every client command shares (--data, --id) and the extra
// ones the command adds.
func (m *Main) clientFlags(name, usage string, args []string, extra func(fs *flag.FlagSet)) (dir, id string, err error) {
	fs := m.flags("client "+name, "client "+name+" --data DIR --id ID"+usage)
	d := fs.String("data", "", "data directory")
	i := fs.String("id", "", "client id")
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args, false); err != nil {
		return "", "", err
	}
	if err := checkID("client", *i); err != nil {
		return "", "", err
	}
	return *d, *i, nil
}

// clientList lists the API clients (never their secrets).
func (m *Main) clientList(ctx context.Context, args []string) error {
	fs := m.flags("client list", "client list --data DIR [--json]")
	dir := fs.String("data", "", "data directory")
	asJSON := fs.Bool("json", false, "one JSON object per client")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	a, n, err := m.clientAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	cs, err := a.List(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	if !*asJSON {
		fmt.Fprintln(tw, "ID\tROLE\tSITES\tSTATUS\tAUTHENTICATION\tSCOPES\tPATIENTS\tCREATED")
	}
	for _, c := range cs {
		status, method := "active", "client_secret_basic"
		if c.Disabled {
			status = "disabled"
		}
		if c.SecretHash == "" {
			method = "private_key_jwt"
		}
		scopes := c.Scopes
		if len(scopes) == 0 {
			scopes = auth.RoleScopes[c.Role]
		}
		sites := append([]string{c.Site}, c.OtherSites...)
		if *asJSON {
			if err := enc.Encode(map[string]any{"id": c.ID, "role": c.Role, "sites": sites, "status": status, "auth": method,
				"scopes": scopes, "patients": len(c.PatientIndexes), "created": c.CreatedAt.Format(time.RFC3339)}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.ID, c.Role, strings.Join(sites, ","), status, method, strings.Join(scopes, " "), len(c.PatientIndexes),
			c.CreatedAt.UTC().Format(time.RFC3339))
	}
	if *asJSON {
		return nil
	}
	return tw.Flush()
}

// clientDisable disables an API client: its next token request is refused.
func (m *Main) clientDisable(ctx context.Context, args []string) error {
	dir, id, err := m.clientFlags("disable", "", args, nil)
	if err != nil {
		return err
	}
	a, n, err := m.clientAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := a.Disable(ctx, id); err != nil {
		return errors.New(vitalgate.ErrorMessage(err))
	}
	fmt.Fprintf(m.Stderr, "Disabled client %s. Tokens it holds expire within %s.\n", id, auth.MaxTokenTTL)
	return nil
}

// clientRotateSecret gives an API client a new secret, printed alone on standard output.
func (m *Main) clientRotateSecret(ctx context.Context, args []string) error {
	dir, id, err := m.clientFlags("rotate-secret", "", args, nil)
	if err != nil {
		return err
	}
	a, n, err := m.clientAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	secret, err := a.RotateSecret(ctx, id)
	if err != nil {
		return errors.New(vitalgate.ErrorMessage(err))
	}
	fmt.Fprintf(m.Stderr, "Client %s has a new secret, on standard output, shown only now; the old one no longer works.\n", id)
	fmt.Fprintln(m.Stdout, secret)
	return nil
}

// clientSetPatients replaces a clinician's care team.
func (m *Main) clientSetPatients(ctx context.Context, args []string) error {
	var patients stringList
	dir, id, err := m.clientFlags("set-patients", " [--patient ID]...", args, func(fs *flag.FlagSet) {
		fs.Var(&patients, "patient", "a patient id of the care team (repeatable; none: no patient outside emergency access)")
	})
	if err != nil {
		return err
	}
	for _, p := range patients {
		if err := checkID("patient", p); err != nil {
			return err
		}
	}
	a, n, err := m.clientAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := a.SetCareTeam(ctx, id, patients); err != nil {
		return errors.New(vitalgate.ErrorMessage(err))
	}
	fmt.Fprintf(m.Stderr, "Client %s now cares for %d patients.\n", id, len(patients))
	return nil
}

// clientSetScopes replaces an API client's registered scopes, within its role.
func (m *Main) clientSetScopes(ctx context.Context, args []string) error {
	var scopes stringList
	dir, id, err := m.clientFlags("set-scopes", " [--scope S]...", args, func(fs *flag.FlagSet) {
		fs.Var(&scopes, "scope", "a SMART scope the client may be granted, within its role (repeatable; none: all its role allows)")
	})
	if err != nil {
		return err
	}
	var reg []string
	for _, s := range scopes {
		reg = append(reg, strings.Fields(s)...)
	}
	a, n, err := m.clientAdmin(ctx, dir)
	if err != nil {
		return err
	}
	defer n.Close()
	if err := a.SetScopes(ctx, id, reg); err != nil {
		return fmt.Errorf("--scope: %s", vitalgate.ErrorMessage(err))
	}
	fmt.Fprintf(m.Stderr, "Client %s has new scopes from its next token request.\n", id)
	return nil
}

// clientAdd registers an API client.
func (m *Main) clientAdd(ctx context.Context, args []string) error {
	fs := m.flags("client add", "client add --data DIR --id ID --role ROLE [--site S[,S...]] [--scope S]... [--jwks FILE] [--patient ID]...")
	sites := fs.String("site", vitalgate.DefaultSite, "the site the client acts within ('*': every site, for an auditor of the whole deployment);\n"+
		"an ehr-system or auditor serving several sites lists them (north,south): the first is its own, and each token names one (the token request's site parameter)")
	dir := fs.String("data", "", "data directory")
	id := fs.String("id", "", "client id")
	role := fs.String("role", "", "role: admin, clinician, ehr-system or auditor")
	var scopes, patients stringList
	fs.Var(&scopes, "scope", "a SMART scope the client may be granted, within its role (repeatable; default: all its role allows)")
	jwksFile := fs.String("jwks", "", "JSON Web Key Set file with the client's public keys, for private_key_jwt (no secret is issued)")
	fs.Var(&patients, "patient", "for a clinician: a patient id of the care team (repeatable)")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if err := checkID("client", *id); err != nil {
		return err
	}
	r := vitalgate.Role(*role)
	if !auth.ValidRole(r) {
		return fmt.Errorf("--role must be admin, clinician, ehr-system or auditor (devices enroll over EST)")
	}
	var reg []string
	for _, s := range scopes {
		reg = append(reg, strings.Fields(s)...)
	}
	if _, err := auth.GrantScopes(r, reg, ""); err != nil {
		return fmt.Errorf("--scope: %s", vitalgate.ErrorMessage(err))
	}
	if len(patients) > 0 && r != vitalgate.RoleClinician {
		return fmt.Errorf("--patient (a care team) applies to clinicians only")
	}
	a, n, err := m.clientAdmin(ctx, *dir)
	if err != nil {
		return err
	}
	defer n.Close()
	siteList := strings.Split(*sites, ",")
	c := vitalgate.Client{ID: *id, Site: siteList[0], OtherSites: siteList[1:], Role: r, Scopes: reg, CreatedAt: m.Now().UTC().Truncate(time.Microsecond)}
	for _, p := range patients {
		if err := checkID("patient", p); err != nil {
			return err
		}
		c.PatientIndexes = append(c.PatientIndexes, n.vault.SitePatientIndex(c.Site, p))
	}
	if *jwksFile != "" {
		data, err := os.ReadFile(*jwksFile) // #nosec G304 -- the operator names the file
		if err != nil {
			return err
		}
		if _, err := auth.ParseJWKS(data); err != nil {
			return fmt.Errorf("--jwks: %s", vitalgate.ErrorMessage(err))
		}
		c.JWKS = data
	}
	secret, err := a.Add(ctx, c)
	if err != nil {
		return cliError(err)
	}
	if secret == "" {
		fmt.Fprintf(m.Stderr, "Registered client %s (role %s) with its public keys; it authenticates with private_key_jwt.\n", *id, r)
		return nil
	}
	fmt.Fprintf(m.Stderr, "Registered client %s (role %s). Its secret is on standard output, shown only now.\n", *id, r)
	fmt.Fprintln(m.Stdout, secret)
	return nil
}
