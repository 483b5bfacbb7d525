package pki_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// MustCA creates a CA at t0.
func MustCA(tb testing.TB) *pki.CA {
	tb.Helper()
	ca, err := pki.NewCA("Vitalgate Test Root", t0, rand.Reader)
	if err != nil {
		tb.Fatalf("NewCA: %v", err)
	}
	return ca
}

// MustKey generates a key of the named kind: "p256", "p384", "p224", "ed25519", "rsa1024",
// "rsa2048".
func MustKey(tb testing.TB, kind string) crypto.Signer {
	tb.Helper()
	var key crypto.Signer
	var err error
	switch kind {
	case "p256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p224":
		key, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "ed25519":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "rsa1024":
		key, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		tb.Fatalf("generate %s key: %v", kind, err)
	}
	return key
}

// MustCSR returns a parsed CSR for cn signed by key.
func MustCSR(tb testing.TB, cn string, key crypto.Signer) *x509.CertificateRequest {
	tb.Helper()
	der, err := pki.NewCSR(cn, key, rand.Reader)
	if err != nil {
		tb.Fatalf("NewCSR: %v", err)
	}
	csr, err := pki.ParseCSR(pki.EncodeBase64(der))
	if err != nil {
		tb.Fatalf("ParseCSR: %v", err)
	}
	return csr
}

// MustDevice issues a device certificate for id at now with the default validity.
func MustDevice(tb testing.TB, ca *pki.CA, id string, now time.Time) *x509.Certificate {
	tb.Helper()
	cert, err := ca.IssueDevice(MustCSR(tb, id, MustKey(tb, "p256")), id, now, 0, rand.Reader)
	if err != nil {
		tb.Fatalf("IssueDevice: %v", err)
	}
	return cert
}

// checkErr fails unless err has code want ("" meaning no error).
func checkErr(tb testing.TB, err error, want string) {
	tb.Helper()
	if got := vitalgate.ErrorCode(err); got != want {
		tb.Fatalf("error code = %q, want %q (err: %v)", got, want, err)
	}
}

func TestNewCA(t *testing.T) {
	ca := MustCA(t)
	c := ca.Certificate()
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints: IsCA=%v valid=%v MaxPathLen=%d zero=%v", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen, c.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature; c.KeyUsage != want {
		t.Errorf("KeyUsage = %v, want %v", c.KeyUsage, want)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key is %T, want ECDSA P-256", c.PublicKey)
	}
	if c.Subject.CommonName != "Vitalgate Test Root" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if !c.NotAfter.Equal(t0.AddDate(10, 0, 0)) || c.NotBefore.After(t0) {
		t.Errorf("validity %v to %v, want until %v", c.NotBefore, c.NotAfter, t0.AddDate(10, 0, 0))
	}
	if len(c.SubjectKeyId) != 20 {
		t.Errorf("SubjectKeyId has %d bytes, want 20", len(c.SubjectKeyId))
	}
	if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", c.SerialNumber)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: t0}); err != nil {
		t.Errorf("root does not verify against its own pool: %v", err)
	}
	other := MustCA(t)
	if pki.SerialHex(other.Certificate()) == pki.SerialHex(c) {
		t.Error("two CAs have the same serial")
	}
	if _, err := pki.NewCA("  ", t0, nil); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("NewCA with empty name: %v, want EINVALID", err)
	}
}

func TestCAPEMRoundTrip(t *testing.T) {
	ca := MustCA(t)
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(keyPEM, []byte("-----BEGIN PRIVATE KEY-----")) {
		t.Errorf("key is not a PKCS#8 PEM block:\n%s", keyPEM)
	}
	loaded, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Certificate().Equal(ca.Certificate()) {
		t.Error("loaded certificate differs")
	}
	// The loaded CA signs certificates that the original CA verifies.
	dev := MustDevice(t, loaded, "dev-1", t0)
	if id, err := ca.VerifyClient(dev, t0); err != nil || id != "dev-1" {
		t.Errorf("VerifyClient after reload = %q, %v", id, err)
	}
}

func TestLoadCA(t *testing.T) {
	ca := MustCA(t)
	certPEM, keyPEM, err := ca.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey, err := MustCA(t).MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	serverCert, serverKey, err := ca.IssueServer([]string{"localhost"}, t0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, ok := MustKey(t, "p256").(*ecdsa.PrivateKey)
	if !ok {
		t.Fatal("not an ECDSA key")
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cert    []byte
		key     []byte
		wantErr string
	}{
		{name: "matching", cert: certPEM, key: keyPEM},
		{name: "key of another CA", cert: certPEM, key: otherKey, wantErr: vitalgate.EINVALID},
		{name: "cert of another CA", cert: otherCert, key: keyPEM, wantErr: vitalgate.EINVALID},
		{name: "unrelated SEC 1 key", cert: certPEM, key: pemBlock("EC PRIVATE KEY", sec1), wantErr: vitalgate.EINVALID},
		{name: "leaf certificate with its own key", cert: serverCert, key: serverKey, wantErr: vitalgate.EINVALID},
		{name: "key and cert swapped", cert: keyPEM, key: certPEM, wantErr: vitalgate.EINVALID},
		{name: "empty", wantErr: vitalgate.EINVALID},
		{name: "garbage key", cert: certPEM, key: pemBlock("PRIVATE KEY", []byte("nope")), wantErr: vitalgate.EINVALID},
		{name: "garbage cert", cert: pemBlock("CERTIFICATE", []byte("nope")), key: keyPEM, wantErr: vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pki.LoadCA(tt.cert, tt.key)
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestIssueServer(t *testing.T) {
	ca := MustCA(t)
	tests := []struct {
		name         string
		hosts        []string
		validity     time.Duration
		wantDNS      []string
		wantIPs      []string
		wantNotAfter time.Time
		wantErr      string
	}{
		{name: "names and addresses", hosts: []string{"vitalgate.example", "localhost", "127.0.0.1", "::1"},
			wantDNS: []string{"vitalgate.example", "localhost"}, wantIPs: []string{"127.0.0.1", "::1"}, wantNotAfter: t0.Add(365 * 24 * time.Hour)},
		{name: "custom validity", hosts: []string{"a.example"}, validity: 48 * time.Hour,
			wantDNS: []string{"a.example"}, wantNotAfter: t0.Add(48 * time.Hour)},
		{name: "capped at CA expiry", hosts: []string{"a.example"}, validity: 20 * 365 * 24 * time.Hour,
			wantDNS: []string{"a.example"}, wantNotAfter: ca.Certificate().NotAfter},
		{name: "no hosts", wantErr: vitalgate.EINVALID},
		{name: "empty host", hosts: []string{""}, wantErr: vitalgate.EINVALID},
		{name: "host with space", hosts: []string{"bad host"}, wantErr: vitalgate.EINVALID},
		{name: "negative validity", hosts: []string{"a.example"}, validity: -time.Hour, wantErr: vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := ca.IssueServer(tt.hosts, t0, tt.validity, rand.Reader)
			checkErr(t, err, tt.wantErr)
			if err != nil {
				return
			}
			cert, err := pki.ParseCertPEM(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			key, err := pki.ParseKeyPEM(keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := key.Public().(*ecdsa.PublicKey); !ok || !pub.Equal(cert.PublicKey) || pub.Curve != elliptic.P256() {
				t.Error("key is not the certificate's P-256 key")
			}
			if !slices.Equal(cert.DNSNames, tt.wantDNS) {
				t.Errorf("DNSNames = %q, want %q", cert.DNSNames, tt.wantDNS)
			}
			var ips []string
			for _, ip := range cert.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("IPAddresses = %q, want %q", ips, tt.wantIPs)
			}
			if !cert.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("NotAfter = %v, want %v", cert.NotAfter, tt.wantNotAfter)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || cert.IsCA {
				t.Errorf("ExtKeyUsage = %v, IsCA = %v", cert.ExtKeyUsage, cert.IsCA)
			}
			for _, h := range tt.hosts {
				if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), CurrentTime: t0, DNSName: h}); err != nil {
					t.Errorf("verify for %s: %v", h, err)
				}
			}
			if _, ok := pki.DeviceIDFromCert(cert); ok {
				t.Error("a server certificate passes as a device certificate")
			}
			if _, err := ca.VerifyClient(cert, t0); vitalgate.ErrorCode(err) != vitalgate.EUNAUTHORIZED {
				t.Errorf("VerifyClient(server cert) = %v, want EUNAUTHORIZED", err)
			}
		})
	}
}

func TestIssueDevice(t *testing.T) {
	ca := MustCA(t)
	tests := []struct {
		name         string
		key          string
		now          time.Time
		validity     time.Duration
		wantUsage    x509.KeyUsage
		wantNotAfter time.Time
	}{
		{name: "P-256 default validity", key: "p256", now: t0, wantUsage: x509.KeyUsageDigitalSignature, wantNotAfter: t0.Add(90 * 24 * time.Hour)},
		{name: "Ed25519 one day", key: "ed25519", now: t0, validity: 24 * time.Hour, wantUsage: x509.KeyUsageDigitalSignature, wantNotAfter: t0.Add(24 * time.Hour)},
		{name: "RSA adds key encipherment", key: "rsa2048", now: t0, wantUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, wantNotAfter: t0.Add(90 * 24 * time.Hour)},
		{name: "capped at CA expiry", key: "p384", now: t0.AddDate(10, 0, -30), wantUsage: x509.KeyUsageDigitalSignature, wantNotAfter: ca.Certificate().NotAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := MustKey(t, tt.key)
			csr := MustCSR(t, "dev-1", key)
			cert, err := ca.IssueDevice(csr, "dev-1", tt.now, tt.validity, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if cert.Subject.CommonName != "dev-1" || !slices.Equal(cert.Subject.Organization, []string{pki.DeviceOrganization}) {
				t.Errorf("subject = %v", cert.Subject)
			}
			if len(cert.URIs) != 1 || cert.URIs[0].String() != "urn:vitalgate:device:dev-1" {
				t.Errorf("URIs = %v", cert.URIs)
			}
			if cert.KeyUsage != tt.wantUsage {
				t.Errorf("KeyUsage = %v, want %v", cert.KeyUsage, tt.wantUsage)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.IsCA || !cert.BasicConstraintsValid {
				t.Errorf("ExtKeyUsage = %v, IsCA = %v, BasicConstraintsValid = %v", cert.ExtKeyUsage, cert.IsCA, cert.BasicConstraintsValid)
			}
			if !cert.NotBefore.Equal(tt.now.Add(-time.Minute)) || !cert.NotAfter.Equal(tt.wantNotAfter) {
				t.Errorf("validity %v to %v, want %v to %v", cert.NotBefore, cert.NotAfter, tt.now.Add(-time.Minute), tt.wantNotAfter)
			}
			if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v", cert.SerialNumber)
			}
			if !bytes.Equal(cert.AuthorityKeyId, ca.Certificate().SubjectKeyId) || len(cert.SubjectKeyId) == 0 {
				t.Error("key identifiers not set")
			}
			if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
				t.Error("certificate does not carry the CSR's key")
			}
			if id, err := ca.VerifyClient(cert, tt.now); err != nil || id != "dev-1" {
				t.Errorf("VerifyClient = %q, %v", id, err)
			}
			if got, want := pki.SerialHex(cert), strings.ToLower(cert.SerialNumber.Text(16)); got != want {
				t.Errorf("SerialHex = %q, want %q", got, want)
			}
		})
	}
}

func TestIssueDeviceErrors(t *testing.T) {
	ca := MustCA(t)
	csr := MustCSR(t, "dev-1", MustKey(t, "p256"))
	tests := []struct {
		name     string
		csr      *x509.CertificateRequest
		id       string
		now      time.Time
		validity time.Duration
		rnd      io.Reader
		wantErr  string
	}{
		{name: "wrong device", csr: csr, id: "dev-2", now: t0, wantErr: vitalgate.EUNPROCESSABLE},
		{name: "nil csr", id: "dev-1", now: t0, wantErr: vitalgate.EINVALID},
		{name: "negative validity", csr: csr, id: "dev-1", now: t0, validity: -time.Hour, wantErr: vitalgate.EINVALID},
		{name: "CA expired", csr: csr, id: "dev-1", now: t0.AddDate(10, 0, 1), wantErr: vitalgate.EINTERNAL},
		{name: "before CA", csr: csr, id: "dev-1", now: t0.AddDate(-1, 0, 0), wantErr: vitalgate.EINTERNAL},
		{name: "random source fails", csr: csr, id: "dev-1", now: t0, rnd: failingReader{}, wantErr: vitalgate.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.IssueDevice(tt.csr, tt.id, tt.now, tt.validity, tt.rnd) // nil: crypto/rand
			checkErr(t, err, tt.wantErr)
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestVerifyClient(t *testing.T) {
	ca := MustCA(t)
	other := MustCA(t)
	dev := MustDevice(t, ca, "dev-1", t0)
	foreign := MustDevice(t, other, "dev-1", t0)
	tests := []struct {
		name    string
		cert    *x509.Certificate
		now     time.Time
		wantID  string
		wantErr string
		wantMsg string
	}{
		{name: "fresh", cert: dev, now: t0, wantID: "dev-1"},
		{name: "within clock skew", cert: dev, now: t0.Add(-30 * time.Second), wantID: "dev-1"},
		{name: "day 89", cert: dev, now: t0.Add(89 * 24 * time.Hour), wantID: "dev-1"},
		{name: "expired at day 91", cert: dev, now: t0.Add(91 * 24 * time.Hour), wantErr: vitalgate.EUNAUTHORIZED, wantMsg: "certificate expired"},
		{name: "not yet valid", cert: dev, now: t0.Add(-time.Hour), wantErr: vitalgate.EUNAUTHORIZED, wantMsg: "certificate not yet valid"},
		{name: "other CA", cert: foreign, now: t0, wantErr: vitalgate.EUNAUTHORIZED, wantMsg: "certificate not issued by this authority"},
		{name: "the CA itself", cert: ca.Certificate(), now: t0, wantErr: vitalgate.EUNAUTHORIZED, wantMsg: "certificate is not a device certificate"},
		{name: "nil", now: t0, wantErr: vitalgate.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ca.VerifyClient(tt.cert, tt.now)
			checkErr(t, err, tt.wantErr)
			if id != tt.wantID {
				t.Errorf("id = %q, want %q", id, tt.wantID)
			}
			if tt.wantMsg != "" && vitalgate.ErrorMessage(err) != tt.wantMsg {
				t.Errorf("message = %q, want %q", vitalgate.ErrorMessage(err), tt.wantMsg)
			}
		})
	}
}

func TestDeviceIDFromCert(t *testing.T) {
	ca := MustCA(t)
	serverPEM, _, err := ca.IssueServer([]string{"localhost"}, t0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	server, err := pki.ParseCertPEM(serverPEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		cert   *x509.Certificate
		wantID string
		wantOK bool
	}{
		{name: "device", cert: MustDevice(t, ca, "pump-7", t0), wantID: "pump-7", wantOK: true},
		{name: "server", cert: server},
		{name: "CA", cert: ca.Certificate()},
		{name: "nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := pki.DeviceIDFromCert(tt.cert)
			if id != tt.wantID || ok != tt.wantOK {
				t.Errorf("DeviceIDFromCert = %q, %v; want %q, %v", id, ok, tt.wantID, tt.wantOK)
			}
		})
	}
}

func TestKeyPEMRoundTrip(t *testing.T) {
	for _, kind := range []string{"p256", "p384", "ed25519", "rsa2048"} {
		t.Run(kind, func(t *testing.T) {
			key := MustKey(t, kind)
			p, err := pki.MarshalKeyPEM(key)
			if err != nil {
				t.Fatal(err)
			}
			back, err := pki.ParseKeyPEM(p)
			if err != nil {
				t.Fatal(err)
			}
			if pub, ok := back.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
				t.Error("round trip changed the key")
			}
		})
	}
	key, err := pki.GenerateDeviceKey(nil)
	if err != nil || key.Curve != elliptic.P256() {
		t.Errorf("GenerateDeviceKey = %v, %v", key, err)
	}
}

func TestServerCertWorksForTLSNames(t *testing.T) {
	// IssueServer writes IPs as IP SANs, so verification by address works.
	ca := MustCA(t)
	certPEM, _, err := ca.IssueServer([]string{"10.0.0.5"}, t0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.5")) || len(cert.DNSNames) != 0 {
		t.Errorf("SANs = %v, %v", cert.DNSNames, cert.IPAddresses)
	}
}

// pemBlock is a test helper that builds a PEM block.
func pemBlock(typ string, der []byte) []byte {
	var b bytes.Buffer
	b.WriteString("-----BEGIN " + typ + "-----\n")
	b.Write(pki.EncodeBase64(der))
	b.WriteString("-----END " + typ + "-----\n")
	return b.Bytes()
}

// readTestdata reads a file under testdata.
func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
