package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/fresh"
)

// Store is what the token service needs from storage.
type Store interface {
	// Client returns a client by id. Returns ENOTFOUND.
	Client(ctx context.Context, id string) (vitalgate.Client, error)
	// UseNonce records key until expires. Returns ECONFLICT if key was recorded before and
	// has not expired.
	UseNonce(ctx context.Context, key string, expires time.Time) error
	// Site returns a site. Returns ENOTFOUND.
	Site(ctx context.Context, id string) (vitalgate.Site, error)
}

// SecretVerifier checks a secret against a stored argon2id hash (SecretChecker). An empty
// hash is checked against a dummy of the same cost and never matches. Returns ETHROTTLED or
// EUNAVAILABLE when the process-wide hashing bound is reached.
type SecretVerifier interface {
	Check(ctx context.Context, hash, secret string) (bool, error)
}

// FailureLimiter throttles failed authentications per (principal, source address)
// (guard.Failures).
type FailureLimiter interface {
	// Allow reports whether principal may try to authenticate from source now, and if
	// not, for how long it may not.
	Allow(principal, source string) (bool, time.Duration)
	// Fail records a failed authentication.
	Fail(principal, source string)
	// Succeed records a successful one (the pair's failures are forgotten).
	Succeed(principal, source string)
}

// AssertionType is the client_assertion_type of private_key_jwt (RFC 7523).
const AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ErrUnsupportedGrant is the internal cause of the error for a grant type other than
// client_credentials (the token endpoint answers unsupported_grant_type).
var ErrUnsupportedGrant = errors.New("unsupported grant type")

// TokenRequest is a decoded OAuth 2.0 token request (client_credentials).
type TokenRequest struct {
	GrantType string
	// Basic is set when the client authenticated with HTTP Basic (client_secret_basic).
	Basic        bool
	ClientID     string // from HTTP Basic
	ClientSecret string // from HTTP Basic
	// Assertion and AssertionType are the private_key_jwt client assertion.
	Assertion     string
	AssertionType string
	Scope         string // space-separated requested scopes; empty: all the client may have
	// Emergency is the raw "emergency" parameter ("true" asks for break-glass access) and
	// EmergencyReason the reason the clinician gives.
	Emergency       string
	EmergencyReason string
	// Site is the "site" parameter: which of the client's sites the token acts within
	// (empty: the client's own site, Client.Site).
	Site string
	// Source is the caller's network address (failure throttling and audit).
	Source string
}

// Token is an issued access token.
type Token struct {
	AccessToken string
	Scopes      []string
	ExpiresIn   time.Duration
	Emergency   bool
	// Site is the site the token acts within (vitalgate.AllSites for a deployment-wide
	// auditor).
	Site string
}

// ServiceConfig are the collaborators and settings of a Service.
type ServiceConfig struct {
	Store    Store
	Tokens   *Tokens
	Secrets  SecretVerifier
	Failures FailureLimiter
	Audit    *audit.Log
	// TokenURLs are the audiences a client assertion may name: this server's token endpoint
	// as clients are told to address it (--public-url, else the host names of the server
	// certificate). Never taken from a request.
	TokenURLs []string
	// EmergencyTTL is the life of an emergency-access token (10 s to 5 min; default 2 min).
	EmergencyTTL time.Duration
	Now          func() time.Time
	Logger       *slog.Logger // optional
	// ClientStaleness bounds how old the client facts are that Authenticate uses (0:
	// DefaultClientStaleness; negative: read the store on every request).
	ClientStaleness time.Duration
	// Signals receives a detection signal for every refused token request; nil: off.
	Signals detect.Sink
}

// Service authenticates API clients and issues their access tokens: one rule for
// client_secret_basic and private_key_jwt, for failure throttling and for emergency access,
// with the audit entry of every grant and refusal.
type Service struct {
	cfg       ServiceConfig
	dummyJWKS []byte // verifies the assertions of unknown clients, so that they cost the same
	clients   *fresh.Cache[string, vitalgate.Client]
}

// NewService returns a token service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil || cfg.Tokens == nil || cfg.Secrets == nil || cfg.Failures == nil || cfg.Audit == nil {
		return nil, errors.New("auth: store, tokens, secrets, failures and audit are required")
	}
	if len(cfg.TokenURLs) == 0 {
		return nil, errors.New("auth: the public token endpoint URL is required")
	}
	if cfg.EmergencyTTL == 0 {
		cfg.EmergencyTTL = 2 * time.Minute
	}
	if cfg.EmergencyTTL < 10*time.Second || cfg.EmergencyTTL > MaxTokenTTL {
		return nil, errors.New("auth: emergency token life must be between 10 s and 5 min")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, err
	}
	dummy, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), Algorithm: string(jose.ES384), Use: "sig"}}})
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, dummyJWKS: dummy, clients: newClientCache(cfg.ClientStaleness, cfg.Now)}, nil
}

// TokenURL returns the first accepted token endpoint URL (the one to advertise).
func (s *Service) TokenURL() string { return s.cfg.TokenURLs[0] }

// PublicTokenURLs returns the token endpoint URLs a client assertion may name as audience:
// publicURL's token endpoint when it is set, else the endpoint on each host name of the
// server certificate at port (the default port 443 also without it).
func PublicTokenURLs(publicURL string, hosts []string, port string) []string {
	if publicURL != "" {
		return []string{strings.TrimSuffix(publicURL, "/") + "/oauth2/token"}
	}
	var out []string
	for _, h := range hosts {
		if strings.Contains(h, ":") {
			h = "[" + h + "]"
		}
		out = append(out, "https://"+h+":"+port+"/oauth2/token")
		if port == "443" {
			out = append(out, "https://"+h+"/oauth2/token")
		}
	}
	return out
}

// IssueToken authenticates the client of a token request and issues its access token.
// The grant and every refusal are audited; a token is returned only once its grant is in
// the audit log. Returns EINVALID for a malformed request (ErrUnsupportedGrant as the cause
// for another grant type), EUNAUTHORIZED for failed client authentication (one answer for
// unknown, disabled and wrong), EFORBIDDEN for scopes or emergency access beyond the
// client's role, ETHROTTLED (with a Throttled cause) after too many failures of this client
// from this address or when too many authentications run at once, and EUNAVAILABLE when
// the grant cannot be audited.
func (s *Service) IssueToken(ctx context.Context, req TokenRequest) (Token, error) {
	c, claims, err := s.authenticate(ctx, req)
	if err != nil {
		return Token{}, s.refuse(ctx, req, c, err)
	}
	tok, issued, err := s.cfg.Tokens.Issue(claims)
	if err != nil {
		return Token{}, s.refuse(ctx, req, c, vitalgate.Internal(err, "issue token"))
	}
	scope := strings.Join(issued.Scopes, " ")
	desc := "scope " + scope
	if issued.Emergency {
		desc = "EMERGENCY ACCESS granted: " + issued.EmergencyReason + "; " + desc
	}
	if err := s.cfg.Audit.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "authn", Subtype: "token",
		AgentType: audit.AgentClient, AgentID: c.ID, AgentRole: string(c.Role), Emergency: issued.Emergency,
		SourceIP: req.Source, OutcomeDesc: desc, Site: entrySite(issued.Site)}); err != nil {
		s.cfg.Logger.Error("token not issued: audit append failed", "client", c.ID, "error", err.Error())
		return Token{}, vitalgate.Unavailable(err, "the token could not be audited; try again")
	}
	s.cfg.Logger.Info("token issued", "request_id", vitalgate.RequestInfoFrom(ctx).ID, "client", c.ID, "role", c.Role,
		"scope", scope, "emergency", issued.Emergency)
	return Token{AccessToken: tok, Scopes: issued.Scopes, ExpiresIn: issued.Expiry.Sub(s.cfg.Now()), Emergency: issued.Emergency, Site: issued.Site}, nil
}

// refuse audits and logs a refused token request and returns err.
func (s *Service) refuse(ctx context.Context, req TokenRequest, c vitalgate.Client, err error) error {
	detect.Emit(s.cfg.Signals, tokenSignal(req, c, err, s.cfg.Now()))
	s.cfg.Logger.Info("token refused", "request_id", vitalgate.RequestInfoFrom(ctx).ID, "client", c.ID,
		"remote", req.Source, "reason", err.Error())
	if aerr := s.cfg.Audit.Append(ctx, audit.Entry{Action: audit.ActionExecute, Type: "authn", Subtype: "token",
		AgentType: audit.AgentClient, AgentID: c.ID, AgentRole: string(c.Role), SourceIP: req.Source,
		Outcome: audit.OutcomeMinorFailure, OutcomeDesc: err.Error(), Site: entrySite(c.Site)}); aerr != nil {
		s.cfg.Logger.Error("audit append failed", "request_id", vitalgate.RequestInfoFrom(ctx).ID, "error", aerr.Error())
	}
	return err
}

var errBadClient = vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client authentication failed")

// authenticate checks the request and the client's credentials and decides the token's
// claims. The client it returns names who claimed to call (for the audit entry).
func (s *Service) authenticate(ctx context.Context, req TokenRequest) (vitalgate.Client, Claims, error) {
	none := vitalgate.Client{ID: trunc(req.ClientID)} // who claims to call, before anything is checked
	if req.GrantType != "client_credentials" {
		return none, Claims{}, &vitalgate.Error{Code: vitalgate.EINVALID, Message: "only grant_type=client_credentials is supported", Err: ErrUnsupportedGrant}
	}
	id := req.ClientID
	switch {
	case req.Basic && req.Assertion != "":
		return none, Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "use one client authentication method, not two")
	case !req.Basic && req.Assertion == "":
		return none, Claims{}, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client authentication is required (HTTP Basic or private_key_jwt)")
	case req.Assertion != "":
		if req.AssertionType != AssertionType {
			return none, Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "client_assertion_type must be %s", AssertionType)
		}
		id = assertionSubject(req.Assertion)
	}
	if len(id) == 0 || len(id) > 128 {
		return none, Claims{}, errBadClient
	}
	claimed := vitalgate.Client{ID: id}
	if ok, wait := s.cfg.Failures.Allow(id, req.Source); !ok {
		return claimed, Claims{}, &vitalgate.Error{Code: vitalgate.ETHROTTLED,
			Message: "too many failed authentications; try again later", Err: &Throttled{Wait: wait}}
	}
	c, err := s.cfg.Store.Client(ctx, id)
	found := err == nil
	if err != nil && vitalgate.ErrorCode(err) != vitalgate.ENOTFOUND {
		return claimed, Claims{}, err
	}
	if !found {
		c = claimed
	}
	if err := s.verifyCredentials(ctx, req, c, found); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.EUNAUTHORIZED {
			s.cfg.Failures.Fail(id, req.Source)
		}
		return c, Claims{}, err
	}
	s.cfg.Failures.Succeed(id, req.Source)
	claims, err := s.decide(c, req)
	if err == nil && claims.Site != c.Site {
		err = s.openSite(ctx, claims.Site)
	}
	return c, claims, err
}

// openSite refuses a token for another of a client's sites once that site is erased (the
// clients of its own are disabled by the erasure).
func (s *Service) openSite(ctx context.Context, id string) error {
	site, err := s.cfg.Store.Site(ctx, id)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
			return vitalgate.Errorf(vitalgate.EFORBIDDEN, "site %q does not exist", id)
		}
		return err
	}
	if err := vitalgate.CheckSiteOpen(site); err != nil {
		return vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "%s", vitalgate.ErrorMessage(err))
	}
	return nil
}

// verifyCredentials checks the client's secret or assertion. Unknown, disabled and
// wrongly registered clients take the same path as real ones, against a dummy credential,
// and get the same answer as a wrong credential.
func (s *Service) verifyCredentials(ctx context.Context, req TokenRequest, c vitalgate.Client, found bool) error {
	usable := found && !c.Disabled && ValidRole(c.Role)
	if req.Basic {
		hash := c.SecretHash
		if !usable {
			hash = "" // the dummy
		}
		ok, err := s.cfg.Secrets.Check(ctx, hash, req.ClientSecret)
		switch code := vitalgate.ErrorCode(err); {
		case code == vitalgate.ETHROTTLED || code == vitalgate.EUNAVAILABLE:
			return err
		case err != nil || !ok || !usable:
			return errBadClient
		}
		return nil
	}
	keys := c.JWKS
	if !usable || len(keys) == 0 {
		keys = s.dummyJWKS
	}
	jwks, err := ParseJWKS(keys)
	if err != nil {
		jwks, _ = ParseJWKS(s.dummyJWKS)
	}
	jti, exp, verr := VerifyAssertion(req.Assertion, c.ID, s.cfg.TokenURLs, jwks, s.cfg.Now())
	if verr != nil {
		return verr
	}
	if err != nil || !usable || len(c.JWKS) == 0 {
		return errBadClient
	}
	if err := s.cfg.Store.UseNonce(ctx, "assertion|"+c.ID+"|"+jti, exp.Add(time.Minute)); err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
			return vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the client assertion was used before (jti replay)")
		}
		return err
	}
	return nil
}

// tokenSite is the site a token of client c acts within: the requested one when it is
// one of the client's sites, else the client's own site.
func tokenSite(c vitalgate.Client, requested string) (string, error) {
	if c.Site == "" {
		return "", vitalgate.Errorf(vitalgate.EFORBIDDEN, "this client belongs to no site")
	}
	if requested == "" || requested == c.Site {
		return c.Site, nil
	}
	if slices.Contains(c.OtherSites, requested) {
		return requested, nil
	}
	return "", vitalgate.Errorf(vitalgate.EFORBIDDEN, "this client does not act within site %q; ask for one of its sites", requested)
}

// decide returns the claims of an authenticated client's token: the scopes it may have and,
// for a clinician who asks with a reason, emergency access.
func (s *Service) decide(c vitalgate.Client, req TokenRequest) (Claims, error) {
	scopes, err := GrantScopes(c.Role, c.Scopes, req.Scope)
	if err != nil {
		return Claims{}, err
	}
	site, err := tokenSite(c, req.Site)
	if err != nil {
		return Claims{}, err
	}
	claims := Claims{ClientID: c.ID, Site: site, Role: c.Role, Scopes: scopes}
	if req.Emergency == "" {
		return claims, nil
	}
	if req.Emergency != "true" {
		return Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "emergency must be \"true\" when given")
	}
	if c.Role != vitalgate.RoleClinician {
		return Claims{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "only clinicians may request emergency access")
	}
	reason := strings.TrimSpace(req.EmergencyReason)
	if len(reason) < 10 || len(reason) > 500 {
		return Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "emergency access needs a reason (emergency_reason, 10 to 500 characters)")
	}
	claims.Emergency, claims.EmergencyReason, claims.TTL = true, reason, s.cfg.EmergencyTTL
	return claims, nil
}

// assertionSubject reads the unverified iss of a client assertion, only to find which
// client's keys must verify it.
func assertionSubject(assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 || len(parts[1]) > 8192 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.Iss
}
