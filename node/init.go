package node

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

// InitOptions are the choices of a new data dir.
type InitOptions struct {
	Hosts    []string    // names and addresses of the server certificate (default localhost, 127.0.0.1, ::1)
	Store    StoreConfig // the database (default SQLite in the data dir)
	Operator string      // who runs init, for its audit entry (default "operator")
	// FIPS makes a FIPS data dir (init --fips): secrets hashed with PBKDF2-HMAC-SHA-256
	// instead of argon2id, and every process on it must run with GODEBUG=fips140=only
	// (Init itself too, so that its keys come from the FIPS module in its approved mode).
	FIPS bool
}

// InitResult is what Init reports; the secret appears only here, once.
type InitResult struct {
	DataDir      string `json:"data_dir"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	CACert       string `json:"ca_cert"`
}

// Init creates a complete data dir (mode 0700): the record of its cryptographic mode
// (crypto.json), CA, server certificate, keyring, store.json, database, token and audit
// signing keys and the first admin client. It refuses a FIPS data dir unless the process
// runs with GODEBUG=fips140=only, and a standard one if it does. It
// refuses a directory that exists and is not empty, and removes what it created if a step
// fails.
func Init(ctx context.Context, dir string, opt InitOptions, env Env) (res InitResult, err error) {
	env = env.withDefaults()
	if len(opt.Hosts) == 0 {
		opt.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if opt.Store.Driver == "" {
		opt.Store.Driver = "sqlite"
	}
	if opt.Operator == "" {
		opt.Operator = "operator"
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return res, err
	}
	crypto := NewCryptoRecord(opt.FIPS)
	if err := crypto.Check(dir, ProcessFIPSMode()); err != nil {
		if opt.FIPS {
			return res, fmt.Errorf("init --fips must itself run in FIPS 140-3 mode: run it with the environment variable GODEBUG=fips140=only")
		}
		return res, fmt.Errorf("this process runs with GODEBUG=fips140=only, where argon2id is refused: make a FIPS data dir with `vitalgate init --fips`, or run without fips140=only")
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

	if err := writeCryptoRecord(dir, crypto); err != nil {
		return res, err
	}
	now := env.Now()
	ca, err := writePKI(dir, opt.Hosts, now)
	if err != nil {
		return res, err
	}
	if _, err := vault.CreateKeyring(filepath.Join(dir, KeysDir), rand.Reader); err != nil {
		return res, fmt.Errorf("create keys: %w", err)
	}
	scJSON, err := json.MarshalIndent(opt.Store, "", "  ")
	if err != nil {
		return res, err
	}
	if err := writeFile(filepath.Join(dir, StoreFile), append(scJSON, '\n'), 0o600); err != nil {
		return res, err
	}
	store, err := opt.Store.Open(ctx, dir, env)
	if err != nil {
		return res, fmt.Errorf("create database: %w", err)
	}
	defer store.Close()
	if _, err := tokenKey(dir); err != nil {
		return res, fmt.Errorf("create token signing key: %w", err)
	}
	if _, err := updateOnlineKeys(dir); err != nil {
		return res, fmt.Errorf("create update signing keys: %w", err)
	}
	if _, err := auditSigner(dir, ca); err != nil {
		return res, fmt.Errorf("create audit signing key: %w", err)
	}
	secret, err := createAdminClient(ctx, store, opt.Operator, crypto.HashParams(), now)
	if err != nil {
		return res, err
	}
	return InitResult{DataDir: dir, ClientID: "admin", ClientSecret: secret, CACert: filepath.Join(dir, CACertFile)}, nil
}

// writePKI creates the CA and the server certificate for hosts and writes them with their
// keys into dir.
func writePKI(dir string, hosts []string, now time.Time) (*pki.CA, error) {
	ca, err := pki.NewCA("Vitalgate CA", now, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	caCert, caKey, err := ca.MarshalPEM()
	if err != nil {
		return nil, err
	}
	srvCert, srvKey, err := ca.IssueServer(hosts, now, 0, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue server certificate: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CACertFile, caCert, 0o644}, {CAKeyFile, caKey, 0o600},
		{ServerCertFile, srvCert, 0o644}, {ServerKeyFile, srvKey, 0o600},
	} {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return ca, nil
}

// createAdminClient registers the first admin client ("admin") with a new secret and
// returns the secret.
func createAdminClient(ctx context.Context, store vitalgate.Store, operator string, hp auth.HashParams, now time.Time) (string, error) {
	secret, err := auth.NewSecret(rand.Reader)
	if err != nil {
		return "", err
	}
	hash, err := auth.HashSecret(secret, hp, rand.Reader)
	if err != nil {
		return "", err
	}
	entry := audit.Entry{Time: now.UTC(), Action: audit.ActionCreate, Type: "admin", Subtype: "init", AgentType: audit.AgentOperator,
		AgentID: operator, Outcome: audit.OutcomeSuccess, Resources: []string{"Client/admin"}, OutcomeDesc: "data dir created"}
	if err := store.CreateClient(ctx, vitalgate.Client{
		ID: "admin", Role: vitalgate.RoleAdmin, SecretHash: hash, CreatedAt: now.UTC().Truncate(time.Microsecond),
	}, entry.Marshal()); err != nil {
		return "", fmt.Errorf("create admin client: %w", err)
	}
	return secret, nil
}
