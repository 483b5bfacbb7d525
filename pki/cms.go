package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"slices"

	"github.com/vitalgate/vitalgate"
)

// CMS object identifiers (RFC 5652 §4, §5.1).
var (
	oidData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
)

// EncodeCertsOnly returns the DER encoding of a degenerate CMS SignedData holding certs and
// no signature, the "certs-only" response of EST cacerts and simpleenroll (RFC 7030 §4.1.3,
// §4.2.3; RFC 5652 §5):
//
//	ContentInfo { contentType id-signedData, content [0] EXPLICIT SignedData {
//	    version 1, digestAlgorithms {}, encapContentInfo { id-data },
//	    certificates [0] IMPLICIT { certs... }, signerInfos {} } }
//
// The certificates are a DER SET OF, so they are written in the order of their encodings,
// with duplicates dropped; the order carries no meaning (RFC 5652 §5.1). The result is
// usually sent base64-encoded (see EncodeBase64).
func EncodeCertsOnly(certs ...*x509.Certificate) ([]byte, error) {
	if len(certs) == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "no certificates to encode")
	}
	raws := make([][]byte, 0, len(certs))
	for _, c := range certs {
		if c == nil || len(c.Raw) == 0 {
			return nil, vitalgate.Errorf(vitalgate.EINVALID, "cannot encode an empty certificate")
		}
		raws = append(raws, c.Raw)
	}
	// For complete, distinct DER encodings none is a prefix of another, so bytewise order
	// is the X.690 §11.6 order.
	slices.SortFunc(raws, bytes.Compare)
	raws = slices.CompactFunc(raws, bytes.Equal)

	emptySet := asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true}
	sd := struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo struct{ EContentType asn1.ObjectIdentifier }
		Certificates     asn1.RawValue
		SignerInfos      asn1.RawValue
	}{
		Version:          1,
		DigestAlgorithms: emptySet,
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: bytes.Join(raws, nil)},
		SignerInfos:      emptySet,
	}
	sd.EncapContentInfo.EContentType = oidData
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, vitalgate.Internal(err, "marshal SignedData")
	}
	ci := struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}{
		ContentType: oidSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER},
	}
	der, err := asn1.Marshal(ci)
	if err != nil {
		return nil, vitalgate.Internal(err, "marshal ContentInfo")
	}
	return der, nil
}

// ParseCertsOnly reads the DER encoding of a CMS ContentInfo holding a SignedData, as an
// EST client receives from cacerts or simpleenroll once base64-decoded (see DecodeBase64),
// and returns the X.509 certificates it carries, in the order they appear. Signer
// information, if any, is ignored and not verified; other certificate formats (attribute
// certificates and the like) are skipped. The encoding must be DER: BER indefinite lengths
// are not accepted.
//
// Errors: EINVALID if the input is not such a structure, trailing data follows it, a
// certificate does not parse, or it holds no X.509 certificate.
func ParseCertsOnly(der []byte) ([]*x509.Certificate, error) {
	invalid := func(msg string, err error) error {
		return &vitalgate.Error{Code: vitalgate.EINVALID, Message: msg, Err: err}
	}
	const notCMS = "not a CMS certs-only message"
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	rest, err := asn1.Unmarshal(der, &ci)
	if err != nil {
		return nil, invalid(notCMS, err)
	}
	if len(rest) != 0 {
		return nil, invalid("trailing data after the CMS message", nil)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, invalid("CMS message is not SignedData", nil)
	}
	if !isTag(ci.Content, asn1.ClassContextSpecific, 0, true) {
		return nil, invalid(notCMS, nil)
	}
	var sd asn1.RawValue
	if rest, err = asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) != 0 ||
		!isTag(sd, asn1.ClassUniversal, asn1.TagSequence, true) {
		return nil, invalid(notCMS, err)
	}

	// SignedData ::= SEQUENCE { version, digestAlgorithms SET, encapContentInfo SEQUENCE,
	//   certificates [0] IMPLICIT OPTIONAL, crls [1] IMPLICIT OPTIONAL, signerInfos SET }
	elems, err := rawElements(sd.Bytes)
	if err != nil {
		return nil, invalid(notCMS, err)
	}
	if len(elems) < 4 {
		return nil, invalid(notCMS, nil)
	}
	var version int
	if rest, err := asn1.Unmarshal(elems[0].FullBytes, &version); err != nil || len(rest) != 0 {
		return nil, invalid(notCMS, err)
	}
	if !isTag(elems[1], asn1.ClassUniversal, asn1.TagSet, true) ||
		!isTag(elems[2], asn1.ClassUniversal, asn1.TagSequence, true) ||
		!isTag(elems[len(elems)-1], asn1.ClassUniversal, asn1.TagSet, true) {
		return nil, invalid(notCMS, nil)
	}
	var certField *asn1.RawValue
	switch middle := elems[3 : len(elems)-1]; {
	case len(middle) == 0:
	case len(middle) == 1 && isTag(middle[0], asn1.ClassContextSpecific, 1, true):
	case len(middle) <= 2 && isTag(middle[0], asn1.ClassContextSpecific, 0, true) &&
		(len(middle) == 1 || isTag(middle[1], asn1.ClassContextSpecific, 1, true)):
		certField = &middle[0]
	default:
		return nil, invalid(notCMS, nil)
	}
	if certField == nil {
		return nil, invalid("CMS message holds no certificates", nil)
	}
	choices, err := rawElements(certField.Bytes)
	if err != nil {
		return nil, invalid(notCMS, err)
	}
	var certs []*x509.Certificate
	for _, choice := range choices {
		if !isTag(choice, asn1.ClassUniversal, asn1.TagSequence, true) {
			continue // extendedCertificate, attribute certificates, other: not ours to read
		}
		cert, err := x509.ParseCertificate(choice.FullBytes)
		if err != nil {
			return nil, invalid("CMS message holds a certificate that does not parse", err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, invalid("CMS message holds no certificates", nil)
	}
	return certs, nil
}

// rawElements splits the contents of a constructed DER value into its elements.
func rawElements(b []byte) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	for len(b) > 0 {
		var rv asn1.RawValue
		rest, err := asn1.Unmarshal(b, &rv)
		if err != nil {
			return nil, err
		}
		out = append(out, rv)
		b = rest
	}
	return out, nil
}

// isTag reports whether rv has the given class, tag and form.
func isTag(rv asn1.RawValue, class, tag int, compound bool) bool {
	return rv.Class == class && rv.Tag == tag && rv.IsCompound == compound
}
