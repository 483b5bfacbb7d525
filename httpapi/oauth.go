package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/guard"
)

// TokenIssuer is what the token endpoint needs: the token service (auth.Service).
type TokenIssuer interface {
	// IssueToken authenticates the client of a token request and issues its access token.
	// Returns EINVALID (auth.ErrUnsupportedGrant as cause for another grant type),
	// EUNAUTHORIZED, EFORBIDDEN, ETHROTTLED (auth.Throttled as cause) and EUNAVAILABLE.
	IssueToken(ctx context.Context, req auth.TokenRequest) (auth.Token, error)
	// Authenticate verifies a bearer access token and that its client may still act.
	// Returns EUNAUTHORIZED and EUNAVAILABLE.
	Authenticate(ctx context.Context, token string) (auth.Claims, error)
}

// oauthError is an OAuth 2.0 error answer (RFC 6749 §5.2).
type oauthError struct {
	status int
	code   string
	desc   string
}

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
	switch {
	case errors.Is(err, auth.ErrUnsupportedGrant):
		oe = &oauthError{400, "unsupported_grant_type", vitalgate.ErrorMessage(err)}
	default:
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
		w.Header().Set("Retry-After", strconv.Itoa(guard.RetryAfterSeconds(max(auth.RetryAfter(err), time.Second))))
	}
	writeJSON(w, oe.status, map[string]string{"error": oe.code, "error_description": oe.desc})
}

// handleToken is the OAuth 2.0 token endpoint: client_credentials with client_secret_basic
// or private_key_jwt (SMART Backend Services). The token service authenticates the client,
// decides and audits; this only decodes the form and encodes the answer.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, p vitalgate.Principal) {
	req, err := s.decodeTokenRequest(w, r)
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	req.Source = p.RemoteIP
	tok, err := s.auth.IssueToken(r.Context(), req)
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.AccessToken, "token_type": "Bearer",
		"expires_in": int(tok.ExpiresIn.Round(time.Second).Seconds()),
		"scope":      strings.Join(tok.Scopes, " "),
		"site":       tok.Site,
	})
}

// decodeTokenRequest reads the form of a token request.
func (s *Server) decodeTokenRequest(w http.ResponseWriter, r *http.Request) (auth.TokenRequest, error) {
	if err := requireMediaType(r, "application/x-www-form-urlencoded"); err != nil {
		return auth.TokenRequest{}, err
	}
	body, err := s.readBody(r, w)
	if err != nil {
		return auth.TokenRequest{}, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return auth.TokenRequest{}, vitalgate.Errorf(vitalgate.EINVALID, "the request body is not a valid form")
	}
	for k, v := range form {
		if len(v) > 1 {
			return auth.TokenRequest{}, vitalgate.Errorf(vitalgate.EINVALID, "parameter %q is repeated", trunc(k))
		}
	}
	req := auth.TokenRequest{
		GrantType: form.Get("grant_type"), Assertion: form.Get("client_assertion"),
		AssertionType: form.Get("client_assertion_type"), Scope: form.Get("scope"),
		Emergency: form.Get("emergency"), EmergencyReason: form.Get("emergency_reason"), Site: form.Get("site"),
	}
	req.ClientID, req.ClientSecret, req.Basic = r.BasicAuth()
	return req, nil
}

// tokenURL is this server's token endpoint, as clients address it.
func (s *Server) tokenURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimSuffix(s.cfg.PublicURL, "/") + "/oauth2/token"
	}
	return "https://" + r.Host + "/oauth2/token"
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
