package assess_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// testCA is a throwaway CA for test servers.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// MustCA returns a new ECDSA P-256 CA valid around now.
func MustCA(tb testing.TB, now time.Time) *testCA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "assess test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

// Pool returns a pool holding only the CA.
func (ca *testCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leafOptions describe a server certificate.
type leafOptions struct {
	key       crypto.Signer // default: a fresh ECDSA P-256 key
	notBefore time.Time
	notAfter  time.Time
	ips       []net.IP // default 127.0.0.1
	dnsNames  []string
}

// MustLeaf issues a server certificate and returns it as a tls.Certificate and parsed.
func (ca *testCA) MustLeaf(tb testing.TB, o leafOptions) (tls.Certificate, *x509.Certificate) {
	tb.Helper()
	if o.key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		o.key = k
	}
	if o.ips == nil && o.dnsNames == nil {
		o.ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "assess test server"},
		NotBefore: o.notBefore, NotAfter: o.notAfter, IPAddresses: o.ips, DNSNames: o.dnsNames,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, o.key.Public(), ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: o.key, Leaf: leaf}, leaf
}

// MustRSAKey returns an RSA key of the given size.
func MustRSAKey(tb testing.TB, bits int) *rsa.PrivateKey {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
