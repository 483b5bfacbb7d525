package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"slices"

	"github.com/vitalgate/vitalgate"
)

// PEM block types.
const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
	pemECKey       = "EC PRIVATE KEY"
)

// GenerateDeviceKey returns a new ECDSA P-256 key, the key type Vitalgate devices use.
func GenerateDeviceKey(rnd io.Reader) (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), randOrDefault(rnd))
	if err != nil {
		return nil, vitalgate.Internal(err, "generate device key")
	}
	return key, nil
}

// MarshalKeyPEM returns key as an unencrypted PEM PKCS#8 "PRIVATE KEY" block. key must be
// an *ecdsa.PrivateKey, ed25519.PrivateKey or *rsa.PrivateKey.
func MarshalKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, vitalgate.Internal(err, "marshal private key")
	}
	return pemEncode(pemPrivateKey, der), nil
}

// ParseKeyPEM reads the first private key in keyPEM: a PKCS#8 "PRIVATE KEY" block or a
// SEC 1 "EC PRIVATE KEY" block. Errors: EINVALID.
func ParseKeyPEM(keyPEM []byte) (crypto.Signer, error) {
	for block, rest := pem.Decode(keyPEM); block != nil; block, rest = pem.Decode(rest) {
		switch block.Type {
		case pemPrivateKey:
			key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, &vitalgate.Error{Code: vitalgate.EINVALID, Message: "private key does not parse", Err: err}
			}
			signer, ok := key.(crypto.Signer)
			if !ok {
				return nil, vitalgate.Errorf(vitalgate.EINVALID, "private key type is not supported")
			}
			return signer, nil
		case pemECKey:
			key, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, &vitalgate.Error{Code: vitalgate.EINVALID, Message: "private key does not parse", Err: err}
			}
			return key, nil
		}
	}
	return nil, vitalgate.Errorf(vitalgate.EINVALID, "no PEM private key found")
}

// MarshalCertPEM returns cert as a PEM "CERTIFICATE" block.
func MarshalCertPEM(cert *x509.Certificate) []byte {
	return pemEncode(pemCertificate, cert.Raw)
}

// ParseCertPEM reads the first "CERTIFICATE" block in certPEM. Errors: EINVALID.
func ParseCertPEM(certPEM []byte) (*x509.Certificate, error) {
	for block, rest := pem.Decode(certPEM); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != pemCertificate {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &vitalgate.Error{Code: vitalgate.EINVALID, Message: "certificate does not parse", Err: err}
		}
		return cert, nil
	}
	return nil, vitalgate.Errorf(vitalgate.EINVALID, "no PEM certificate found")
}

// SerialHex returns the serial number of cert as lowercase hexadecimal without leading
// zeros: the key of a certificate in the revocation table.
func SerialHex(cert *x509.Certificate) string {
	if cert == nil || cert.SerialNumber == nil {
		return ""
	}
	return fmt.Sprintf("%x", cert.SerialNumber)
}

// DeviceIDFromCert returns the device id (the subject common name) of a device
// certificate: one that allows TLS client authentication and is not a CA. It reports false
// for any other certificate. It does not verify the certificate: see (*CA).VerifyClient.
func DeviceIDFromCert(cert *x509.Certificate) (string, bool) {
	if cert == nil || cert.IsCA || cert.Subject.CommonName == "" {
		return "", false
	}
	if !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", false
	}
	return cert.Subject.CommonName, true
}

// IDevIDDeviceID returns the device id a manufacturer certificate (IDevID, IEEE 802.1AR)
// names: its subject serialNumber, 802.1AR's unique device identifier, or its common name
// when it has none.
func IDevIDDeviceID(cert *x509.Certificate) string {
	if cert.Subject.SerialNumber != "" {
		return cert.Subject.SerialNumber
	}
	return cert.Subject.CommonName
}

// pemEncode returns der as a PEM block of type typ.
func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
