package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// Data dir layout. Every file under keys/ and every *.key file is secret (mode 0600).
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
	keysDir        = "keys"
	tokenKeyFile   = "token.key"
	dbFile         = "vitalgate.db"
	storeFile      = "store.json"
)

// storeConfig says which database a data dir uses. It is written by init.
type storeConfig struct {
	Driver string `json:"driver"`            // "sqlite" or "postgres"
	DSN    string `json:"dsn,omitempty"`     // postgres connection string (the file is 0600)
	DSNEnv string `json:"dsn_env,omitempty"` // or the environment variable that holds it
	Schema string `json:"schema,omitempty"`  // postgres schema (default: the search_path)
}

// parseStoreFlag reads init's --store value: "sqlite", a postgres:// or postgresql:// URL,
// or env:NAME for a PostgreSQL DSN read from the environment variable NAME at every start.
func parseStoreFlag(v string) (storeConfig, error) {
	switch {
	case v == "" || v == "sqlite":
		return storeConfig{Driver: "sqlite"}, nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return storeConfig{Driver: "postgres", DSN: v}, nil
	case strings.HasPrefix(v, "env:") && len(v) > 4:
		return storeConfig{Driver: "postgres", DSNEnv: v[4:]}, nil
	}
	return storeConfig{}, fmt.Errorf("--store must be sqlite, a postgres:// URL, or env:VARIABLE holding one")
}

// openStore opens the data dir's database.
func (m *Main) openStore(ctx context.Context, dir string) (vitalgate.Store, error) {
	var sc storeConfig
	data, err := os.ReadFile(filepath.Join(dir, storeFile)) // #nosec G304 -- data dir path
	switch {
	case errors.Is(err, fs.ErrNotExist):
		sc.Driver = "sqlite"
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, &sc); err != nil {
			return nil, fmt.Errorf("%s: %w", storeFile, err)
		}
	}
	switch sc.Driver {
	case "sqlite":
		return sqlite.Open(ctx, filepath.Join(dir, dbFile), sqlite.Options{})
	case "postgres":
		dsn := sc.DSN
		if sc.DSNEnv != "" {
			dsn = m.Getenv(sc.DSNEnv)
			if dsn == "" {
				return nil, fmt.Errorf("the PostgreSQL connection string is expected in the environment variable %s, which is empty", sc.DSNEnv)
			}
		}
		return postgres.Open(ctx, dsn, postgres.Options{Schema: sc.Schema, Now: m.Now})
	}
	return nil, fmt.Errorf("%s: unknown store driver %q", storeFile, sc.Driver)
}

// idPattern is FHIR's id syntax; device, patient and client ids must follow it.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

func checkID(kind, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%s id %q is not valid: use 1 to 64 letters, digits, '-' or '.'", kind, id)
	}
	return nil
}

// node is an opened data dir: what every command that works on stored data needs.
type node struct {
	dir   string
	ca    *pki.CA
	keys  *seal.Keyring
	store vitalgate.Store
	vault *vault.Vault
}

// openDataDir opens an initialised data dir.
func (m *Main) openDataDir(ctx context.Context, dir string) (*node, error) {
	if dir == "" {
		return nil, errors.New("--data is required (the directory `vitalgate init` created)")
	}
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("data dir %s does not exist: create it with `vitalgate init --data %s`", dir, dir)
	} else if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("data dir %s is readable by other users (mode %o): run `chmod 700 %s`", dir, st.Mode().Perm(), dir)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, caCertFile)) // #nosec G304 -- the CA certificate in the data dir the operator named with --data
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := readSecretFile(filepath.Join(dir, caKeyFile))
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	keys, err := vault.LoadKeyring(filepath.Join(dir, keysDir))
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	store, err := m.openStore(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	v := vault.New(store, keys, m.Now, nil)
	v.FollowKeyDir(filepath.Join(dir, keysDir), 0) // `keys rotate` takes effect without a restart
	return &node{dir: dir, ca: ca, keys: keys, store: store, vault: v}, nil
}

func (n *node) Close() error { return n.store.Close() }

// serverCertificate loads the HTTPS server certificate and key.
func (n *node) serverCertificate() (tls.Certificate, error) {
	keyPEM, err := readSecretFile(filepath.Join(n.dir, serverKeyFile))
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := os.ReadFile(filepath.Join(n.dir, serverCertFile))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read server certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load server certificate: %w", err)
	}
	return c, nil
}

// readSecretFile reads a key file, refusing one that other users could read.
func readSecretFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by other users (mode %o): run `chmod 600 %s`", path, st.Mode().Perm(), path)
	}
	return os.ReadFile(path) // #nosec G304 -- path is inside the operator's data dir
}

// writeFile writes a new file with the given mode, refusing to overwrite.
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode) // #nosec G304 -- data dir path
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// tokenKey loads the access-token signing key (ECDSA P-256), creating it on first use.
// Every node of a deployment needs the same file.
func (n *node) tokenKey() (*ecdsa.PrivateKey, error) {
	path := filepath.Join(n.dir, tokenKeyFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		key, err := pki.GenerateDeviceKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		pemKey, err := pki.MarshalKeyPEM(key)
		if err != nil {
			return nil, err
		}
		if err := writeFile(path, pemKey, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("write %s: %w", tokenKeyFile, err)
		}
	}
	data, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	key, err := pki.ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tokenKeyFile, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s is not an ECDSA key", tokenKeyFile)
	}
	return ec, nil
}
