package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/vitalgate/vitalgate"
)

// TestApprovedPasskey: before the WebAuthn library verifies a new credential, anything but
// an ES256 (P-256) key without attestation is refused, so that no attestation verifier and
// no non-approved curve is ever reached.
func TestApprovedPasskey(t *testing.T) {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x, y := make([]byte, 32), make([]byte, 32)
	pk.X.FillBytes(x)
	pk.Y.FillBytes(y)
	key := func(alg webauthncose.COSEAlgorithmIdentifier, crv webauthncose.COSEEllipticCurve) []byte {
		b, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(alg)},
			Curve: int64(crv), XCoord: x, YCoord: y})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		format string
		key    []byte
		ok     bool
	}{
		{"ES256 without attestation", "none", key(webauthncose.AlgES256, webauthncose.P256), true},
		{"packed attestation", "packed", key(webauthncose.AlgES256, webauthncose.P256), false},
		{"tpm attestation", "tpm", key(webauthncose.AlgES256, webauthncose.P256), false},
		{"android-safetynet attestation", "android-safetynet", key(webauthncose.AlgES256, webauthncose.P256), false},
		{"ES256K (secp256k1)", "none", key(webauthncose.AlgES256K, webauthncose.Secp256k1), false},
		{"ES384", "none", key(webauthncose.AlgES384, webauthncose.P384), false},
		{"no key", "none", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p protocol.ParsedCredentialCreationData
			p.Response.AttestationObject.Format = tt.format
			p.Response.AttestationObject.AuthData.AttData.CredentialPublicKey = tt.key
			err := approvedPasskey(&p)
			if tt.ok != (err == nil) || (err != nil && vitalgate.ErrorCode(err) != vitalgate.EINVALID) {
				t.Fatalf("approvedPasskey = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
