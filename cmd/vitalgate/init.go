package main

import (
	"context"
	"encoding/json"
	"fmt"

	vgnode "github.com/vitalgate/vitalgate/node"
)

func (m *Main) runInit(ctx context.Context, args []string) error {
	fs := m.flags("init", "init --data DIR [--host NAME]... [--fips] [--json]")
	dir := fs.String("data", "", "data directory to create (must not exist, or be empty)")
	var hosts stringList
	fs.Var(&hosts, "host", "host name or IP address for the server certificate (repeatable; default localhost, 127.0.0.1, ::1)")
	asJSON := fs.Bool("json", false, "print the admin client's credentials as JSON")
	storeFlag := fs.String("store", "sqlite", "database: sqlite (embedded, default), a postgres:// URL, or env:VARIABLE naming an environment variable that holds one")
	schema := fs.String("schema", "", "PostgreSQL schema for Vitalgate's tables (default: the connection's search_path)")
	fips := fs.Bool("fips", false, "make a FIPS 140-3 data dir: secrets hashed with PBKDF2-HMAC-SHA-256, every vitalgate process on it (this one too) run with GODEBUG=fips140=only")
	if err := parse(fs, args, false); err != nil {
		return err
	}
	if *dir == "" {
		fmt.Fprintln(m.Stderr, "--data is required")
		fs.Usage()
		return errUsage
	}
	if len(hosts) == 0 {
		hosts = stringList{"localhost", "127.0.0.1", "::1"}
	}
	sc, err := vgnode.ParseStoreFlag(*storeFlag)
	if err != nil {
		return err
	}
	sc.Schema = *schema
	res, err := vgnode.Init(ctx, *dir, vgnode.InitOptions{Hosts: hosts, Store: sc, Operator: operator(), FIPS: *fips}, m.env())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res) // #nosec G117 -- by design: init --json prints the first admin client's secret once, to the operator who ran it; only its hash is stored
	}
	fmt.Fprintf(m.Stderr, "Created data dir %s.\nThe first admin client is %q; its secret is on standard output, shown only now: store it safely.\n", res.DataDir, res.ClientID)
	fmt.Fprintln(m.Stdout, res.ClientSecret)
	if *fips {
		fmt.Fprintf(m.Stderr, "Next: GODEBUG=fips140=only vitalgate serve --data %s\n", res.DataDir)
		return nil
	}
	fmt.Fprintf(m.Stderr, "Next: vitalgate serve --data %s\n", res.DataDir)
	return nil
}
