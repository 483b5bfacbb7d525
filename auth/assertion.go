package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vitalgate/vitalgate"
)

const cryptoSHA256 = crypto.SHA256

// MinRSABits is the smallest RSA modulus accepted in a client's key set.
const MinRSABits = 2048

// ParseJWKS parses a client's JSON Web Key Set and keeps only public RSA (≥ 2048 bits) and
// P-384/P-256 EC keys usable for signatures. Returns EINVALID when no key is left.
func ParseJWKS(data []byte) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the JWKS is not valid JSON Web Key Set JSON")
	}
	var keep []jose.JSONWebKey
	for _, k := range set.Keys {
		if !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") || !strongKey(k.Key) {
			continue
		}
		keep = append(keep, k)
	}
	if len(keep) == 0 {
		return nil, vitalgate.Errorf(vitalgate.EINVALID, "the JWKS holds no usable public signing key")
	}
	set.Keys = keep
	return &set, nil
}

// strongKey reports whether a public key is one ParseJWKS keeps: RSA of at least MinRSABits
// or ECDSA on P-256 or P-384.
func strongKey(k any) bool {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return k.N != nil && k.N.BitLen() >= MinRSABits
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256() || k.Curve == elliptic.P384()
	}
	return false
}

// AssertionAlgorithms are the client assertion algorithms SMART Backend Services requires.
var AssertionAlgorithms = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

// VerifyAssertion checks a private_key_jwt client assertion (SMART Backend Services):
// signed with RS384 or ES384 by a key in jwks, iss = sub = clientID, aud one of tokenURLs, exp at
// most 5 minutes ahead, a jti. It returns the jti and expiry for the replay check.
func VerifyAssertion(assertion, clientID string, tokenURLs []string, jwks *jose.JSONWebKeySet, now time.Time) (jti string, exp time.Time, err error) {
	bad := func(why string) error {
		return &vitalgate.Error{Code: vitalgate.EUNAUTHORIZED, Message: "the client assertion is not valid", Err: errors.New(why)}
	}
	if len(assertion) > 16384 {
		return "", time.Time{}, bad("too long")
	}
	tok, err := jwt.ParseSigned(assertion, AssertionAlgorithms)
	if err != nil {
		return "", time.Time{}, bad("parse: " + err.Error())
	}
	if len(tok.Headers) != 1 {
		return "", time.Time{}, bad("headers")
	}
	keys := jwks.Keys
	if kid := tok.Headers[0].KeyID; kid != "" {
		keys = jwks.Key(kid)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != tok.Headers[0].Algorithm {
			continue
		}
		if err := tok.Claims(k.Key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return "", time.Time{}, bad("no key verifies the signature")
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{
		Issuer: clientID, Subject: clientID, AnyAudience: jwt.Audience(tokenURLs), Time: now,
	}, 30*time.Second); err != nil {
		return "", time.Time{}, bad("claims: " + err.Error())
	}
	if claims.Expiry == nil || claims.ID == "" || len(claims.ID) > 256 {
		return "", time.Time{}, bad("exp and jti are required")
	}
	exp = claims.Expiry.Time()
	if exp.Sub(now) > MaxTokenTTL {
		return "", time.Time{}, bad("exp more than 5 minutes ahead")
	}
	return claims.ID, exp, nil
}
