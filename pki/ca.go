// Package pki is Vitalgate's built-in certificate authority and the encoding helpers of
// Enrollment over Secure Transport (EST, RFC 7030).
//
// The CA is a self-signed ECDSA P-256 root that issues two kinds of leaf certificate: TLS
// server certificates for Vitalgate itself (IssueServer) and short-lived client certificates
// that identify devices (IssueDevice). Device certificates are issued only from a PKCS#10
// certificate request that passes CheckCSR; the CA decides every field of the certificate
// and ignores any extension the request asks for.
//
// EST bodies travel base64-encoded: ParseCSR reads a simpleenroll body (RFC 7030 §4.2),
// EncodeCertsOnly and ParseCertsOnly write and read the degenerate "certs-only" CMS
// SignedData of cacerts and enrollment responses (RFC 7030 §4.1, RFC 5652 §5), and
// EncodeBase64 and DecodeBase64 wrap and unwrap them.
//
// Nothing in this package reads the clock or a global random source on its own: functions
// take the current time and a random source. A nil random source means crypto/rand.Reader.
// Errors are *vitalgate.Error values whose messages are safe to show to a caller and never
// echo the input.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
)

// Validity periods and subject names used by the CA.
const (
	// CAValidityYears is the lifetime of a root created by NewCA.
	CAValidityYears = 10
	// DefaultServerValidity is the lifetime of a server certificate when IssueServer is
	// given a zero validity.
	DefaultServerValidity = 365 * 24 * time.Hour
	// DefaultDeviceValidity is the lifetime of a device certificate when IssueDevice is
	// given a zero validity.
	DefaultDeviceValidity = 90 * 24 * time.Hour
	// ClockSkew is how far before "now" an issued certificate's NotBefore is set, so that a
	// device whose clock runs slightly behind accepts it at once.
	ClockSkew = time.Minute
	// Organization is the subject organization of the CA and of server certificates.
	Organization = "Vitalgate"
	// DeviceOrganization is the subject organization of every device certificate.
	DeviceOrganization = "Vitalgate device"
	// DeviceURIPrefix prefixes the device id in the URI SAN of a device certificate.
	DeviceURIPrefix = "urn:vitalgate:device:"
)

// CA is a certificate authority: a root certificate and its private key. A CA is safe for
// concurrent use; it is never modified after creation.
type CA struct {
	cert  *x509.Certificate
	key   crypto.Signer
	roots *x509.CertPool // cert alone, for VerifyClient; never handed out
}

// newCA returns a CA for a certificate and its key.
func newCA(cert *x509.Certificate, key crypto.Signer) *CA {
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &CA{cert: cert, key: key, roots: roots}
}

// NewCA creates a self-signed root CA named commonName with a new ECDSA P-256 key, valid
// for CAValidityYears from now (minus ClockSkew). The root may sign certificates but no
// subordinate CA (MaxPathLen 0).
func NewCA(commonName string, now time.Time, rnd io.Reader) (*CA, error) {
	commonName = strings.TrimSpace(commonName)
	if commonName == "" {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the CA needs a common name")
	}
	rnd = randOrDefault(rnd)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, vitalgate.Internal(err, "generate CA key")
	}
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	subject := pkix.Name{CommonName: commonName, Organization: []string{Organization}}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-ClockSkew),
		NotAfter:              now.AddDate(CAValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, vitalgate.Internal(err, "create CA certificate")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, vitalgate.Internal(err, "parse CA certificate")
	}
	return newCA(cert, key), nil
}

// LoadCA loads a CA from a PEM "CERTIFICATE" and a PEM private key (PKCS#8 "PRIVATE KEY",
// or SEC 1 "EC PRIVATE KEY"). It fails with EINVALID if either does not parse, if the
// certificate is not a CA certificate that may sign certificates, or if the key does not
// belong to the certificate.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := ParseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the CA certificate is not a certificate authority")
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the CA private key does not match the CA certificate")
	}
	return newCA(cert, key), nil
}

// MarshalPEM returns the CA certificate as a PEM "CERTIFICATE" block and its private key as
// a PEM PKCS#8 "PRIVATE KEY" block. The key is unencrypted: store it with mode 0600.
func (ca *CA) MarshalPEM() (certPEM, keyPEM []byte, err error) {
	keyPEM, err = MarshalKeyPEM(ca.key)
	if err != nil {
		return nil, nil, err
	}
	return MarshalCertPEM(ca.cert), keyPEM, nil
}

// Certificate returns the CA's root certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a new certificate pool holding only the CA's root certificate, for use as
// tls.Config.ClientCAs or RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// IssueServer issues a TLS server certificate with a new ECDSA P-256 key for hosts: IP
// addresses become IP SANs, anything else a DNS SAN; the first host is also the subject
// common name. A zero validity means DefaultServerValidity; the certificate never outlives
// the CA. It returns the certificate as a PEM "CERTIFICATE" block and the key as a PEM
// PKCS#8 "PRIVATE KEY" block. Errors: EINVALID for no hosts, an empty or malformed host or
// a negative validity; EINTERNAL if the CA has expired.
func (ca *CA) IssueServer(hosts []string, now time.Time, validity time.Duration, rnd io.Reader) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, vitalgate.Errorf(vitalgate.EINVALID, "a server certificate needs at least one host name or address")
	}
	var dnsNames []string
	var ips []net.IP
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if !validDNSName(h) {
			return nil, nil, vitalgate.Errorf(vitalgate.EINVALID, "a server host is neither an IP address nor a valid DNS name")
		}
		dnsNames = append(dnsNames, strings.ToLower(h))
	}
	if validity == 0 {
		validity = DefaultServerValidity
	}
	notBefore, notAfter, err := ca.window(now, validity)
	if err != nil {
		return nil, nil, err
	}
	rnd = randOrDefault(rnd)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rnd)
	if err != nil {
		return nil, nil, vitalgate.Internal(err, "generate server key")
	}
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: strings.TrimSpace(hosts[0]), Organization: []string{Organization}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, vitalgate.Internal(err, "create server certificate")
	}
	keyPEM, err = MarshalKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pemEncode(pemCertificate, der), keyPEM, nil
}

// IssueDevice issues a client certificate for the device deviceID from a certificate
// request that passes CheckCSR. The CA decides every field: subject CN=deviceID,
// O=DeviceOrganization; a URI SAN DeviceURIPrefix+deviceID; KeyUsage DigitalSignature
// (and KeyEncipherment for an RSA key); ExtKeyUsage ClientAuth only; not a CA; a random
// positive 128-bit serial. Extensions requested in the CSR are ignored. The certificate is
// valid from now-ClockSkew for validity (DefaultDeviceValidity when zero), never beyond
// the CA's own expiry. Errors: those of CheckCSR; EINVALID for a negative validity;
// EINTERNAL if the CA has expired.
func (ca *CA) IssueDevice(csr *x509.CertificateRequest, deviceID string, now time.Time, validity time.Duration, rnd io.Reader) (*x509.Certificate, error) {
	if err := CheckCSR(csr, deviceID); err != nil {
		return nil, err
	}
	if validity == 0 {
		validity = DefaultDeviceValidity
	}
	notBefore, notAfter, err := ca.window(now, validity)
	if err != nil {
		return nil, err
	}
	rnd = randOrDefault(rnd)
	serial, err := randomSerial(rnd)
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(csr.PublicKey)
	if err != nil {
		return nil, err
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := csr.PublicKey.(*rsa.PublicKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: deviceID, Organization: []string{DeviceOrganization}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
		URIs:                  []*url.URL{{Scheme: "urn", Opaque: strings.TrimPrefix(DeviceURIPrefix, "urn:") + deviceID}},
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rnd, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, vitalgate.Internal(err, "create device certificate")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, vitalgate.Internal(err, "parse device certificate")
	}
	return cert, nil
}

// VerifyClient checks that cert is a device certificate issued by this CA, valid at now and
// usable for TLS client authentication, and returns its device id. It does not consult
// revocation: the caller checks SerialHex(cert) against its revocation table. Errors are
// all EUNAUTHORIZED: "certificate expired", "certificate not yet valid", or a message
// saying why the certificate is not accepted.
func (ca *CA) VerifyClient(cert *x509.Certificate, now time.Time) (deviceID string, err error) {
	if cert == nil {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "no client certificate")
	}
	if now.After(cert.NotAfter) {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "certificate expired")
	}
	if now.Before(cert.NotBefore) {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "certificate not yet valid")
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       ca.roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		msg := "certificate not issued by this authority"
		var invalid x509.CertificateInvalidError
		if errors.As(err, &invalid) {
			switch invalid.Reason {
			case x509.Expired:
				msg = "certificate expired" // the CA itself has expired
			case x509.IncompatibleUsage:
				msg = "certificate not valid for client authentication"
			}
		}
		return "", &vitalgate.Error{Code: vitalgate.EUNAUTHORIZED, Message: msg, Err: err}
	}
	id, ok := DeviceIDFromCert(cert)
	if !ok {
		return "", vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "certificate is not a device certificate")
	}
	return id, nil
}

// window returns the validity window of a certificate issued at now for validity, clipped
// to the CA's own validity.
func (ca *CA) window(now time.Time, validity time.Duration) (notBefore, notAfter time.Time, err error) {
	if validity < 0 {
		return time.Time{}, time.Time{}, vitalgate.Errorf(vitalgate.EINVALID, "certificate validity must not be negative")
	}
	notBefore = now.Add(-ClockSkew)
	if notBefore.Before(ca.cert.NotBefore) {
		notBefore = ca.cert.NotBefore
	}
	notAfter = now.Add(validity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !now.Before(ca.cert.NotAfter) || now.Before(ca.cert.NotBefore) {
		return time.Time{}, time.Time{}, vitalgate.Internal(fmt.Errorf("CA valid %s to %s, now %s",
			ca.cert.NotBefore.Format(time.RFC3339), ca.cert.NotAfter.Format(time.RFC3339), now.Format(time.RFC3339)),
			"CA certificate is not valid now")
	}
	return notBefore, notAfter, nil
}

// randomSerial returns a random positive serial number of up to 128 bits.
func randomSerial(rnd io.Reader) (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for range 8 {
		n, err := rand.Int(rnd, limit)
		if err != nil {
			return nil, vitalgate.Internal(err, "generate serial number")
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
	return nil, vitalgate.Internal(errors.New("random source returns only zeros"), "generate serial number")
}

// subjectKeyID derives a key identifier from pub as RFC 7093 §2 method 1: the leftmost
// 160 bits of the SHA-256 hash of the subjectPublicKey bit string.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spkiDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, vitalgate.Internal(err, "marshal public key")
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spkiDER, &spki); err != nil {
		return nil, vitalgate.Internal(err, "parse public key")
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// validDNSName reports whether s is a plausible DNS name for a server certificate: ASCII
// letters, digits, hyphens and dots, an optional leading "*." wildcard label, labels of
// 1 to 63 characters, 253 characters in all.
func validDNSName(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// randOrDefault returns rnd, or crypto/rand.Reader when rnd is nil.
func randOrDefault(rnd io.Reader) io.Reader {
	if rnd == nil {
		return rand.Reader
	}
	return rnd
}
