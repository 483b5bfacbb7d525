package backup

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
)

// The HPKE suite of every backup (RFC 9180 identifiers): DHKEM(P-256, HKDF-SHA256),
// HKDF-SHA256, AES-256-GCM. Each is FIPS 140-3 approved (SP 800-56A ECDH, SP 800-56C HKDF,
// SP 800-38D GCM); X25519 and ChaCha20-Poly1305, which HPKE also offers, are not.
const (
	KEMID  uint16 = 0x0010
	KDFID  uint16 = 0x0001
	AEADID uint16 = 0x0002
)

// Recovery key files that `vitalgate backup keys init` writes to the operator's directory
// (never to a data dir).
const (
	RecoveryKeyFile = "recovery.key" // PKCS #8 ECDH P-256 private key (secret, mode 0600)
	RecoveryPubFile = "recovery.pub" // PKIX public key: what `vitalgate backup --recovery-pub` takes
)

func suite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.DHKEM(ecdh.P256()), hpke.HKDFSHA256(), hpke.AES256GCM()
}

// GenerateRecoveryKey returns a new recovery key pair as PEM: the private key (PKCS #8) and
// the public key (PKIX). rnd nil means crypto/rand.
func GenerateRecoveryKey(rnd io.Reader) (priv, pub []byte, err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	k, err := ecdh.P256().GenerateKey(rnd)
	if err != nil {
		return nil, nil, fmt.Errorf("backup: generate recovery key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, fmt.Errorf("backup: encode recovery key: %w", err)
	}
	pder, err := x509.MarshalPKIXPublicKey(k.PublicKey())
	if err != nil {
		return nil, nil, fmt.Errorf("backup: encode recovery public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), nil
}

func onePEM(data []byte, typ string) ([]byte, error) {
	b, rest := pem.Decode(data)
	if b == nil || b.Type != typ {
		return nil, fmt.Errorf("no PEM %s block", typ)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("data after the PEM %s block", typ)
	}
	return b.Bytes, nil
}

// ParseRecoveryPublicKey reads a recovery.pub file.
func ParseRecoveryPublicKey(data []byte) (hpke.PublicKey, error) {
	der, err := onePEM(data, "PUBLIC KEY")
	if err != nil {
		return nil, fmt.Errorf("recovery public key: %w (give the recovery.pub that `vitalgate backup keys init` wrote)", err)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("recovery public key: %w", err)
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("recovery public key: not a P-256 key")
	}
	ek, err := ec.ECDH()
	if err != nil {
		return nil, fmt.Errorf("recovery public key: %w", err)
	}
	return hpke.NewDHKEMPublicKey(ek)
}

// ParseRecoveryKey reads a recovery.key file.
func ParseRecoveryKey(data []byte) (hpke.PrivateKey, error) {
	der, err := onePEM(data, "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("recovery key: %w (give the recovery.key that `vitalgate backup keys init` wrote)", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("recovery key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("recovery key: not a P-256 key")
	}
	ek, err := ec.ECDH()
	if err != nil {
		return nil, fmt.Errorf("recovery key: %w", err)
	}
	return hpke.NewDHKEMPrivateKey(ek)
}
