package pki_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
)

// csrBody returns the EST body of a CSR for cn signed by a new key of kind.
func csrBody(tb testing.TB, cn, kind string) []byte {
	tb.Helper()
	der, err := pki.NewCSR(cn, MustKey(tb, kind), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return pki.EncodeBase64(der)
}

// csrDER builds a CSR from tmpl signed by a new key of kind.
func csrDER(tb testing.TB, tmpl *x509.CertificateRequest, kind string) []byte {
	tb.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, MustKey(tb, kind))
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestCSRPolicy(t *testing.T) {
	p256DER, err := pki.NewCSR("dev-1", MustKey(t, "p256"), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(p256DER)
	tampered[len(tampered)-1] ^= 1 // last byte of the signature's s value
	caReq := csrDER(t, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "dev-1"},
		ExtraExtensions: []pkix.Extension{{ // BasicConstraints cA=TRUE: ignored, not honoured
			Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff},
		}},
	}, "p256")
	twoCNs := csrDER(t, &x509.CertificateRequest{Subject: pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "dev-2"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "dev-1"},
	}}}, "p256")
	wrapped := base64.StdEncoding.EncodeToString(p256DER)
	var lines []string
	for len(wrapped) > 0 {
		n := min(len(wrapped), 76)
		lines = append(lines, wrapped[:n])
		wrapped = wrapped[n:]
	}

	tests := []struct {
		name     string
		body     []byte
		deviceID string
		wantErr  string // "" means accepted by both ParseCSR and CheckCSR
	}{
		{name: "P-256", body: csrBody(t, "dev-1", "p256")},
		{name: "P-384", body: csrBody(t, "dev-1", "p384")},
		{name: "Ed25519", body: csrBody(t, "dev-1", "ed25519")},
		{name: "RSA 2048", body: csrBody(t, "dev-1", "rsa2048")},
		{name: "RSA 1024 rejected", body: csrBody(t, "dev-1", "rsa1024"), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "P-224 rejected", body: csrBody(t, "dev-1", "p224"), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "CN mismatch", body: csrBody(t, "dev-2", "p256"), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "CN differs in case", body: csrBody(t, "DEV-1", "p256"), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "CN with trailing space", body: csrBody(t, "dev-1 ", "p256"), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "no CN", body: csrBody(t, "", "p256"), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "two CNs", body: pki.EncodeBase64(twoCNs), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "asks to be a CA", body: pki.EncodeBase64(caReq)},
		{name: "bad signature", body: pki.EncodeBase64(tampered), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "SHA-1 signature from openssl", body: readTestdata(t, "openssl-sha1.csr.b64"), wantErr: vitalgate.EUNPROCESSABLE},
		{name: "openssl P-256", body: readTestdata(t, "openssl-p256.csr.b64")},
		{name: "unwrapped base64", body: []byte(base64.StdEncoding.EncodeToString(p256DER))},
		{name: "unpadded base64", body: []byte(base64.RawStdEncoding.EncodeToString(p256DER))},
		{name: "76-column LF lines", body: []byte(strings.Join(lines, "\n") + "\n")},
		{name: "PEM", body: pemBlock("CERTIFICATE REQUEST", p256DER)},
		{name: "PEM of another type", body: pemBlock("CERTIFICATE", p256DER), wantErr: vitalgate.EINVALID},
		{name: "raw DER", body: p256DER, wantErr: vitalgate.EINVALID},
		{name: "garbage", body: []byte("this is not a certificate request!"), wantErr: vitalgate.EINVALID},
		{name: "base64 garbage", body: pki.EncodeBase64([]byte("this is not DER")), wantErr: vitalgate.EINVALID},
		{name: "truncated", body: pki.EncodeBase64(p256DER[:len(p256DER)-10]), wantErr: vitalgate.EINVALID},
		{name: "trailing data", body: pki.EncodeBase64(append(bytes.Clone(p256DER), 0)), wantErr: vitalgate.EINVALID},
		{name: "empty", body: nil, wantErr: vitalgate.EINVALID},
		{name: "only white space", body: []byte(" \r\n"), wantErr: vitalgate.EINVALID},
		{name: "too big", body: bytes.Repeat([]byte("A"), pki.MaxCSRSize+1), wantErr: vitalgate.ETOOLARGE},
		{name: "bad device id", body: csrBody(t, "dev 1", "p256"), deviceID: "dev 1", wantErr: vitalgate.EINVALID},
		{name: "device id too long", body: csrBody(t, strings.Repeat("a", 65), "p256"), deviceID: strings.Repeat("a", 65), wantErr: vitalgate.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.deviceID
			if id == "" {
				id = "dev-1"
			}
			csr, err := pki.ParseCSR(tt.body)
			if err == nil {
				err = pki.CheckCSR(csr, id)
			}
			checkErr(t, err, tt.wantErr)
			if err != nil && strings.Contains(vitalgate.ErrorMessage(err), "dev-") {
				t.Errorf("message %q echoes the input", vitalgate.ErrorMessage(err))
			}
		})
	}
}

func TestCheckCSRNil(t *testing.T) {
	checkErr(t, pki.CheckCSR(nil, "dev-1"), vitalgate.EINVALID)
}

// TestIssueDeviceIgnoresRequestedExtensions checks that a CSR asking for CA powers and
// extra names gets an ordinary device certificate.
func TestIssueDeviceIgnoresRequestedExtensions(t *testing.T) {
	ca := MustCA(t)
	der := csrDER(t, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "dev-1", Organization: []string{"Evil Corp"}},
		DNSNames: []string{"vitalgate.example"},
		ExtraExtensions: []pkix.Extension{{
			Id: asn1.ObjectIdentifier{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff},
		}},
	}, "p256")
	csr, err := pki.ParseCSR(pki.EncodeBase64(der))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueDevice(csr, "dev-1", t0, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cert.IsCA || len(cert.DNSNames) != 0 || cert.Subject.Organization[0] != pki.DeviceOrganization {
		t.Errorf("requested fields leaked into the certificate: IsCA=%v DNS=%v O=%v", cert.IsCA, cert.DNSNames, cert.Subject.Organization)
	}
}

func TestBase64(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{name: "empty", data: nil},
		{name: "one byte", data: []byte{0xff}},
		{name: "exactly one line", data: bytes.Repeat([]byte{7}, 48)},
		{name: "several lines", data: bytes.Repeat([]byte{1, 2, 3, 4, 5}, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := pki.EncodeBase64(tt.data)
			for line := range strings.SplitSeq(strings.TrimSuffix(string(enc), "\r\n"), "\r\n") {
				if len(line) > 64 {
					t.Errorf("line of %d characters", len(line))
				}
			}
			dec, err := pki.DecodeBase64(enc)
			if err != nil || !bytes.Equal(dec, tt.data) {
				t.Errorf("DecodeBase64(EncodeBase64(x)) = %x, %v; want %x", dec, err, tt.data)
			}
		})
	}
	if _, err := pki.DecodeBase64([]byte("a*b")); vitalgate.ErrorCode(err) != vitalgate.EINVALID {
		t.Errorf("DecodeBase64 of garbage = %v, want EINVALID", err)
	}
}
