package registry

import (
	"bytes"
	"context"
	"crypto/x509"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/pki"
)

// Zero-touch enrollment: a device model may name the CAs of its maker's manufacturer
// identities (IDevID, IEEE 802.1AR). A registered, active device of such a model presents
// its IDevID certificate in the TLS handshake of EST simpleenroll instead of an enrollment
// secret, and gets its operational certificate. The device's id is the IDevID's subject
// serialNumber (802.1AR's unique device identifier), or its common name when it has none.

// badIDevID is the one answer to every refused IDevID, as badEnrollment is for secrets; the
// server log says why.
var badIDevID = vitalgate.Errorf(vitalgate.EUNAUTHORIZED,
	"the manufacturer certificate (IDevID) is not accepted for enrollment (unknown or revoked device, a model without IDevID enrollment, or a certificate its maker's CA did not issue)")

// IssuedHere reports whether cert claims to be issued by the built-in CA (issuer name and
// authority key id): an operational certificate, which the TLS layer verifies against the
// built-in CA, rather than an IDevID, which AuthorizeIDevID decides.
func (s *Service) IssuedHere(cert *x509.Certificate) bool {
	ca := s.cfg.CA.Certificate()
	return bytes.Equal(cert.RawIssuer, ca.RawSubject) && bytes.Equal(cert.AuthorityKeyId, ca.SubjectKeyId)
}

// AuthorizeIDevID decides, for a TLS handshake, whether chain (leaf first, as the client
// sent it) is the IDevID of a registered, active device whose model names the CA that
// issued it, and returns the device id. It reads the registry afresh. Errors: EUNAUTHORIZED
// (one answer; the server log says why).
func (s *Service) AuthorizeIDevID(ctx context.Context, p vitalgate.Principal, chain []*x509.Certificate) (string, error) {
	d, reason, err := s.idevid(ctx, chain)
	if err != nil {
		return "", err
	}
	if reason != "" {
		s.logEnrollRefusal(ctx, p, reason)
		return "", badIDevID
	}
	return d.ID, nil
}

// idevid checks chain as an IDevID: the device it names, or why it is refused (reason), or
// an error of the store.
func (s *Service) idevid(ctx context.Context, chain []*x509.Certificate) (d vitalgate.Device, reason string, err error) {
	if len(chain) == 0 {
		return d, "no certificate was presented", nil
	}
	leaf := chain[0]
	if leaf.IsCA {
		return d, "the presented certificate is a CA certificate", nil
	}
	if s.IssuedHere(leaf) {
		return d, "the presented certificate is an operational certificate of this server, not an IDevID (re-enroll with simplereenroll)", nil
	}
	id := pki.IDevIDDeviceID(leaf)
	if checkID("id", "the device id", id) != nil {
		return d, "the IDevID names no usable device id (subject serialNumber or common name)", nil
	}
	d, err = s.cfg.Store.Device(ctx, id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return d, "IDevID of an unregistered device (register it with `vitalgate device add` or `device import`)", nil
	} else if err != nil {
		return d, "", err
	}
	if active(d) != nil {
		return d, "IDevID of a revoked device", nil
	}
	if d.Model == "" {
		return d, "the device has no model, so no IDevID CA", nil
	}
	m, err := s.cfg.Store.Model(ctx, d.Model)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return d, "the device's model is not registered, so it has no IDevID CA", nil
	} else if err != nil {
		return d, "", err
	}
	if len(m.IDevIDCA) == 0 {
		return d, "the device's model does not enroll with IDevIDs (`vitalgate model set --idevid-ca`)", nil
	}
	cas, err := vitalgate.ParseIDevIDCAs(m.IDevIDCA)
	if err != nil {
		return d, "the device's model has unusable IDevID CAs: " + vitalgate.ErrorMessage(err), nil
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: s.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return d, "the IDevID does not verify against its model's maker CA: " + err.Error(), nil
	}
	return d, "", nil
}

// EnrollDevice enrolls with the one-time secret when one is given (Enroll), and otherwise
// with the IDevID chain the device presented at the handshake (EnrollIDevID).
func (s *Service) EnrollDevice(ctx context.Context, p vitalgate.Principal, secret string, idevid []*x509.Certificate, csr []byte) (*x509.Certificate, error) {
	if secret == "" && len(idevid) > 0 {
		return s.EnrollIDevID(ctx, p, idevid, csr)
	}
	return s.Enroll(ctx, p, secret, csr)
}

// EnrollIDevID issues an operational certificate to the registered device whose IDevID
// chain (leaf first) authenticated the TLS connection (zero-touch EST simpleenroll); csr is
// the base64 PKCS#10 request body, whose subject must name the same device. A secret the
// device still holds is used up with it. A device that has enrolled before gets a further
// certificate (after a factory reset; revoke the old one with `device revoke` if it is
// lost). Refusals are throttled as for secrets. Errors: EUNAUTHORIZED (one answer; the
// server log says why), ETHROTTLED, the CSR errors of pki.ParseCSR and pki.CheckCSR.
func (s *Service) EnrollIDevID(ctx context.Context, p vitalgate.Principal, chain []*x509.Certificate, csr []byte) (*x509.Certificate, error) {
	audited := audit.Entry{Action: audit.ActionExecute, Type: "enroll", Subtype: "simpleenroll-idevid"}
	if s.cfg.Failures != nil {
		if ok, wait := s.cfg.Failures.Allow(p.ID, p.RemoteIP); !ok {
			err := vitalgate.Errorf(vitalgate.ETHROTTLED, "too many failed enrollments from this address; try again in %s", wait.Round(time.Second))
			s.logEnrollRefusal(ctx, p, err.Error())
			s.refused(ctx, p, audited, err)
			return nil, err
		}
	}
	fail := func(reason string, err error) (*x509.Certificate, error) {
		s.logEnrollRefusal(ctx, p, reason)
		if s.cfg.Failures != nil {
			s.cfg.Failures.Fail(p.ID, p.RemoteIP)
		}
		s.refused(ctx, p, audited, err)
		return nil, err
	}
	d, reason, err := s.idevid(ctx, chain)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		return fail(reason, badIDevID)
	}
	now := s.clock()
	cert, err := s.issue(csr, d.ID, now)
	if err != nil {
		return fail("certificate request refused: "+vitalgate.ErrorMessage(err), err)
	}
	rec := certRecord(cert, d.ID, now)
	e := s.entry(ctx, p, audit.Entry{Action: audit.ActionCreate, Type: "enroll", Subtype: "simpleenroll-idevid",
		Outcome: audit.OutcomeSuccess, Resources: []string{"Certificate/" + rec.Serial}, Site: d.Site})
	if d.EnrollSecretHash != "" {
		err = s.cfg.Store.ConsumeEnrollSecret(ctx, d.ID, d.EnrollSecretHash, rec, e)
	} else {
		err = s.cfg.Store.AddCertificate(ctx, rec, e)
	}
	if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
		return fail("the device enrolled meanwhile (a concurrent enrollment)", badIDevID)
	} else if err != nil {
		return nil, err
	}
	s.devices.Forget(d.ID)
	if s.cfg.Failures != nil {
		s.cfg.Failures.Succeed(p.ID, p.RemoteIP)
	}
	s.log.Info("device enrolled with its IDevID", "device", d.ID, "serial", rec.Serial, "idevid_serial", pki.SerialHex(chain[0]))
	return cert, nil
}
