package pki_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
)

// sameCerts reports whether a and b hold the same certificates, in any order.
func sameCerts(a, b []*x509.Certificate) bool {
	raws := func(cs []*x509.Certificate) [][]byte {
		var out [][]byte
		for _, c := range cs {
			out = append(out, c.Raw)
		}
		slices.SortFunc(out, bytes.Compare)
		return slices.CompactFunc(out, bytes.Equal)
	}
	return slices.EqualFunc(raws(a), raws(b), bytes.Equal)
}

func TestCertsOnlyRoundTrip(t *testing.T) {
	ca := MustCA(t)
	dev := MustDevice(t, ca, "dev-1", t0)
	dev2 := MustDevice(t, ca, "dev-2", t0)
	tests := []struct {
		name  string
		certs []*x509.Certificate
		want  int
	}{
		{name: "CA only", certs: []*x509.Certificate{ca.Certificate()}, want: 1},
		{name: "device and CA", certs: []*x509.Certificate{dev, ca.Certificate()}, want: 2},
		{name: "three", certs: []*x509.Certificate{dev2, dev, ca.Certificate()}, want: 3},
		{name: "duplicates dropped", certs: []*x509.Certificate{dev, dev, ca.Certificate()}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := pki.EncodeCertsOnly(tt.certs...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pki.ParseCertsOnly(der)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want || !sameCerts(got, tt.certs) {
				t.Errorf("got %d certificates, want %d, same set", len(got), tt.want)
			}
			// DER: the output does not depend on the order of the input.
			rev := slices.Clone(tt.certs)
			slices.Reverse(rev)
			if der2, err := pki.EncodeCertsOnly(rev...); err != nil || !bytes.Equal(der, der2) {
				t.Errorf("encoding depends on input order (err %v)", err)
			}
			// Through the EST body encoding and back.
			body, err := pki.DecodeBase64(pki.EncodeBase64(der))
			if err != nil || !bytes.Equal(body, der) {
				t.Errorf("base64 round trip: %v", err)
			}
		})
	}
}

func TestEncodeCertsOnlyErrors(t *testing.T) {
	tests := []struct {
		name  string
		certs []*x509.Certificate
	}{
		{name: "none"},
		{name: "nil certificate", certs: []*x509.Certificate{nil}},
		{name: "unparsed certificate", certs: []*x509.Certificate{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pki.EncodeCertsOnly(tt.certs...)
			checkErr(t, err, vitalgate.EINVALID)
		})
	}
}

func TestParseCertsOnly(t *testing.T) {
	ca := MustCA(t)
	good, err := pki.EncodeCertsOnly(ca.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	osslBody, err := pki.DecodeBase64(readTestdata(t, "openssl-certs-only.p7b.b64"))
	if err != nil {
		t.Fatal(err)
	}
	// A SignedData with no certificates field:
	// ContentInfo{signedData, [0]{SEQUENCE{1, {}, {id-data}, {}}}}.
	noCerts := []byte{
		0x30, 0x23, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
		0xa0, 0x16, 0x30, 0x14, 0x02, 0x01, 0x01, 0x31, 0x00,
		0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
		0x31, 0x00,
	}
	notSignedData := bytes.Clone(good)
	notSignedData[12] = 0x03 // id-envelopedData
	tests := []struct {
		name      string
		der       []byte
		wantCNs   []string
		wantError bool
	}{
		{name: "ours", der: good, wantCNs: []string{"Vitalgate Test Root"}},
		{name: "openssl crl2pkcs7", der: osslBody, wantCNs: []string{"osl-root", "osl-second"}},
		{name: "trailing byte", der: append(bytes.Clone(good), 0), wantError: true},
		{name: "truncated", der: good[:len(good)-1], wantError: true},
		{name: "no certificates field", der: noCerts, wantError: true},
		{name: "enveloped data", der: notSignedData, wantError: true},
		{name: "a bare certificate", der: ca.Certificate().Raw, wantError: true},
		{name: "empty", wantError: true},
		{name: "garbage", der: []byte("garbage"), wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := pki.ParseCertsOnly(tt.der)
			if tt.wantError {
				checkErr(t, err, vitalgate.EINVALID)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var cns []string
			for _, c := range certs {
				cns = append(cns, c.Subject.CommonName)
			}
			if !slices.Equal(cns, tt.wantCNs) {
				t.Errorf("CNs = %q, want %q", cns, tt.wantCNs)
			}
		})
	}
}

// needOpenSSL returns the path of the openssl binary or skips the test.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH: skipping the interoperability test against the real OpenSSL")
	}
	return path
}

// runOpenSSL runs openssl with args and returns its standard output.
func runOpenSSL(t *testing.T, openssl string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(openssl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, stderr.Bytes())
	}
	return out
}

// TestOpenSSLReadsCertsOnly checks that openssl reads an EST certs-only body we write,
// decoding the base64 with openssl itself.
func TestOpenSSLReadsCertsOnly(t *testing.T) {
	openssl := needOpenSSL(t)
	ca := MustCA(t)
	dev := MustDevice(t, ca, "dev-1", t0)
	der, err := pki.EncodeCertsOnly(dev, ca.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b64 := filepath.Join(dir, "certs.b64")
	bin := filepath.Join(dir, "certs.p7b")
	if err := os.WriteFile(b64, pki.EncodeBase64(der), 0o600); err != nil {
		t.Fatal(err)
	}
	runOpenSSL(t, openssl, "base64", "-d", "-in", b64, "-out", bin)
	out := runOpenSSL(t, openssl, "pkcs7", "-inform", "DER", "-in", bin, "-print_certs")
	var got []*x509.Certificate
	for block, rest := pem.Decode(out); block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if !sameCerts(got, []*x509.Certificate{dev, ca.Certificate()}) {
		t.Errorf("openssl printed %d certificates, want the device and the CA:\n%s", len(got), out)
	}

	// And openssl accepts the device certificate for TLS client authentication.
	caFile := filepath.Join(dir, "ca.pem")
	devFile := filepath.Join(dir, "dev.pem")
	if err := os.WriteFile(caFile, pki.MarshalCertPEM(ca.Certificate()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(devFile, pki.MarshalCertPEM(dev), 0o600); err != nil {
		t.Fatal(err)
	}
	runOpenSSL(t, openssl, "verify", "-attime", strconv.FormatInt(t0.Unix(), 10), "-CAfile", caFile, "-purpose", "sslclient", devFile)
}

// TestOpenSSLCSR checks that ParseCSR reads requests written by openssl: DER base64-encoded
// as an EST client sends it (by us and by openssl itself), and openssl's default PEM.
func TestOpenSSLCSR(t *testing.T) {
	openssl := needOpenSSL(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	derFile := filepath.Join(dir, "csr.der")
	der := runOpenSSL(t, openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
		"-nodes", "-keyout", keyFile, "-subj", "/CN=dev-1", "-outform", "DER")
	if err := os.WriteFile(derFile, der, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body []byte
	}{
		{name: "DER, our base64", body: pki.EncodeBase64(der)},
		{name: "DER, openssl base64", body: runOpenSSL(t, openssl, "base64", "-in", derFile)},
		{name: "openssl default PEM", body: runOpenSSL(t, openssl, "req", "-new", "-key", keyFile, "-subj", "/CN=dev-1")},
	}
	ca := MustCA(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, err := pki.ParseCSR(tt.body)
			if err != nil {
				t.Fatalf("ParseCSR: %v", err)
			}
			if err := pki.CheckCSR(csr, "dev-1"); err != nil {
				t.Fatalf("CheckCSR: %v", err)
			}
			cert, err := ca.IssueDevice(csr, "dev-1", t0, 0, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if id, err := ca.VerifyClient(cert, t0); err != nil || id != "dev-1" {
				t.Errorf("VerifyClient = %q, %v", id, err)
			}
		})
	}
}
