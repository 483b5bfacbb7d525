package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
)

func mustJWKS(t *testing.T, keys ...jose.JSONWebKey) []byte {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRSA(t *testing.T, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEC(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestParseJWKSKeyStrength: RSA keys below 2048 bits and curves other than P-256 and P-384
// are dropped; a set with nothing else left is refused.
func TestParseJWKSKeyStrength(t *testing.T) {
	rsa1024, rsa2048 := mustRSA(t, 1024), mustRSA(t, 2048)
	p256, p384, p521 := mustEC(t, elliptic.P256()), mustEC(t, elliptic.P384()), mustEC(t, elliptic.P521())
	tests := []struct {
		name string
		keys []jose.JSONWebKey
		kids []string // kept keys; none: refused
	}{
		{"RSA-1024 alone", []jose.JSONWebKey{{Key: rsa1024.Public(), KeyID: "weak", Use: "sig"}}, nil},
		{"RSA-2048", []jose.JSONWebKey{{Key: rsa2048.Public(), KeyID: "rsa", Use: "sig"}}, []string{"rsa"}},
		{"RSA-1024 beside RSA-2048", []jose.JSONWebKey{{Key: rsa1024.Public(), KeyID: "weak"}, {Key: rsa2048.Public(), KeyID: "rsa"}}, []string{"rsa"}},
		{"P-256 and P-384", []jose.JSONWebKey{{Key: p256.Public(), KeyID: "p256"}, {Key: p384.Public(), KeyID: "p384"}}, []string{"p256", "p384"}},
		{"P-521", []jose.JSONWebKey{{Key: p521.Public(), KeyID: "p521"}}, nil},
		{"private key", []jose.JSONWebKey{{Key: p256, KeyID: "priv"}}, nil},
		{"encryption key", []jose.JSONWebKey{{Key: p256.Public(), KeyID: "enc", Use: "enc"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := auth.ParseJWKS(mustJWKS(t, tt.keys...))
			if len(tt.kids) == 0 {
				if vitalgate.ErrorCode(err) != vitalgate.EINVALID {
					t.Fatalf("ParseJWKS = %v, %v; want EINVALID", set, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range set.Keys {
				got = append(got, k.KeyID)
			}
			if len(got) != len(tt.kids) {
				t.Fatalf("kept %v, want %v", got, tt.kids)
			}
			for i := range got {
				if got[i] != tt.kids[i] {
					t.Fatalf("kept %v, want %v", got, tt.kids)
				}
			}
		})
	}
}
