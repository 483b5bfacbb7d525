package main

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
)

// Audit key files: the Ed25519 checkpoint signing key (secret) and its verifier key, the one
// line an auditor needs to verify the log offline.
const (
	auditKeyFile = "audit.key"
	auditPubFile = "audit.pub"
)

// auditOrigin names this deployment's log in its checkpoints: stable across nodes that share
// the data-dir keys (it is derived from the CA certificate).
func (n *node) auditOrigin() string {
	sum := sha256.Sum256(n.ca.Certificate().Raw)
	return "vitalgate/" + hex.EncodeToString(sum[:8])
}

// auditSigner loads the checkpoint signing key, creating it (and audit.pub) on first use.
func (n *node) auditSigner() (*audit.Signer, error) {
	path := filepath.Join(n.dir, auditKeyFile)
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
			return nil, fmt.Errorf("write %s: %w", auditKeyFile, err)
		}
	}
	data, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	key, err := audit.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", auditKeyFile, err)
	}
	signer, err := audit.NewSigner(n.auditOrigin(), key)
	if err != nil {
		return nil, err
	}
	pub := filepath.Join(n.dir, auditPubFile)
	if _, err := os.Stat(pub); errors.Is(err, fs.ErrNotExist) {
		if err := writeFile(pub, []byte(signer.Verifier().String()+"\n"), 0o644); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("write %s: %w", auditPubFile, err)
		}
	}
	return signer, nil
}

// auditLog returns the node's audit log.
func (m *Main) auditLog(n *node, nodeName string) (*audit.Log, error) {
	signer, err := n.auditSigner()
	if err != nil {
		return nil, err
	}
	return audit.NewLog(n.store, signer, n.auditOrigin(), nodeName, m.Now), nil
}

// readVerifier reads a verifier key file (audit.pub).
func readVerifier(path string) (audit.Verifier, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the file
	if err != nil {
		return audit.Verifier{}, err
	}
	return audit.ParseVerifierKey(strings.TrimSpace(string(data)))
}

// operator returns the name of the local operator for CLI audit entries.
func operator() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "operator"
}
