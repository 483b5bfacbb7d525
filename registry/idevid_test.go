package registry_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
)

// maker is a device maker's IDevID CA, made in the test.
type maker struct {
	t    *testing.T
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newMaker(t *testing.T, name string, now time.Time) *maker {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name, Organization: []string{"Maker"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &maker{t: t, cert: cert, key: key}
}

// pem is the maker CA's certificate in PEM, as an operator gives it to model add.
func (m *maker) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.cert.Raw})
}

// idevid issues a device's manufacturer certificate naming serial in the subject
// serialNumber (IEEE 802.1AR), valid until notAfter.
func (m *maker) idevid(serial string, notAfter time.Time) *x509.Certificate {
	m.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:   pkix.Name{CommonName: "Pulse oximeter", SerialNumber: serial, Organization: []string{"Maker"}},
		NotBefore: m.cert.NotBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.cert, &key.PublicKey, m.key)
	if err != nil {
		m.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestEnrollIDevID: a registered device of a model that names its maker's CA enrolls with
// its IDevID and no secret; every other IDevID is refused with one answer, and audited.
func TestEnrollIDevID(t *testing.T) {
	e := mustEnv(t, nil)
	ctx := t.Context()
	now := e.clock.Now()
	acme, other := newMaker(t, "Acme IDevID CA", now), newMaker(t, "Other IDevID CA", now)
	for _, m := range []vitalgate.DeviceModel{
		{ID: "oxi", Binding: vitalgate.BindingAssigned, IDevIDCA: acme.pem()},
		{ID: "plain", Binding: vitalgate.BindingAssigned},
	} {
		if err := e.store.CreateModel(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	add := func(id, model string) string {
		_, secret, err := e.reg.Add(ctx, op, id, "pat-"+id, model, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	secret := add("SN-1001", "oxi")
	add("SN-1002", "oxi")
	add("SN-2001", "plain")
	if err := e.reg.Revoke(ctx, op, "SN-1002"); err != nil {
		t.Fatal(err)
	}
	opCert := e.enroll("dev-op")

	cases := []struct {
		name  string
		chain []*x509.Certificate
		cn    string // the CSR's subject
		code  string // "" = enrolled
	}{
		{"registered device of the model", []*x509.Certificate{acme.idevid("SN-1001", now.Add(time.Hour))}, "SN-1001", ""},
		{"unregistered device", []*x509.Certificate{acme.idevid("SN-9999", now.Add(time.Hour))}, "SN-9999", vitalgate.EUNAUTHORIZED},
		{"revoked device", []*x509.Certificate{acme.idevid("SN-1002", now.Add(time.Hour))}, "SN-1002", vitalgate.EUNAUTHORIZED},
		{"model without IDevID enrollment", []*x509.Certificate{acme.idevid("SN-2001", now.Add(time.Hour))}, "SN-2001", vitalgate.EUNAUTHORIZED},
		{"another maker's CA", []*x509.Certificate{other.idevid("SN-1001", now.Add(time.Hour))}, "SN-1001", vitalgate.EUNAUTHORIZED},
		{"expired IDevID", []*x509.Certificate{acme.idevid("SN-1001", now.Add(-time.Minute))}, "SN-1001", vitalgate.EUNAUTHORIZED},
		{"an operational certificate is no IDevID", []*x509.Certificate{opCert}, "dev-op", vitalgate.EUNAUTHORIZED},
		{"the CA itself", []*x509.Certificate{acme.cert}, "Acme IDevID CA", vitalgate.EUNAUTHORIZED},
		{"CSR for another device", []*x509.Certificate{acme.idevid("SN-1001", now.Add(time.Hour))}, "SN-1002", vitalgate.EINVALID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := enrollee(pki.IDevIDDeviceID(c.chain[0]), "192.0.2.7")
			if _, err := e.reg.AuthorizeIDevID(ctx, p, c.chain); (err == nil) != (c.code == "" || c.code == vitalgate.EINVALID) {
				t.Errorf("handshake decision: %v", err)
			}
			cert, err := e.reg.EnrollDevice(ctx, p, "", c.chain, csr(t, c.cn))
			if c.code == "" {
				if err != nil {
					t.Fatalf("enroll: %v", err)
				}
				if id, err := e.reg.Authorize(ctx, cert); err != nil || id != c.cn {
					t.Fatalf("the operational certificate is not accepted: %q %v", id, err)
				}
				return
			}
			if got := vitalgate.ErrorCode(err); got != c.code && !(c.code == vitalgate.EINVALID && got == vitalgate.EUNPROCESSABLE) {
				t.Fatalf("error %q (%v), want %q", got, err, c.code)
			}
		})
	}
	// The IDevID used up the secret it made unnecessary; the IDevID itself never acts as a device.
	_, err := e.reg.Enroll(ctx, enrollee("SN-1001", "192.0.2.8"), secret, csr(t, "SN-1001"))
	wantCode(t, "the secret after an IDevID enrollment", err, vitalgate.EUNAUTHORIZED)
	_, err = e.reg.Authorize(ctx, acme.idevid("SN-1001", now.Add(time.Hour)))
	wantCode(t, "an IDevID on a device route", err, vitalgate.EUNAUTHORIZED)
	// A device that enrolled before gets a further certificate (a factory reset).
	if _, err := e.reg.EnrollDevice(ctx, enrollee("SN-1001", "192.0.2.7"), "", []*x509.Certificate{acme.idevid("SN-1001", now.Add(time.Hour))}, csr(t, "SN-1001")); err != nil {
		t.Fatalf("enroll again: %v", err)
	}
	subtypes := e.auditSubtypes()
	// Two enrollments and the refusals (identical refusals share an entry).
	if n := countOf(subtypes, "simpleenroll-idevid"); n < 3 {
		t.Errorf("%d simpleenroll-idevid audit entries, want the enrollments and the refusals: %v", n, subtypes)
	}
}

// TestIssuedHere tells an operational certificate from an IDevID.
func TestIssuedHere(t *testing.T) {
	e := mustEnv(t, nil)
	leaf := newMaker(t, "Acme IDevID CA", e.clock.Now()).idevid("SN-1", e.clock.Now().Add(time.Hour))
	if op := e.enroll("dev-1"); !e.reg.IssuedHere(op) || e.reg.IssuedHere(leaf) {
		t.Fatal("IssuedHere does not tell an operational certificate from an IDevID")
	}
}

// TestIDevIDCABundle: a model's IDevID CA file must hold CA certificates only.
func TestIDevIDCABundle(t *testing.T) {
	now := time.Now()
	acme := newMaker(t, "Acme IDevID CA", now)
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: acme.idevid("SN-1", now.Add(time.Hour)).Raw})
	for _, c := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"one CA", acme.pem(), true},
		{"two CAs", append(acme.pem(), newMaker(t, "Second", now).pem()...), true},
		{"a device certificate", leaf, false},
		{"a private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), false},
		{"not PEM", []byte("hello"), false},
		{"empty", []byte("\n"), false},
	} {
		_, err := vitalgate.ParseIDevIDCAs(c.data)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func countOf(xs []string, x string) int {
	n := 0
	for i := slices.Index(xs, x); i >= 0; i = slices.Index(xs, x) {
		n++
		xs = xs[i+1:]
	}
	return n
}
