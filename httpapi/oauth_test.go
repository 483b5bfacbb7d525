package httpapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vitalgate/vitalgate"
)

// tokenReqVia posts a token request from the local address from (a loopback address) with
// the Host header host (empty: the server's address).
func (e *env) tokenReqVia(from, host, id, secret string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	form.Set("grant_type", "client_credentials")
	req, _ := http.NewRequest("POST", e.url+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if host != "" {
		req.Host = host
	}
	if id != "" {
		req.SetBasicAuth(id, secret)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:     dialer.DialContext,
		TLSClientConfig: &tls.Config{RootCAs: e.pool, MinVersion: tls.VersionTLS13, Time: e.clock.Now, ServerName: "127.0.0.1"},
	}}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestFailedAuthenticationsDoNotLockOutOthers (finding 4): wrong secrets from one address
// lock out that address for that client, never the right secret from another address.
func TestFailedAuthenticationsDoNotLockOutOthers(t *testing.T) {
	e := MustEnv(t)
	secret := e.addClient("victim", vitalgate.RoleEHRSystem)
	for i := 0; i < 10; i++ {
		e.tokenReqVia("127.0.0.2", "", "victim", "guess", url.Values{})
	}
	if status, out := e.tokenReqVia("127.0.0.2", "", "victim", "guess", url.Values{}); status != 429 {
		t.Fatalf("the guessing address after 10 failures: %d %v, want 429", status, out)
	}
	if status, out := e.tokenReqVia("127.0.0.3", "", "victim", secret, url.Values{}); status != 200 {
		t.Fatalf("the right secret from another address: %d %v, want 200", status, out)
	}
}

// TestFailureLockoutUsesTheServerClock (issue 12 item 9): the lockout ends when the
// server's injected clock has moved past the window.
func TestFailureLockoutUsesTheServerClock(t *testing.T) {
	e := MustEnv(t)
	secret := e.addClient("ehr", vitalgate.RoleEHRSystem)
	for i := 0; i < 5; i++ {
		e.tokenReq("ehr", "guess", url.Values{})
	}
	if status, _ := e.tokenReq("ehr", secret, url.Values{}); status != 429 {
		t.Fatalf("right after 5 failures: %d, want 429", status)
	}
	e.clock.Advance(61 * time.Second)
	if status, out := e.tokenReq("ehr", secret, url.Values{}); status != 200 {
		t.Fatalf("61 s later on the server's clock: %d %v, want 200", status, out)
	}
}

// TestAssertionAudienceIsThisServer (finding 3): a client assertion is accepted only for
// this server's configured token URL, whatever Host header it comes with.
func TestAssertionAudienceIsThisServer(t *testing.T) {
	e := MustEnv(t)
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k", Algorithm: "ES384", Use: "sig"}}})
	if err := e.store.CreateClient(context.Background(), vitalgate.Client{ID: "backend", Role: vitalgate.RoleEHRSystem, JWKS: jwks}); err != nil {
		t.Fatal(err)
	}
	assertion := func(aud, jti string) url.Values {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
		if err != nil {
			t.Fatal(err)
		}
		now := e.clock.Now()
		s, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: "backend", Subject: "backend", Audience: jwt.Audience{aud},
			ID: jti, Expiry: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now)}).Serialize()
		return url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {s}}
	}
	tests := []struct {
		name   string
		aud    string
		host   string
		status int
	}{
		{"another server's audience with its Host header", "https://other-ehr.example.com/oauth2/token", "other-ehr.example.com", 401},
		{"another server's audience", "https://other-ehr.example.com/oauth2/token", "", 401},
		{"this server's public token URL", e.url + "/oauth2/token", "", 200},
		{"this server's public token URL, another Host header", e.url + "/oauth2/token", "other-ehr.example.com", 200},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, out := e.tokenReqVia("127.0.0.1", tt.host, "", "", assertion(tt.aud, "jti-"+string(rune('a'+i)))); status != tt.status {
				t.Fatalf("status %d %v, want %d", status, out, tt.status)
			}
		})
	}
}

// TestNoTokenWhenTheGrantCannotBeAudited (finding 12): a token goes out only once its grant
// is in the audit log.
func TestNoTokenWhenTheGrantCannotBeAudited(t *testing.T) {
	e := MustEnv(t)
	secret := e.addClient("ehr", vitalgate.RoleEHRSystem)
	raw, err := sql.Open("sqlite", e.store.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log refuses'); END`); err != nil {
		t.Fatal(err)
	}
	status, out := e.tokenReq("ehr", secret, url.Values{})
	if status != 503 || out["access_token"] != nil {
		t.Fatalf("status %d %v, want 503 without a token", status, out)
	}
}
