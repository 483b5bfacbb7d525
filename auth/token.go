package auth

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vitalgate/vitalgate"
)

// MaxTokenTTL is the longest an access token or a client assertion may live.
const MaxTokenTTL = 5 * time.Minute

// Claims are what an access token asserts.
type Claims struct {
	ClientID string
	// Site is the site the client acts within (vitalgate.AllSites for a deployment-wide
	// auditor): every capability scopes the token's acts to it.
	Site            string
	Role            vitalgate.Role
	Scopes          []string
	Emergency       bool
	EmergencyReason string
	ID              string
	Expiry          time.Time
	// TTL, when positive and shorter than the service's, shortens this token's life (for
	// emergency access).
	TTL time.Duration
}

// tokenClaims is the JWT payload.
type tokenClaims struct {
	jwt.Claims
	Scope           string `json:"scope"`
	Role            string `json:"role"`
	Site            string `json:"site"`
	Emergency       bool   `json:"emergency,omitempty"`
	EmergencyReason string `json:"emergency_reason,omitempty"`
}

// Tokens issues and verifies access tokens: ES256-signed JWTs with SMART v2 scopes.
type Tokens struct {
	key      *ecdsa.PrivateKey
	keyID    string
	signer   jose.Signer
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
}

// NewTokens returns a token service. issuer and audience are the server's base URL and its
// FHIR base; ttl is capped at MaxTokenTTL.
func NewTokens(key *ecdsa.PrivateKey, issuer, audience string, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if ttl <= 0 || ttl > MaxTokenTTL {
		ttl = MaxTokenTTL
	}
	if now == nil {
		now = time.Now
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	tp, err := jwk.Thumbprint(cryptoSHA256)
	if err != nil {
		return nil, err
	}
	kid := hex.EncodeToString(tp[:8])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid))
	if err != nil {
		return nil, err
	}
	return &Tokens{key: key, keyID: kid, signer: signer, issuer: issuer, audience: audience, ttl: ttl, now: now}, nil
}

// TTL returns the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs an access token for c (ID and Expiry are filled in) and returns it.
func (t *Tokens) Issue(c Claims) (string, Claims, error) {
	now := t.now()
	jti := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, jti); err != nil {
		return "", c, err
	}
	c.ID = hex.EncodeToString(jti)
	ttl := t.ttl
	if c.TTL > 0 && c.TTL < ttl {
		ttl = c.TTL
	}
	c.Expiry = now.Add(ttl)
	tc := tokenClaims{
		Claims: jwt.Claims{
			Issuer: t.issuer, Subject: c.ClientID, Audience: jwt.Audience{t.audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(c.Expiry), ID: c.ID,
		},
		Scope: strings.Join(c.Scopes, " "), Role: string(c.Role), Site: c.Site,
		Emergency: c.Emergency, EmergencyReason: c.EmergencyReason,
	}
	s, err := jwt.Signed(t.signer).Claims(tc).Serialize()
	return s, c, err
}

// invalidToken is the one answer to every bad token: callers learn nothing about why.
func invalidToken(why string) error {
	return &vitalgate.Error{Code: vitalgate.EUNAUTHORIZED, Message: "the access token is not valid", Err: errors.New(why)}
}

// Verify checks an access token's signature (ES256 only: "none", HS256 and every other
// algorithm are refused), issuer, audience and times, and returns its claims.
func (t *Tokens) Verify(token string) (Claims, error) {
	if len(token) > 8192 {
		return Claims{}, invalidToken("token too long")
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Claims{}, invalidToken("parse: " + err.Error())
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID != t.keyID {
		return Claims{}, invalidToken("unknown key id")
	}
	var tc tokenClaims
	if err := tok.Claims(&t.key.PublicKey, &tc); err != nil {
		return Claims{}, invalidToken("signature: " + err.Error())
	}
	if err := tc.Claims.ValidateWithLeeway(jwt.Expected{
		Issuer: t.issuer, AnyAudience: jwt.Audience{t.audience}, Time: t.now(),
	}, 0); err != nil {
		return Claims{}, invalidToken("claims: " + err.Error())
	}
	if tc.Expiry == nil || tc.Expiry.Time().Sub(t.now()) > MaxTokenTTL+time.Second || tc.Subject == "" || tc.Site == "" {
		return Claims{}, invalidToken("lifetime")
	}
	return Claims{
		ClientID: tc.Subject, Site: tc.Site, Role: vitalgate.Role(tc.Role), Scopes: strings.Fields(tc.Scope),
		Emergency: tc.Emergency, EmergencyReason: tc.EmergencyReason, ID: tc.ID, Expiry: tc.Expiry.Time(),
	}, nil
}

// entrySite is the audit entry site of an act of a client of site: none for a
// deployment-wide client.
func entrySite(site string) string {
	if site == vitalgate.AllSites {
		return ""
	}
	return site
}
