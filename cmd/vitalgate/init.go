package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/vault"
)

// initResult is what init reports; the secret appears only here, once.
type initResult struct {
	DataDir      string `json:"data_dir"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	CACert       string `json:"ca_cert"`
}

func (m *Main) runInit(ctx context.Context, args []string) error {
	fs := m.flags("init", "init --data DIR [--host NAME]... [--json]")
	dir := fs.String("data", "", "data directory to create (must not exist, or be empty)")
	var hosts stringList
	fs.Var(&hosts, "host", "host name or IP address for the server certificate (repeatable; default localhost, 127.0.0.1, ::1)")
	asJSON := fs.Bool("json", false, "print the admin client's credentials as JSON")
	storeFlag := fs.String("store", "sqlite", "database: sqlite (embedded, default), a postgres:// URL, or env:VARIABLE naming an environment variable that holds one")
	schema := fs.String("schema", "", "PostgreSQL schema for Vitalgate's tables (default: the connection's search_path)")
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
	sc, err := parseStoreFlag(*storeFlag)
	if err != nil {
		return err
	}
	sc.Schema = *schema
	res, err := m.initDataDirWith(ctx, *dir, hosts, sc)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res) // #nosec G117 -- by design: init --json prints the first admin client's secret once, to the operator who ran it; only its hash is stored
	}
	fmt.Fprintf(m.Stderr, "Created data dir %s.\nThe first admin client's credentials follow. The secret is shown only now: store it safely.\n", res.DataDir)
	fmt.Fprintf(m.Stdout, "client_id: %s\nclient_secret: %s\n", res.ClientID, res.ClientSecret)
	fmt.Fprintf(m.Stderr, "Next: vitalgate serve --data %s\n", res.DataDir)
	return nil
}

// initDataDir creates a complete data dir. It refuses a directory that exists and is not
// empty, and removes what it created if a step fails.
func (m *Main) initDataDir(ctx context.Context, dir string, hosts []string) (res initResult, err error) {
	return m.initDataDirWith(ctx, dir, hosts, storeConfig{Driver: "sqlite"})
}

// initDataDirWith is initDataDir with a choice of database.
func (m *Main) initDataDirWith(ctx context.Context, dir string, hosts []string, sc storeConfig) (res initResult, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return res, err
	}
	created := false
	entries, rerr := os.ReadDir(dir)
	switch {
	case errors.Is(rerr, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return res, fmt.Errorf("create data dir: %w", err)
		}
		created = true
	case rerr != nil:
		return res, fmt.Errorf("data dir %s: %w", dir, rerr)
	case len(entries) > 0:
		return res, fmt.Errorf("data dir %s already exists and is not empty; refusing to touch it", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- dir is the data directory: owner-only rwx, which needs x to be traversed
		return res, err
	}
	defer func() {
		if err != nil {
			if created {
				_ = os.RemoveAll(dir)
			} else {
				ents, _ := os.ReadDir(dir)
				for _, e := range ents {
					_ = os.RemoveAll(filepath.Join(dir, e.Name()))
				}
			}
		}
	}()

	now := m.Now()
	ca, err := pki.NewCA("Vitalgate CA", now, rand.Reader)
	if err != nil {
		return res, fmt.Errorf("create CA: %w", err)
	}
	caCert, caKey, err := ca.MarshalPEM()
	if err != nil {
		return res, err
	}
	srvCert, srvKey, err := ca.IssueServer(hosts, now, 0, rand.Reader)
	if err != nil {
		return res, fmt.Errorf("issue server certificate: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{caCertFile, caCert, 0o644}, {caKeyFile, caKey, 0o600},
		{serverCertFile, srvCert, 0o644}, {serverKeyFile, srvKey, 0o600},
	} {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return res, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	if _, err := vault.CreateKeyring(filepath.Join(dir, keysDir), rand.Reader); err != nil {
		return res, fmt.Errorf("create keys: %w", err)
	}
	scJSON, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return res, err
	}
	if err := writeFile(filepath.Join(dir, storeFile), append(scJSON, '\n'), 0o600); err != nil {
		return res, err
	}
	store, err := m.openStore(ctx, dir)
	if err != nil {
		return res, fmt.Errorf("create database: %w", err)
	}
	defer store.Close()
	if _, err := (&node{dir: dir}).tokenKey(); err != nil {
		return res, fmt.Errorf("create token signing key: %w", err)
	}
	secret, err := auth.NewSecret(rand.Reader)
	if err != nil {
		return res, err
	}
	hash, err := auth.HashSecret(secret, auth.DefaultHashParams, rand.Reader)
	if err != nil {
		return res, err
	}
	n := &node{dir: dir, ca: ca}
	if _, err := n.auditSigner(); err != nil {
		return res, fmt.Errorf("create audit signing key: %w", err)
	}
	entry := audit.Entry{Time: now.UTC(), Action: audit.ActionCreate, Type: "admin", Subtype: "init", AgentType: audit.AgentOperator,
		AgentID: operator(), Outcome: audit.OutcomeSuccess, Resources: []string{"Client/admin"}, OutcomeDesc: "data dir created"}
	if err := store.CreateClient(ctx, vitalgate.Client{
		ID: "admin", Role: vitalgate.RoleAdmin, SecretHash: hash, CreatedAt: now.UTC().Truncate(time.Microsecond),
	}, entry.Marshal()); err != nil {
		return res, fmt.Errorf("create admin client: %w", err)
	}
	return initResult{DataDir: dir, ClientID: "admin", ClientSecret: secret, CACert: filepath.Join(dir, caCertFile)}, nil
}
