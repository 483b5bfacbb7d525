package httpapi_test

import (
	"crypto/tls"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/registry"
)

// TestIDevIDEnrollment: zero-touch over real TLS. A registered device of a model that names
// its maker's CA enrolls with its manufacturer certificate (IDevID) and no secret, then
// sends data with the operational certificate it got; the IDevID itself is refused on
// device routes, and an IDevID of an unregistered device fails the handshake.
func TestIDevIDEnrollment(t *testing.T) {
	e := MustEnv(t)
	ctx := t.Context()
	now := e.clock.Now()
	maker, err := pki.NewCA("Acme IDevID CA", now.Add(-time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: maker.Certificate().Raw})
	if err := e.store.CreateModel(ctx, vitalgate.DeviceModel{ID: "oxi", Binding: vitalgate.BindingAssigned, IDevIDCA: caPEM}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.reg.Add(ctx, registry.Operator("tester"), "SN-5", "pat-1", "oxi", time.Hour); err != nil {
		t.Fatal(err)
	}
	idevid := func(serial string) *tls.Certificate { // the maker's CA, as at the factory
		key, _ := pki.GenerateDeviceKey(nil)
		der, _ := pki.NewCSR(serial, key, nil)
		csr, err := pki.ParseCSR(pki.EncodeBase64(der))
		if err != nil {
			t.Fatal(err)
		}
		c, err := maker.IssueDevice(csr, serial, now, 24*time.Hour, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Certificate{Certificate: [][]byte{c.Raw}, PrivateKey: key, Leaf: c}
	}
	factory := idevid("SN-5")
	resp, body, op := e.enrollWith(e.client(factory), "", "", "SN-5")
	if op == nil {
		t.Fatalf("IDevID enrollment: %d %s", resp.StatusCode, body)
	}
	obs := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "SN-5"))
	if r := e.do(e.client(op), "POST", "/fhir/Observation", "application/fhir+json", obs); r.status != 201 {
		t.Fatalf("the operational certificate does not send data: %d %s", r.status, r.body)
	}
	if r := e.do(e.client(factory), "POST", "/fhir/Observation", "application/fhir+json", obs); r.status != 401 {
		t.Fatalf("an IDevID sent data: %d %s", r.status, r.body)
	}
	if r := e.do(e.client(idevid("SN-6")), "GET", "/.well-known/est/cacerts", "", nil); r.err == nil || !strings.Contains(r.err.Error(), "tls") {
		t.Fatalf("an unregistered device's IDevID passed the handshake: %d %v", r.status, r.err)
	}
	if resp, body, _ := e.enrollWith(e.client(nil), "", "", "SN-5"); resp.StatusCode != 401 || !strings.Contains(string(body), "IDevID") {
		t.Fatalf("enrollment without a secret or an IDevID: %d %s", resp.StatusCode, body)
	}
}
