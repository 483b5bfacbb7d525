package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"io"

	"github.com/vitalgate/vitalgate"
)

// EST media types (RFC 7030 §4.1.3, §4.2.1, §4.2.3).
const (
	// ContentTypePKCS10 is the media type of a simpleenroll or simplereenroll request.
	ContentTypePKCS10 = "application/pkcs10"
	// ContentTypeCertsOnly is the media type of a cacerts or enrollment response.
	ContentTypeCertsOnly = "application/pkcs7-mime; smime-type=certs-only"
)

// Limits on certificate requests.
const (
	// MaxCSRSize is the largest certificate request body ParseCSR accepts, in bytes.
	MaxCSRSize = 64 << 10
	// MinRSABits is the smallest RSA modulus accepted in a certificate request, in bits.
	MinRSABits = 2048
	// MaxRSABits is the largest RSA modulus accepted, in bits.
	MaxRSABits = 8192
	// MaxDeviceIDLength is the longest device id a certificate can carry.
	MaxDeviceIDLength = 64
)

// oidCommonName is id-at-commonName (RFC 5280 Appendix A).
var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// ParseCSR reads the body of an EST simpleenroll or simplereenroll request (RFC 7030
// §4.2.1): the base64 encoding of a DER PKCS#10 certificate request, with any line breaks
// or other white space. For convenience it also accepts a PEM "CERTIFICATE REQUEST" block,
// as openssl writes by default. It checks the request's self-signature, the proof that the
// requester holds the private key, but no other policy: see CheckCSR.
//
// Errors: ETOOLARGE for a body over MaxCSRSize; EINVALID for a body that is empty, not
// base64 or not a PKCS#10 structure; EUNPROCESSABLE for a signature that does not verify.
func ParseCSR(body []byte) (*x509.CertificateRequest, error) {
	if len(body) > MaxCSRSize {
		return nil, vitalgate.Errorf(vitalgate.ETOOLARGE, "certificate request is larger than %d bytes", MaxCSRSize)
	}
	var der []byte
	if block, _ := pem.Decode(body); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "PEM block is not a certificate request")
		}
		der = block.Bytes
	} else {
		var err error
		if der, err = DecodeBase64(body); err != nil {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "certificate request is not valid base64")
		}
	}
	if len(der) == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "certificate request is empty")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, &vitalgate.Error{Code: vitalgate.EINVALID, Message: "certificate request is not a valid PKCS#10 request", Err: err}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &vitalgate.Error{Code: vitalgate.EUNPROCESSABLE, Message: "certificate request signature does not verify", Err: err}
	}
	return csr, nil
}

// CheckCSR applies Vitalgate's policy to a device's certificate request:
//
//   - deviceID is 1 to MaxDeviceIDLength characters from A-Z, a-z, 0-9, '-', '.' and '_';
//   - the subject holds exactly one common name, equal to deviceID;
//   - the key is ECDSA P-256 or P-384, Ed25519, or RSA of MinRSABits to MaxRSABits bits;
//   - the request is signed with SHA-256 or stronger (or Ed25519), and the signature verifies.
//
// Extensions and attributes requested in the CSR are ignored: the CA decides the contents
// of the certificate. Errors: EINVALID for a nil request or a malformed deviceID;
// EUNPROCESSABLE for a request that breaks the policy.
func CheckCSR(csr *x509.CertificateRequest, deviceID string) error {
	if csr == nil {
		return vitalgate.Errorf(vitalgate.EINVALID, "no certificate request")
	}
	if !validDeviceID(deviceID) {
		return vitalgate.Errorf(vitalgate.EINVALID, "device id must be 1 to %d letters, digits, '-', '.' or '_'", MaxDeviceIDLength)
	}
	cns := 0
	for _, atv := range csr.Subject.Names {
		if atv.Type.Equal(oidCommonName) {
			cns++
		}
	}
	if cns != 1 {
		return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "certificate request subject must have exactly one common name")
	}
	if csr.Subject.CommonName != deviceID {
		return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "certificate request common name does not match the device id")
	}
	switch pub := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384() {
			return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "certificate request key uses an unsupported elliptic curve; use P-256 or P-384")
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if bits := pub.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "certificate request RSA key must be %d to %d bits", MinRSABits, MaxRSABits)
		}
	default:
		return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "certificate request key type is not supported; use ECDSA P-256, P-384, Ed25519 or RSA")
	}
	switch csr.SignatureAlgorithm {
	case x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
		x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
		x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS,
		x509.PureEd25519:
	default:
		return vitalgate.Errorf(vitalgate.EUNPROCESSABLE, "certificate request signature algorithm is not accepted; use SHA-256 or stronger")
	}
	if err := csr.CheckSignature(); err != nil {
		return &vitalgate.Error{Code: vitalgate.EUNPROCESSABLE, Message: "certificate request signature does not verify", Err: err}
	}
	return nil
}

// NewCSR returns a DER PKCS#10 certificate request for deviceID signed by key, as a device
// (or the simulator) sends it to simpleenroll after base64 encoding (see EncodeBase64).
func NewCSR(deviceID string, key crypto.Signer, rnd io.Reader) ([]byte, error) {
	if key == nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "no key for the certificate request")
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: deviceID}}
	der, err := x509.CreateCertificateRequest(randOrDefault(rnd), tmpl, key)
	if err != nil {
		return nil, vitalgate.Internal(err, "create certificate request")
	}
	return der, nil
}

// EncodeBase64 returns the standard base64 encoding of der in lines of 64 characters, each
// ending in CRLF: the body of an EST request or response (RFC 7030 §4, RFC 2045).
func EncodeBase64(der []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(der)
	out := make([]byte, 0, len(enc)+len(enc)/64*2+2)
	for len(enc) > 64 {
		out = append(out, enc[:64]...)
		out = append(out, '\r', '\n')
		enc = enc[64:]
	}
	out = append(out, enc...)
	return append(out, '\r', '\n')
}

// DecodeBase64 decodes an EST body: standard base64 with any white space, padding
// optional.
func DecodeBase64(body []byte) ([]byte, error) {
	clean := make([]byte, 0, len(body))
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n', '\v', '\f':
		default:
			clean = append(clean, c)
		}
	}
	enc := base64.StdEncoding
	if len(clean)%4 != 0 && !bytes.HasSuffix(clean, []byte("=")) {
		enc = base64.RawStdEncoding
	}
	out := make([]byte, enc.DecodedLen(len(clean)))
	n, err := enc.Decode(out, clean)
	if err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "body is not valid base64")
	}
	return out[:n], nil
}

// validDeviceID reports whether id can be carried in a device certificate's common name
// and URI SAN.
func validDeviceID(id string) bool {
	if id == "" || len(id) > MaxDeviceIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}
