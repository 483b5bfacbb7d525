package httpapi

import (
	"crypto/x509"
	"net/http"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/pki"
)

// EST (RFC 7030) media types.
const (
	mediaPKCS10    = "application/pkcs10"
	mediaCertsOnly = "application/pkcs7-mime; smime-type=certs-only"
	mediaPKCS7     = "application/pkcs7-mime"
)

// writeCertsOnly answers with a base64 certs-only CMS, as RFC 7030 §4.1.3 and §4.2.3 ask.
func (s *Server) writeCertsOnly(w http.ResponseWriter, r *http.Request, mediaType string, certs ...*x509.Certificate) {
	der, err := pki.EncodeCertsOnly(certs...)
	if err != nil {
		s.writeError(w, r, vitalgate.Internal(err, "encode certs-only"))
		return
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Content-Transfer-Encoding", "base64")
	_, _ = w.Write(pki.EncodeBase64(der)) // #nosec G705 -- base64 DER served as application/pkcs7-mime (nosniff), never as HTML
}

// handleCACerts serves the CA certificate (RFC 7030 §4.1).
func (s *Server) handleCACerts(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	s.writeCertsOnly(w, r, mediaPKCS7, s.ca.Certificate())
}

// badEnrollment is the one answer to every wrong enrollment credential, so that a caller
// cannot tell an unknown device from a wrong, used or expired secret.
var badEnrollment = vitalgate.Errorf(vitalgate.EUNAUTHORIZED,
	"enrollment credentials are not valid (unknown device, wrong, used or expired secret)")

// handleSimpleEnroll issues a device's first certificate in exchange for its one-time
// enrollment secret (RFC 7030 §4.2.1).
func (s *Server) handleSimpleEnroll(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	_, secret, _ := r.BasicAuth()
	if ok, _ := s.failures.Allow("device:"+p.ID, p.RemoteIP); !ok {
		w.Header().Set("Retry-After", "60")
		s.writeError(w, r, vitalgate.Errorf(vitalgate.ETHROTTLED, "too many failed enrollments; try again later"))
		return
	}
	fail := func(err error) {
		s.failures.Fail("device:"+p.ID, p.RemoteIP)
		s.record(r, audit.Entry{Action: audit.ActionExecute, Type: "enroll", Subtype: "simpleenroll", AgentType: audit.AgentDevice,
			AgentID: p.ID, Outcome: audit.OutcomeMinorFailure, OutcomeDesc: vitalgate.ErrorMessage(err)})
		s.writeError(w, r, err)
	}
	d, err := s.registry.Device(r.Context(), p.ID)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		fail(badEnrollment)
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.now()
	if d.Status != vitalgate.DeviceActive || d.EnrollSecretHash == "" || !now.Before(d.EnrollExpiresAt) {
		fail(badEnrollment)
		return
	}
	if ok, err := auth.VerifySecret(d.EnrollSecretHash, secret); err != nil || !ok {
		fail(badEnrollment)
		return
	}
	cert, err := s.issueFromRequest(w, r, d.ID)
	if err != nil {
		fail(err)
		return
	}
	rec := certRecord(cert, d.ID, now)
	entry := s.auditEncode(r, audit.Entry{Action: audit.ActionCreate, Type: "enroll", Subtype: "simpleenroll",
		AgentType: audit.AgentDevice, AgentID: d.ID, AgentRole: "device", Resources: []string{"Certificate/" + rec.Serial}})
	if err := s.registry.ConsumeEnrollSecret(r.Context(), d.ID, d.EnrollSecretHash, rec, entry...); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			err = badEnrollment
		}
		s.writeError(w, r, err)
		return
	}
	s.log.Info("device enrolled", "request_id", requestID(r), "device", d.ID, "serial", rec.Serial)
	s.writeCertsOnly(w, r, mediaCertsOnly, cert)
}

// handleSimpleReenroll renews the certificate of a device authenticated by its current one
// (RFC 7030 §4.2.2).
func (s *Server) handleSimpleReenroll(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	cert, err := s.issueFromRequest(w, r, p.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rec := certRecord(cert, p.ID, s.now())
	entry := s.auditEncode(r, audit.Entry{Action: audit.ActionCreate, Type: "enroll", Subtype: "simplereenroll",
		AgentType: audit.AgentDevice, AgentID: p.ID, AgentRole: "device", Resources: []string{"Certificate/" + rec.Serial}})
	if err := s.registry.AddCertificate(r.Context(), rec, entry...); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("device re-enrolled", "request_id", requestID(r), "device", p.ID, "serial", rec.Serial)
	s.writeCertsOnly(w, r, mediaCertsOnly, cert)
}

// issueFromRequest reads the PKCS#10 body, applies the CSR policy and signs a certificate.
func (s *Server) issueFromRequest(w http.ResponseWriter, r *http.Request, deviceID string) (*x509.Certificate, error) {
	if err := requireMediaType(r, mediaPKCS10); err != nil {
		return nil, err
	}
	body, err := s.readBody(r, w)
	if err != nil {
		return nil, err
	}
	csr, err := pki.ParseCSR(body)
	if err != nil {
		return nil, err
	}
	return s.ca.IssueDevice(csr, deviceID, s.now(), s.DeviceCertValidity, nil)
}

func certRecord(c *x509.Certificate, deviceID string, now time.Time) vitalgate.Certificate {
	return vitalgate.Certificate{
		Serial: pki.SerialHex(c), DeviceID: deviceID,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), IssuedAt: now.UTC(),
	}
}
