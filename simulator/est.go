package simulator

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/vitalgate/vitalgate/pki"
)

// mediaPKCS7 is the media type of EST certs-only answers (RFC 7030 §4.1.3, §4.2.3).
const mediaPKCS7 = "application/pkcs7-mime"

// CACerts fetches /.well-known/est/cacerts (RFC 7030 §4.1) and returns the certificates it
// holds. The TLS connection is verified against the CA given out of band, and the answer
// must hold a CA certificate that this CA vouches for (the CA itself, or one it issued);
// otherwise CACerts fails.
func (d *Device) CACerts(ctx context.Context) ([]*x509.Certificate, error) {
	resp, err := d.do(ctx, http.MethodGet, PathCACerts, "", nil, false)
	if err != nil {
		return nil, fmt.Errorf("simulator: device %s: cacerts: %w", d.conf.ID, err)
	}
	certs, err := d.certsOnly("cacerts", resp)
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if !c.IsCA {
			continue
		}
		_, err := c.Verify(x509.VerifyOptions{
			Roots:       d.s.CAPool,
			CurrentTime: d.s.Now(),
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err == nil {
			return certs, nil
		}
	}
	return nil, fmt.Errorf("simulator: device %s: cacerts: the server's CA certificates are not the CA given out of band", d.conf.ID)
}

// Enroll enrolls the device over EST: it fetches and checks cacerts, generates a P-256 key,
// sends a PKCS#10 request (CN = device id) to simpleenroll with HTTP Basic id:secret, checks
// the certificate it gets back (its key, its common name, a chain to the trusted CA, client
// authentication usage) and keeps certificate and key in memory for mutual TLS. Errors from
// the server are *StatusError with the OperationOutcome diagnostics.
func (d *Device) Enroll(ctx context.Context) error {
	d.estMu.Lock()
	defer d.estMu.Unlock()
	if _, err := d.CACerts(ctx); err != nil {
		return err
	}
	if ok, err := d.loadSaved(); ok || err != nil {
		return err // a rerun reuses the certificate it has and keeps the secret unspent
	}
	if err := d.enroll(ctx, PathSimpleEnroll, "simpleenroll", true); err != nil {
		return err
	}
	return d.save()
}

// Reenroll renews the device certificate over EST simplereenroll (RFC 7030 §4.2.2), over
// mutual TLS with the current certificate and with a fresh key. On success new connections
// use the new certificate; on failure the current one stays in use.
func (d *Device) Reenroll(ctx context.Context) error {
	d.estMu.Lock()
	defer d.estMu.Unlock()
	if d.cert.Load() == nil {
		return ErrNotEnrolled
	}
	if err := d.enroll(ctx, PathSimpleReenroll, "simplereenroll", false); err != nil {
		return err
	}
	return d.save()
}

// enroll runs one simpleenroll or simplereenroll exchange and installs the certificate.
func (d *Device) enroll(ctx context.Context, path, op string, basicAuth bool) error {
	key, err := pki.GenerateDeviceKey(d.s.Rand)
	if err != nil {
		return fmt.Errorf("simulator: device %s: %s: %w", d.conf.ID, op, err)
	}
	csr, err := pki.NewCSR(d.conf.ID, key, d.s.Rand)
	if err != nil {
		return fmt.Errorf("simulator: device %s: %s: %w", d.conf.ID, op, err)
	}
	resp, err := d.do(ctx, http.MethodPost, path, ContentTypePKCS10, pki.EncodeBase64(csr), basicAuth)
	if err != nil {
		return fmt.Errorf("simulator: device %s: %s: %w", d.conf.ID, op, err)
	}
	certs, err := d.certsOnly(op, resp)
	if err != nil {
		return err
	}
	tc, err := d.checkIssued(op, certs, key)
	if err != nil {
		return err
	}
	d.cert.Store(tc)
	// Connections opened before hold the old identity (or none): let new ones carry this one.
	d.transport.CloseIdleConnections()
	return nil
}

// certsOnly checks an EST certs-only answer and returns its certificates.
func (d *Device) certsOnly(op string, resp response) ([]*x509.Certificate, error) {
	if resp.status != http.StatusOK {
		return nil, &StatusError{Op: op, StatusCode: resp.status, Diagnostics: diagnosticsOf(resp.body)}
	}
	ct := resp.header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != mediaPKCS7 {
		return nil, fmt.Errorf("simulator: device %s: %s: answer has Content-Type %q, want %s", d.conf.ID, op, ct, mediaPKCS7)
	}
	if st, ok := params["smime-type"]; ok && st != "certs-only" {
		return nil, fmt.Errorf("simulator: device %s: %s: answer has smime-type %q, want certs-only", d.conf.ID, op, st)
	}
	der, err := pki.DecodeBase64(resp.body)
	if err != nil {
		return nil, fmt.Errorf("simulator: device %s: %s: %w", d.conf.ID, op, err)
	}
	certs, err := pki.ParseCertsOnly(der)
	if err != nil {
		return nil, fmt.Errorf("simulator: device %s: %s: %w", d.conf.ID, op, err)
	}
	return certs, nil
}

// checkIssued finds the certificate issued for key among certs, checks it and returns it as
// a TLS client certificate with its intermediates.
func (d *Device) checkIssued(op string, certs []*x509.Certificate, key crypto.Signer) (*tls.Certificate, error) {
	type publicKey interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(publicKey)
	if !ok {
		return nil, errors.New("simulator: unsupported key type")
	}
	var leaf *x509.Certificate
	inter := x509.NewCertPool()
	for _, c := range certs {
		if leaf == nil && pub.Equal(c.PublicKey) {
			leaf = c
			continue
		}
		inter.AddCert(c)
	}
	if leaf == nil {
		return nil, fmt.Errorf("simulator: device %s: %s: no certificate for the requested key", d.conf.ID, op)
	}
	if leaf.Subject.CommonName != d.conf.ID {
		return nil, fmt.Errorf("simulator: device %s: %s: certificate is for %q", d.conf.ID, op, leaf.Subject.CommonName)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         d.s.CAPool,
		Intermediates: inter,
		CurrentTime:   d.s.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("simulator: device %s: %s: issued certificate does not verify: %w", d.conf.ID, op, err)
	}
	chain := [][]byte{leaf.Raw}
	if c := chains[0]; len(c) > 2 {
		for _, ic := range c[1 : len(c)-1] {
			chain = append(chain, ic.Raw)
		}
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}, nil
}
