package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/sqlite"
)

const tokenURL = "https://vitalgate.example.org:8443/oauth2/token"

// svcEnv is a token service over a real SQLite store and audit log.
type svcEnv struct {
	t       *testing.T
	path    string
	store   *sqlite.DB
	svc     *auth.Service
	secrets *auth.SecretChecker
	alog    *audit.Log
	now     time.Time
}

func mustService(t *testing.T) *svcEnv {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.db")
	store, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	e := &svcEnv{t: t, path: path, store: store, now: time.Now()}
	clock := func() time.Time { return e.now }
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tokens, err := auth.NewTokens(key, "https://vitalgate.example.org:8443", "https://vitalgate.example.org:8443/fhir", auth.MaxTokenTTL, clock)
	if err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, err := audit.NewSigner("test/audit", akey)
	if err != nil {
		t.Fatal(err)
	}
	if e.secrets, err = auth.NewSecretChecker(2, 16, fast); err != nil {
		t.Fatal(err)
	}
	alog := audit.NewLog(store, signer, "test/audit", "node-1", clock)
	alog.SetRefusalWindow(0) // every refusal its own entry: the cases count them (folding is audit's test)
	e.alog = alog
	e.svc, err = auth.NewService(auth.ServiceConfig{
		Store: store, Tokens: tokens, Secrets: e.secrets, Failures: guard.NewFailures(5, time.Minute, clock),
		Audit: alog, TokenURLs: []string{tokenURL}, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// addClient registers a client with a secret (fast hash) and returns the secret.
func (e *svcEnv) addClient(c vitalgate.Client) string {
	e.t.Helper()
	secret, _ := auth.NewSecret(nil)
	if c.SecretHash == "" && c.JWKS == nil {
		c.SecretHash, _ = auth.HashSecret(secret, fast, nil)
	}
	if err := e.store.CreateClient(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// entries returns the audit entries written since from.
func (e *svcEnv) entries(from uint64) []audit.Entry {
	e.t.Helper()
	ctx := context.Background()
	size, err := e.store.AuditSize(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Entry
	if err := e.store.AuditEntries(ctx, from, size, func(r vitalgate.AuditRecord) error {
		en, err := audit.UnmarshalEntry(r.Data)
		out = append(out, en)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *svcEnv) size() uint64 {
	e.t.Helper()
	n, err := e.store.AuditSize(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func basic(id, secret string) auth.TokenRequest {
	return auth.TokenRequest{GrantType: "client_credentials", Basic: true, ClientID: id, ClientSecret: secret, Source: "10.0.0.1"}
}

func TestIssueToken(t *testing.T) {
	e := mustService(t)
	ehr := e.addClient(vitalgate.Client{ID: "ehr", Role: vitalgate.RoleEHRSystem})
	doc := e.addClient(vitalgate.Client{ID: "doc", Role: vitalgate.RoleClinician})
	old := e.addClient(vitalgate.Client{ID: "old", Role: vitalgate.RoleEHRSystem, Disabled: true})
	narrow := e.addClient(vitalgate.Client{ID: "narrow", Role: vitalgate.RoleEHRSystem, Scopes: []string{"system/Observation.rs"}})
	with := func(r auth.TokenRequest, f func(*auth.TokenRequest)) auth.TokenRequest { f(&r); return r }
	tests := []struct {
		name      string
		req       auth.TokenRequest
		code      string
		scopes    string
		emergency bool
	}{
		{"all role scopes", basic("ehr", ehr), "", "system/Patient.crs system/Observation.rs system/Device.rs system/DiagnosticReport.rs system/Specimen.rs", false},
		{"narrower scope", with(basic("ehr", ehr), func(r *auth.TokenRequest) { r.Scope = "system/Observation.read" }), "", "system/Observation.rs", false},
		{"registered scopes", basic("narrow", narrow), "", "system/Observation.rs", false},
		{"beyond registration", with(basic("narrow", narrow), func(r *auth.TokenRequest) { r.Scope = "system/Patient.rs" }), vitalgate.EFORBIDDEN, "", false},
		{"beyond role", with(basic("ehr", ehr), func(r *auth.TokenRequest) { r.Scope = "system/Observation.cruds" }), vitalgate.EFORBIDDEN, "", false},
		{"wrong secret", basic("ehr", ehr+"x"), vitalgate.EUNAUTHORIZED, "", false},
		{"unknown client", basic("nobody", ehr), vitalgate.EUNAUTHORIZED, "", false},
		{"disabled client with its secret", basic("old", old), vitalgate.EUNAUTHORIZED, "", false},
		{"no credentials", auth.TokenRequest{GrantType: "client_credentials", Source: "10.0.0.1"}, vitalgate.EUNAUTHORIZED, "", false},
		{"two methods", with(basic("ehr", ehr), func(r *auth.TokenRequest) { r.Assertion = "a.b.c" }), vitalgate.EINVALID, "", false},
		{"another grant type", with(basic("ehr", ehr), func(r *auth.TokenRequest) { r.GrantType = "password" }), vitalgate.EINVALID, "", false},
		{"emergency", with(basic("doc", doc), func(r *auth.TokenRequest) {
			r.Emergency, r.EmergencyReason = "true", "patient collapsed in ward 3"
		}), "", "user/Patient.rs user/Observation.rs user/Device.rs user/DiagnosticReport.rs user/Specimen.rs", true},
		{"emergency without a reason", with(basic("doc", doc), func(r *auth.TokenRequest) { r.Emergency = "true" }), vitalgate.EINVALID, "", false},
		{"emergency not true", with(basic("doc", doc), func(r *auth.TokenRequest) {
			r.Emergency, r.EmergencyReason = "yes", "patient collapsed in ward 3"
		}), vitalgate.EINVALID, "", false},
		{"emergency for a system client", with(basic("ehr", ehr), func(r *auth.TokenRequest) {
			r.Emergency, r.EmergencyReason = "true", "patient collapsed in ward 3"
		}), vitalgate.EFORBIDDEN, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := e.size()
			tok, err := e.svc.IssueToken(context.Background(), tt.req)
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("IssueToken = %v, want code %q", err, tt.code)
			}
			entries := e.entries(from)
			if len(entries) != 1 {
				t.Fatalf("%d audit entries, want exactly 1: %+v", len(entries), entries)
			}
			en := entries[0]
			if en.Type != "authn" || en.Subtype != "token" || en.AgentID != tt.req.ClientID || en.SourceIP != "10.0.0.1" {
				t.Errorf("audit entry %+v does not name the request", en)
			}
			if tt.code != "" {
				if tok.AccessToken != "" || en.Outcome != audit.OutcomeMinorFailure {
					t.Fatalf("refused request gave a token or a success entry: %+v %+v", tok, en)
				}
				return
			}
			if got := strings.Join(tok.Scopes, " "); got != tt.scopes || tok.AccessToken == "" {
				t.Fatalf("scopes %q, want %q", got, tt.scopes)
			}
			if tok.Emergency != tt.emergency || en.Emergency != tt.emergency || en.Outcome != audit.OutcomeSuccess {
				t.Fatalf("emergency: token %v, entry %+v; want %v", tok.Emergency, en, tt.emergency)
			}
			if tt.emergency && (!strings.Contains(en.OutcomeDesc, "patient collapsed in ward 3") || tok.ExpiresIn > 2*time.Minute) {
				t.Fatalf("emergency grant: entry %q, life %v", en.OutcomeDesc, tok.ExpiresIn)
			}
		})
	}
	t.Run("unsupported grant is named", func(t *testing.T) {
		_, err := e.svc.IssueToken(context.Background(), with(basic("ehr", ehr), func(r *auth.TokenRequest) { r.GrantType = "password" }))
		if !errors.Is(err, auth.ErrUnsupportedGrant) {
			t.Fatalf("err %v, want ErrUnsupportedGrant", err)
		}
	})
}

// TestTokenSite: a client of several sites gets a token for the one it names, its own site
// by default, and none for a site it does not act within; each grant or refusal is in the
// audit trail of the site asked for, or of the client's own site.
func TestTokenSite(t *testing.T) {
	e := mustService(t)
	for _, site := range []string{"north", "south", "east"} {
		if err := e.store.CreateSite(context.Background(), vitalgate.Site{ID: site, Name: site}); err != nil {
			t.Fatal(err)
		}
	}
	hie := e.addClient(vitalgate.Client{ID: "hie", Site: "north", OtherSites: []string{"south", "east"}, Role: vitalgate.RoleEHRSystem})
	one := e.addClient(vitalgate.Client{ID: "one", Site: "north", Role: vitalgate.RoleEHRSystem})
	for _, tt := range []struct {
		name, client, secret, site string
		code                       string
		want                       string
	}{
		{"own site by default", "hie", hie, "", "", "north"},
		{"own site named", "hie", hie, "north", "", "north"},
		{"another of its sites", "hie", hie, "south", "", "south"},
		{"a site it does not act within", "hie", hie, "west", vitalgate.EFORBIDDEN, "north"},
		{"a one-site client asks for another", "one", one, "south", vitalgate.EFORBIDDEN, "north"},
		{"the deployment", "hie", hie, vitalgate.AllSites, vitalgate.EFORBIDDEN, "north"},
		{"an erased one of its sites", "hie", hie, "east", vitalgate.EUNAUTHORIZED, "north"},
	} {
		if tt.site == "east" {
			eraseSite(t, e.store, "east")
		}
		t.Run(tt.name, func(t *testing.T) {
			from := e.size()
			req := basic(tt.client, tt.secret)
			req.Site = tt.site
			tok, err := e.svc.IssueToken(context.Background(), req)
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("IssueToken = %v, want code %q", err, tt.code)
			}
			if tt.code == "" && tok.Site != tt.want {
				t.Fatalf("token acts within %q, want %q", tok.Site, tt.want)
			}
			en := e.entries(from)
			if len(en) != 1 || en[0].Site != tt.want {
				t.Fatalf("audit entries %+v, want one in site %q", en, tt.want)
			}
		})
	}
}

// eraseSite erases site through the store (two people), as `vitalgate site erase` does.
func eraseSite(t *testing.T, st *sqlite.DB, site string) {
	t.Helper()
	ctx := context.Background()
	if err := st.CreateErasureRequest(ctx, vitalgate.ErasureRequest{ID: "se-1", Site: site, RequestedBy: "alice", RequestedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EraseSite(ctx, "se-1", "bob", time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestNoTokenWithoutItsAuditEntry (finding 12): when the grant cannot be written to the
// audit log, no token goes out.
func TestNoTokenWithoutItsAuditEntry(t *testing.T) {
	e := mustService(t)
	secret := e.addClient(vitalgate.Client{ID: "ehr", Role: vitalgate.RoleEHRSystem})
	raw, err := sql.Open("sqlite", e.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit log refuses'); END`); err != nil {
		t.Fatal(err)
	}
	tok, err := e.svc.IssueToken(context.Background(), basic("ehr", secret))
	if err == nil || tok.AccessToken != "" {
		t.Fatalf("IssueToken = %+v, %v; want no token", tok, err)
	}
	if code := vitalgate.ErrorCode(err); code != vitalgate.EUNAVAILABLE {
		t.Fatalf("code %q, want %q", code, vitalgate.EUNAVAILABLE)
	}
}

// TestUnknownClientsCostTheSameHashing (finding 4): an unknown id, a disabled client, a
// client without a secret and a wrong secret each cost exactly one argon2id hash, like the
// right secret, so that timing does not tell which client ids exist.
func TestUnknownClientsCostTheSameHashing(t *testing.T) {
	e := mustService(t)
	secret := e.addClient(vitalgate.Client{ID: "ehr", Role: vitalgate.RoleEHRSystem})
	old := e.addClient(vitalgate.Client{ID: "old", Role: vitalgate.RoleEHRSystem, Disabled: true})
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), Use: "sig"}}})
	e.addClient(vitalgate.Client{ID: "backend", Role: vitalgate.RoleEHRSystem, JWKS: jwks})
	tests := []struct {
		name string
		req  auth.TokenRequest
		ok   bool
	}{
		{"right secret", basic("ehr", secret), true},
		{"wrong secret", basic("ehr", "guess"), false},
		{"unknown id", basic("nobody", "guess"), false},
		{"disabled client", basic("old", old), false},
		{"client without a secret", basic("backend", "guess"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.secrets.Hashes()
			_, err := e.svc.IssueToken(context.Background(), tt.req)
			if (err == nil) != tt.ok {
				t.Fatalf("IssueToken: %v, want ok=%v", err, tt.ok)
			}
			if n := e.secrets.Hashes() - before; n != 1 {
				t.Fatalf("%d hashes, want 1", n)
			}
		})
	}
}

// TestAssertionsOfUnknownClientsGetTheSameAnswer: private_key_jwt of an unknown iss, of a
// disabled client and with another key all take the signature path and get one answer.
func TestAssertionsOfUnknownClientsGetTheSameAnswer(t *testing.T) {
	e := mustService(t)
	key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k", Use: "sig"}}})
	e.addClient(vitalgate.Client{ID: "backend", Role: vitalgate.RoleEHRSystem, JWKS: jwks})
	e.addClient(vitalgate.Client{ID: "gone", Role: vitalgate.RoleEHRSystem, JWKS: jwks, Disabled: true})
	assertion := func(k *ecdsa.PrivateKey, iss, aud, jti string) auth.TokenRequest {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: iss, Subject: iss, Audience: jwt.Audience{aud}, ID: jti,
			Expiry: jwt.NewNumericDate(e.now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(e.now)}).Serialize()
		return auth.TokenRequest{GrantType: "client_credentials", Assertion: s, AssertionType: auth.AssertionType, Source: "10.0.0.1"}
	}
	tests := []struct {
		name string
		req  auth.TokenRequest
		code string
	}{
		{"right key", assertion(key, "backend", tokenURL, "1"), ""},
		{"replayed", assertion(key, "backend", tokenURL, "1"), vitalgate.EUNAUTHORIZED},
		{"another server's audience", assertion(key, "backend", "https://other-ehr.example.com/oauth2/token", "2"), vitalgate.EUNAUTHORIZED},
		{"another key", assertion(other, "backend", tokenURL, "3"), vitalgate.EUNAUTHORIZED},
		{"unknown iss", assertion(other, "nobody", tokenURL, "4"), vitalgate.EUNAUTHORIZED},
		{"disabled client", assertion(key, "gone", tokenURL, "5"), vitalgate.EUNAUTHORIZED},
	}
	var messages []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.IssueToken(context.Background(), tt.req)
			if vitalgate.ErrorCode(err) != tt.code {
				t.Fatalf("IssueToken = %v, want %q", err, tt.code)
			}
			if tt.name == "another key" || tt.name == "unknown iss" {
				messages = append(messages, vitalgate.ErrorMessage(err))
			}
		})
	}
	if len(messages) != 2 || messages[0] != messages[1] {
		t.Fatalf("unknown iss and wrong key answer differently: %q", messages)
	}
}

// TestThrottlingIsPerSource (finding 4): failures from one address throttle that address
// for that client only; the right secret from another address is never refused.
func TestThrottlingIsPerSource(t *testing.T) {
	e := mustService(t)
	secret := e.addClient(vitalgate.Client{ID: "ehr", Role: vitalgate.RoleEHRSystem})
	from := func(src, s string) auth.TokenRequest { r := basic("ehr", s); r.Source = src; return r }
	for i := 0; i < 5; i++ {
		_, _ = e.svc.IssueToken(context.Background(), from("10.0.0.66", "guess"))
	}
	_, err := e.svc.IssueToken(context.Background(), from("10.0.0.66", secret))
	if vitalgate.ErrorCode(err) != vitalgate.ETHROTTLED || auth.RetryAfter(err) <= 0 {
		t.Fatalf("the guessing address: %v, want ETHROTTLED with a wait", err)
	}
	if _, err := e.svc.IssueToken(context.Background(), from("10.0.0.7", secret)); err != nil {
		t.Fatalf("the right secret from another address: %v", err)
	}
	e.now = e.now.Add(61 * time.Second)
	if _, err := e.svc.IssueToken(context.Background(), from("10.0.0.66", secret)); err != nil {
		t.Fatalf("the guessing address after the window on the injected clock: %v", err)
	}
}

// TestSecretCheckerBound: while the one hash it allows is running, a further check is
// refused at once with ETHROTTLED instead of queuing for CPU; once it is done, checks run.
func TestSecretCheckerBound(t *testing.T) {
	slow := auth.HashParams{Memory: 32 * 1024, Time: 16, Threads: 1}
	c, err := auth.NewSecretChecker(1, 0, fast)
	if err != nil {
		t.Fatal(err)
	}
	slowHash, _ := auth.HashSecret("s", slow, nil)
	fastHash, _ := auth.HashSecret("s", fast, nil)
	done := make(chan error, 1)
	go func() {
		_, err := c.Check(context.Background(), slowHash, "s")
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c.InUse() == 0 {
		select {
		case err := <-done:
			t.Skipf("the slow hash finished before it was observed (%v)", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the first check never started")
		}
		runtime.Gosched()
	}
	_, err = c.Check(context.Background(), fastHash, "s")
	if vitalgate.ErrorCode(err) != vitalgate.ETHROTTLED || auth.RetryAfter(err) <= 0 {
		select {
		case <-done:
			t.Skip("the slow hash finished meanwhile")
		default:
		}
		t.Fatalf("a check beyond the bound: %v, want ETHROTTLED with a wait", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Check(context.Background(), fastHash, "s"); !ok || err != nil {
		t.Fatalf("after the bound freed: %v %v", ok, err)
	}
	if ok, err := c.Check(context.Background(), "", "s"); ok || err != nil {
		t.Fatalf("empty hash: %v %v, want false without error", ok, err)
	}
	if n := c.Hashes(); n != 3 {
		t.Fatalf("%d hashes, want 3", n)
	}
}
