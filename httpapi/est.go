package httpapi

import (
	"crypto/x509"
	"net/http"

	"github.com/vitalgate/vitalgate"
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

// handleSimpleEnroll issues a device's first certificate in exchange for its one-time
// enrollment secret or, zero-touch, its manufacturer identity (IDevID) presented in the TLS
// handshake (RFC 7030 §4.2.1, §3.3.2).
func (s *Server) handleSimpleEnroll(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	_, secret, _ := r.BasicAuth()
	csr, err := s.readCSR(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cert, err := s.registry.EnrollDevice(r.Context(), p, secret, r.TLS.PeerCertificates, csr)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ETHROTTLED {
			w.Header().Set("Retry-After", "60")
		}
		s.writeError(w, r, err)
		return
	}
	s.writeCertsOnly(w, r, mediaCertsOnly, cert)
}

// handleSimpleReenroll renews the certificate of a device authenticated by its current one
// (RFC 7030 §4.2.2).
func (s *Server) handleSimpleReenroll(w http.ResponseWriter, r *http.Request, _ vitalgate.Principal) {
	csr, err := s.readCSR(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	cert, err := s.registry.Reenroll(r.Context(), r.TLS.PeerCertificates[0], csr)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeCertsOnly(w, r, mediaCertsOnly, cert)
}

// readCSR reads the base64 PKCS#10 body within the configured limit.
func (s *Server) readCSR(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if err := requireMediaType(r, mediaPKCS10); err != nil {
		return nil, err
	}
	return s.readBody(r, w)
}
