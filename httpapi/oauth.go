package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
)

// Clients is what the token endpoint needs from the store.
type Clients interface {
	Client(ctx context.Context, id string) (vitalgate.Client, error)
	UseNonce(ctx context.Context, key string, expires time.Time) error
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// oauthError is an OAuth 2.0 error answer (RFC 6749 §5.2).
type oauthError struct {
	status int
	code   string
	desc   string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (s *Server) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauthError
	if !errors.As(err, &oe) {
		switch vitalgate.ErrorCode(err) {
		case vitalgate.EUNAUTHORIZED:
			oe = &oauthError{401, "invalid_client", vitalgate.ErrorMessage(err)}
		case vitalgate.EFORBIDDEN:
			oe = &oauthError{400, "invalid_scope", vitalgate.ErrorMessage(err)}
		case vitalgate.EINVALID, vitalgate.ETOOLARGE, vitalgate.EUNSUPPORTED:
			oe = &oauthError{400, "invalid_request", vitalgate.ErrorMessage(err)}
		case vitalgate.ETHROTTLED:
			oe = &oauthError{429, "invalid_request", vitalgate.ErrorMessage(err)}
		default:
			status, oo := s.outcome(r, err) // logs internal errors with an id
			oe = &oauthError{status, "server_error", oo.Issue[0].Diagnostics}
		}
	}
	if oe.status == 401 {
		w.Header().Set("WWW-Authenticate", `Basic realm="vitalgate"`)
	}
	if oe.status == 429 {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.failures.window.Seconds())))
	}
	writeJSON(w, oe.status, map[string]string{"error": oe.code, "error_description": oe.desc})
}

// handleToken is the OAuth 2.0 token endpoint: client_credentials with client_secret_basic
// or private_key_jwt (SMART Backend Services).
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	c, claims, err := s.authenticateClient(w, r)
	if err != nil {
		if vitalgate.ErrorCode(err) == vitalgate.EUNAUTHORIZED {
			s.failures.fail(p.RemoteIP, c.ID)
		}
		s.log.Info("token refused", "request_id", requestID(r), "client", c.ID, "remote", p.RemoteIP, "reason", err.Error())
		s.record(r, audit.Entry{Action: audit.ActionExecute, Type: "authn", Subtype: "token", AgentType: audit.AgentClient,
			AgentID: c.ID, AgentRole: string(c.Role), Outcome: audit.OutcomeMinorFailure, OutcomeDesc: err.Error()})
		s.writeOAuthError(w, r, err)
		return
	}
	tok, issued, err := s.tokens.Issue(claims)
	if err != nil {
		s.writeOAuthError(w, r, vitalgate.Internal(err, "issue token"))
		return
	}
	s.log.Info("token issued", "request_id", requestID(r), "client", c.ID, "role", c.Role,
		"scope", strings.Join(issued.Scopes, " "), "emergency", issued.Emergency)
	desc := "scope " + strings.Join(issued.Scopes, " ")
	if issued.Emergency {
		desc = "EMERGENCY ACCESS granted: " + issued.EmergencyReason + "; " + desc
	}
	s.record(r, audit.Entry{Action: audit.ActionExecute, Type: "authn", Subtype: "token", AgentType: audit.AgentClient,
		AgentID: c.ID, AgentRole: string(c.Role), Emergency: issued.Emergency, OutcomeDesc: desc})
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer",
		"expires_in": int(time.Until(issued.Expiry).Round(time.Second).Seconds()),
		"scope":      strings.Join(issued.Scopes, " "),
	})
}

// authenticateClient checks the token request and the client's credentials and decides the
// token's claims.
func (s *Server) authenticateClient(w http.ResponseWriter, r *http.Request) (vitalgate.Client, auth.Claims, error) {
	var none vitalgate.Client
	if err := requireMediaType(r, "application/x-www-form-urlencoded"); err != nil {
		return none, auth.Claims{}, err
	}
	body, err := s.readBody(r, w)
	if err != nil {
		return none, auth.Claims{}, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return none, auth.Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "the request body is not a valid form")
	}
	for k, v := range form {
		if len(v) > 1 {
			return none, auth.Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "parameter %q is repeated", trunc(k))
		}
	}
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		return none, auth.Claims{}, &oauthError{400, "unsupported_grant_type", "only grant_type=client_credentials is supported"}
	}

	// Who claims to be calling?
	id, secret, basic := r.BasicAuth()
	assertion := form.Get("client_assertion")
	switch {
	case basic && assertion != "":
		return none, auth.Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "use one client authentication method, not two")
	case !basic && assertion == "":
		return none, auth.Claims{}, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client authentication is required (HTTP Basic or private_key_jwt)")
	case assertion != "":
		if form.Get("client_assertion_type") != assertionType {
			return none, auth.Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "client_assertion_type must be %s", assertionType)
		}
		id = assertionSubject(assertion)
	}
	if len(id) == 0 || len(id) > 128 {
		return none, auth.Claims{}, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client authentication failed")
	}
	if s.failures.blocked(remoteIP(r), id) {
		return vitalgate.Client{ID: id}, auth.Claims{}, vitalgate.Errorf(vitalgate.ETHROTTLED, "too many failed authentications; try again later")
	}
	badClient := vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "client authentication failed")
	c, err := s.clients.Client(r.Context(), id)
	if vitalgate.ErrorCode(err) == vitalgate.ENOTFOUND {
		return vitalgate.Client{ID: id}, auth.Claims{}, badClient
	} else if err != nil {
		return none, auth.Claims{}, err
	}
	if c.Disabled || !auth.ValidRole(c.Role) {
		return c, auth.Claims{}, badClient
	}
	if basic {
		if c.SecretHash == "" {
			return c, auth.Claims{}, badClient
		}
		ok, err := auth.VerifySecret(c.SecretHash, secret)
		if err != nil || !ok {
			return c, auth.Claims{}, badClient
		}
	} else {
		if len(c.JWKS) == 0 {
			return c, auth.Claims{}, badClient
		}
		jwks, err := auth.ParseJWKS(c.JWKS)
		if err != nil {
			return c, auth.Claims{}, badClient
		}
		now := s.now()
		jti, exp, err := auth.VerifyAssertion(assertion, c.ID, s.tokenURLs(r), jwks, now)
		if err != nil {
			return c, auth.Claims{}, err
		}
		if err := s.clients.UseNonce(r.Context(), "assertion|"+c.ID+"|"+jti, exp.Add(time.Minute)); err != nil {
			if vitalgate.ErrorCode(err) == vitalgate.ECONFLICT {
				return c, auth.Claims{}, vitalgate.Errorf(vitalgate.EUNAUTHORIZED, "the client assertion was used before (jti replay)")
			}
			return c, auth.Claims{}, err
		}
	}

	scopes, err := auth.GrantScopes(c.Role, c.Scopes, form.Get("scope"))
	if err != nil {
		return c, auth.Claims{}, err
	}
	claims := auth.Claims{ClientID: c.ID, Role: c.Role, Scopes: scopes}
	if e := form.Get("emergency"); e != "" {
		if e != "true" {
			return c, auth.Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "emergency must be \"true\" when given")
		}
		if c.Role != vitalgate.RoleClinician {
			return c, auth.Claims{}, vitalgate.Errorf(vitalgate.EFORBIDDEN, "only clinicians may request emergency access")
		}
		reason := strings.TrimSpace(form.Get("emergency_reason"))
		if len(reason) < 10 || len(reason) > 500 {
			return c, auth.Claims{}, vitalgate.Errorf(vitalgate.EINVALID, "emergency access needs a reason (emergency_reason, 10 to 500 characters)")
		}
		claims.Emergency, claims.EmergencyReason, claims.TTL = true, reason, s.cfg.EmergencyTTL
	}
	return c, claims, nil
}

// assertionSubject reads the unverified iss of a client assertion, only to find which
// client's keys must verify it.
func assertionSubject(assertion string) string {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 || len(parts[1]) > 8192 {
		return ""
	}
	payload, err := base64URLDecode(parts[1])
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

// tokenURL is this server's token endpoint, as clients address it.
func (s *Server) tokenURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/oauth2/token"
	}
	return "https://" + r.Host + "/oauth2/token"
}

// tokenURLs are the token endpoint URLs a client assertion may name as audience: the
// configured public one and the one the request was addressed to.
func (s *Server) tokenURLs(r *http.Request) []string {
	return []string{s.tokenURL(r), "https://" + r.Host + "/oauth2/token"}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// failureLimiter slows down password guessing: after a few failed authentications from one
// address or for one client within a window, further attempts are refused until it passes.
type failureLimiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	now    func() time.Time
	counts map[string][]time.Time
}

func newFailureLimiter(max int, window time.Duration, now func() time.Time) *failureLimiter {
	return &failureLimiter{max: max, window: window, now: now, counts: make(map[string][]time.Time)}
}

func (f *failureLimiter) recent(key string) int {
	cut := f.now().Add(-f.window)
	ts := f.counts[key]
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(f.counts, key)
	} else {
		f.counts[key] = ts
	}
	return len(ts)
}

// setMax changes the number of failures allowed per window.
func (f *failureLimiter) setMax(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.max = n
}

func (f *failureLimiter) blocked(ip, client string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.recent("ip|"+ip) >= f.max*4 || f.recent("client|"+client) >= f.max
}

func (f *failureLimiter) fail(ip, client string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.counts) > 100000 {
		clear(f.counts)
	}
	now := f.now()
	f.counts["ip|"+ip] = append(f.counts["ip|"+ip], now)
	if client != "" {
		f.counts["client|"+client] = append(f.counts["client|"+client], now)
	}
}

func base64URLDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
