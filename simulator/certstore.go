package simulator

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vitalgate/vitalgate/pki"
)

// certFiles returns where a device keeps its key and certificate in CertDir ("" when
// CertDir is not set).
func (d *Device) certFiles() (certFile, keyFile string) {
	if d.s.CertDir == "" {
		return "", ""
	}
	return filepath.Join(d.s.CertDir, d.conf.ID+".crt"), filepath.Join(d.s.CertDir, d.conf.ID+".key")
}

// loadSaved installs the certificate saved in CertDir by an earlier run, if there is one
// that is for this device, chains to the trusted CA and is valid now, so that a rerun does
// not spend the one-time enrollment secret again. It reports whether it did.
func (d *Device) loadSaved() (bool, error) {
	certFile, keyFile := d.certFiles()
	if certFile == "" {
		return false, nil
	}
	tc, err := tls.LoadX509KeyPair(certFile, keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("simulator: device %s: saved certificate %s: %w", d.conf.ID, certFile, err)
	}
	var certs []*x509.Certificate
	for _, der := range tc.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return false, fmt.Errorf("simulator: device %s: saved certificate %s: %w", d.conf.ID, certFile, err)
		}
		certs = append(certs, c)
	}
	signer, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return false, nil
	}
	checked, err := d.checkIssued("saved certificate", certs, signer)
	if err != nil {
		return false, nil // for another CA, another device or expired: enroll afresh
	}
	d.cert.Store(checked)
	d.transport.CloseIdleConnections()
	return true, nil
}

// save writes the current key and certificate to CertDir (mode 0600, the directory 0700),
// replacing what an earlier enrollment left there.
func (d *Device) save() error {
	certFile, keyFile := d.certFiles()
	tc := d.cert.Load()
	if certFile == "" || tc == nil {
		return nil
	}
	signer, ok := tc.PrivateKey.(crypto.Signer)
	if !ok {
		return nil
	}
	keyPEM, err := pki.MarshalKeyPEM(signer)
	if err != nil {
		return err
	}
	var certPEM []byte
	for _, der := range tc.Certificate {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if err := os.MkdirAll(d.s.CertDir, 0o700); err != nil {
		return fmt.Errorf("simulator: device %s: %w", d.conf.ID, err)
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{keyFile, keyPEM}, {certFile, certPEM}} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return fmt.Errorf("simulator: device %s: %w", d.conf.ID, err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			return fmt.Errorf("simulator: device %s: %w", d.conf.ID, err)
		}
	}
	return nil
}
