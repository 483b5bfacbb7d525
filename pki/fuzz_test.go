package pki_test

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
)

// FuzzParseCSR checks that ParseCSR never panics, that every error carries a code, and that
// an accepted request survives a round trip through the EST body encoding.
func FuzzParseCSR(f *testing.F) {
	der, err := pki.NewCSR("dev-1", MustKey(f, "p256"), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pki.EncodeBase64(der))
	f.Add(der)
	f.Add(pemBlock("CERTIFICATE REQUEST", der))
	f.Add(readTestdata(f, "openssl-p256.csr.b64"))
	f.Add(readTestdata(f, "openssl-sha1.csr.b64"))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte("MA=="))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		csr, err := pki.ParseCSR(body)
		if err != nil {
			switch vitalgate.ErrorCode(err) {
			case vitalgate.EINVALID, vitalgate.EUNPROCESSABLE, vitalgate.ETOOLARGE:
			default:
				t.Fatalf("unexpected error code: %v", err)
			}
			return
		}
		if csr.CheckSignature() != nil {
			t.Fatal("accepted a request whose signature does not verify")
		}
		_ = pki.CheckCSR(csr, "dev-1")
		again, err := pki.ParseCSR(pki.EncodeBase64(csr.Raw))
		if err != nil || !bytes.Equal(again.Raw, csr.Raw) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

// FuzzParseCertsOnly checks that ParseCertsOnly never panics and that what it accepts
// EncodeCertsOnly writes back to something that parses to the same certificates.
func FuzzParseCertsOnly(f *testing.F) {
	ca := MustCA(f)
	dev := MustDevice(f, ca, "dev-1", t0)
	for _, certs := range [][]*x509.Certificate{{ca.Certificate()}, {dev, ca.Certificate()}} {
		der, err := pki.EncodeCertsOnly(certs...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	ossl, err := pki.DecodeBase64(readTestdata(f, "openssl-certs-only.p7b.b64"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ossl)
	f.Add(ca.Certificate().Raw)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		certs, err := pki.ParseCertsOnly(der)
		if err != nil {
			if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
				t.Fatalf("unexpected error code: %v", err)
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("accepted a message with no certificates")
		}
		again, err := pki.EncodeCertsOnly(certs...)
		if err != nil {
			t.Fatal(err)
		}
		back, err := pki.ParseCertsOnly(again)
		if err != nil || !sameCerts(back, certs) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}
