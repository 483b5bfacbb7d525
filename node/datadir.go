// Package node is a Vitalgate node: its data dir (layout, keys, store.json), the store and
// keys it opens, and the servers it runs (HTTPS, MLLP/TLS, metrics, audit forwarding). The
// serve, demo and bench commands share it, so that what they run is one assembly; the
// commands themselves only parse flags and call it.
//
// Every service a node runs is built by a function of its own (newIngest, newAccess,
// newTokens, ... in services.go), so that replacing one collaborator is a local edit.
package node

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
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/seal"
	"github.com/vitalgate/vitalgate/sqlite"
	"github.com/vitalgate/vitalgate/vault"
)

// Data dir layout. Every file under keys/ and every *.key file is secret (mode 0600).
const (
	CACertFile       = "ca.crt"
	CAKeyFile        = "ca.key"
	ServerCertFile   = "server.crt"
	ServerKeyFile    = "server.key"
	KeysDir          = "keys"
	TokenKeyFile     = "token.key"
	AuditKeyFile     = "audit.key" // Ed25519 checkpoint signing key (secret)
	AuditPubFile     = "audit.pub" // its verifier key: the one line an auditor needs
	DBFile           = "vitalgate.db"
	StoreFile        = "store.json"
	SyslogCursorFile = "syslog.cursor" // the syslog forwarder's position in the audit log
)

// Env is what a node takes from its surroundings. A nil field means the real one.
type Env struct {
	Now    func() time.Time    // the clock (default time.Now)
	Getenv func(string) string // the environment, for store.json's dsn_env (default os.Getenv)
}

func (e Env) withDefaults() Env {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	return e
}

// StoreConfig says which database a data dir uses: the contents of store.json, written by
// Init.
type StoreConfig struct {
	Driver string `json:"driver"`            // "sqlite" or "postgres"
	DSN    string `json:"dsn,omitempty"`     // postgres connection string (the file is 0600)
	DSNEnv string `json:"dsn_env,omitempty"` // or the environment variable that holds it
	Schema string `json:"schema,omitempty"`  // postgres schema (default: the search_path)
}

// ParseStoreFlag reads init's --store value: "sqlite", a postgres:// or postgresql:// URL,
// or env:NAME for a PostgreSQL DSN read from the environment variable NAME at every start.
func ParseStoreFlag(v string) (StoreConfig, error) {
	switch {
	case v == "" || v == "sqlite":
		return StoreConfig{Driver: "sqlite"}, nil
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		return StoreConfig{Driver: "postgres", DSN: v}, nil
	case strings.HasPrefix(v, "env:") && len(v) > 4:
		return StoreConfig{Driver: "postgres", DSNEnv: v[4:]}, nil
	}
	return StoreConfig{}, fmt.Errorf("--store must be sqlite, a postgres:// URL, or env:VARIABLE holding one")
}

// Open opens the database sc describes for the data dir dir (SQLite: DIR/vitalgate.db).
func (sc StoreConfig) Open(ctx context.Context, dir string, env Env) (vitalgate.Store, error) {
	env = env.withDefaults()
	switch sc.Driver {
	case "sqlite":
		return sqlite.Open(ctx, filepath.Join(dir, DBFile), sqlite.Options{})
	case "postgres":
		dsn := sc.DSN
		if sc.DSNEnv != "" {
			dsn = env.Getenv(sc.DSNEnv)
			if dsn == "" {
				return nil, fmt.Errorf("the PostgreSQL connection string is expected in the environment variable %s, which is empty", sc.DSNEnv)
			}
		}
		return postgres.Open(ctx, dsn, postgres.Options{Schema: sc.Schema, Now: env.Now})
	}
	return nil, fmt.Errorf("%s: unknown store driver %q", StoreFile, sc.Driver)
}

// OpenStore opens the data dir's database as its store.json says (SQLite when there is
// none).
func OpenStore(ctx context.Context, dir string, env Env) (vitalgate.Store, error) {
	sc := StoreConfig{Driver: "sqlite"}
	data, err := os.ReadFile(filepath.Join(dir, StoreFile)) // #nosec G304 -- data dir path
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		sc = StoreConfig{}
		if err := json.Unmarshal(data, &sc); err != nil {
			return nil, fmt.Errorf("%s: %w", StoreFile, err)
		}
	}
	return sc.Open(ctx, dir, env)
}

// Node is an opened data dir: what every command that works on stored data needs, and
// what Serve runs on.
type Node struct {
	Dir   string // absolute or as given to Open
	CA    *pki.CA
	Keys  *seal.Keyring
	Store vitalgate.Store
	Vault *vault.Vault
	// Crypto is the data dir's cryptographic mode (crypto.json): how its secrets are hashed
	// and whether it is a FIPS data dir. Open has checked that this process's FIPS 140-3
	// mode agrees with it.
	Crypto CryptoRecord
	env    Env
}

// Open opens an initialised data dir: it checks that the directory is the owner's alone and
// that this process's FIPS 140-3 mode agrees with the data dir's record (crypto.json: a
// FIPS data dir needs GODEBUG=fips140=only, a standard one cannot run with it), loads the
// CA and the keyring and opens the store.
func Open(ctx context.Context, dir string, env Env) (*Node, error) {
	env = env.withDefaults()
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
	crypto, err := ReadCryptoRecord(dir)
	if err != nil {
		return nil, err
	}
	if err := crypto.Check(dir, ProcessFIPSMode()); err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile)) // #nosec G304 -- the CA certificate in the data dir the operator named with --data
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	keyPEM, err := readSecretFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	keys, err := vault.LoadKeyring(filepath.Join(dir, KeysDir))
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	store, err := OpenStore(ctx, dir, env)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	v := vault.New(store, keys, env.Now, nil)
	v.FollowKeyDir(filepath.Join(dir, KeysDir), 0) // `keys rotate` takes effect without a restart
	return &Node{Dir: dir, CA: ca, Keys: keys, Store: store, Vault: v, Crypto: crypto, env: env}, nil
}

// HashParams returns the algorithm and parameters of the data dir's new secret hashes
// (argon2id, or PBKDF2-HMAC-SHA-256 in a FIPS data dir).
func (n *Node) HashParams() auth.HashParams { return n.Crypto.HashParams() }

// Close closes the store.
func (n *Node) Close() error { return n.Store.Close() }

// Now returns the node's clock reading.
func (n *Node) Now() time.Time { return n.env.Now() }

// ServerCertificate loads the HTTPS server certificate and key.
func (n *Node) ServerCertificate() (tls.Certificate, error) {
	keyPEM, err := readSecretFile(filepath.Join(n.Dir, ServerKeyFile))
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := os.ReadFile(filepath.Join(n.Dir, ServerCertFile)) // #nosec G304 -- data dir path
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read server certificate: %w", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("load server certificate: %w", err)
	}
	return c, nil
}

// TokenKey loads the access-token signing key (ECDSA P-256), creating it on first use.
// Every node of a deployment needs the same file.
func (n *Node) TokenKey() (*ecdsa.PrivateKey, error) { return tokenKey(n.Dir) }

func tokenKey(dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, TokenKeyFile)
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
			return nil, fmt.Errorf("write %s: %w", TokenKeyFile, err)
		}
	}
	data, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	key, err := pki.ParseKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", TokenKeyFile, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s is not an ECDSA key", TokenKeyFile)
	}
	return ec, nil
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
