package node

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/pki"
)

// AuditOrigin names this deployment's log in its checkpoints: stable across nodes that
// share the data-dir keys (it is derived from the CA certificate).
func (n *Node) AuditOrigin() string { return auditOrigin(n.CA) }

func auditOrigin(ca *pki.CA) string {
	sum := sha256.Sum256(ca.Certificate().Raw)
	return "vitalgate/" + hex.EncodeToString(sum[:8])
}

// AuditSigner loads the checkpoint signing key, creating it (and audit.pub) on first use.
func (n *Node) AuditSigner() (*audit.Signer, error) { return auditSigner(n.Dir, n.CA) }

func auditSigner(dir string, ca *pki.CA) (*audit.Signer, error) {
	path := filepath.Join(dir, AuditKeyFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		key, err := audit.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		pemKey, err := audit.MarshalPrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := writeFile(path, pemKey, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("write %s: %w", AuditKeyFile, err)
		}
	}
	data, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	key, err := audit.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", AuditKeyFile, err)
	}
	signer, err := audit.NewSigner(auditOrigin(ca), key)
	if err != nil {
		return nil, err
	}
	pub := filepath.Join(dir, AuditPubFile)
	if _, err := os.Stat(pub); errors.Is(err, fs.ErrNotExist) {
		if err := writeFile(pub, []byte(signer.Verifier().String()+"\n"), 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("write %s: %w", AuditPubFile, err)
		}
	}
	return signer, nil
}

// AuditLog returns the node's audit log; nodeName names the writer in its entries (serve
// uses HOST/ADDR, the CLI "cli").
func (n *Node) AuditLog(nodeName string) (*audit.Log, error) {
	signer, err := n.AuditSigner()
	if err != nil {
		return nil, err
	}
	return audit.NewLog(n.Store, signer, n.AuditOrigin(), nodeName, n.env.Now), nil
}

// ReadVerifier reads a verifier key file (audit.pub).
func ReadVerifier(path string) (audit.Verifier, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the file
	if err != nil {
		return audit.Verifier{}, err
	}
	return audit.ParseVerifierKey(strings.TrimSpace(string(data)))
}
