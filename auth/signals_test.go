package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/audit"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/detect"
	"github.com/vitalgate/vitalgate/guard"
)

type sink struct {
	mu   sync.Mutex
	sigs []detect.Signal
}

func (s *sink) Emit(sig detect.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sigs = append(s.sigs, sig)
}

// TestTokenSignals: every refused token request is a detection signal — a wrong secret or
// an unknown client an auth-failure, scopes beyond the role a scope-escalation — with the
// caller's address and the claimed client, never the secret; a grant is none.
func TestTokenSignals(t *testing.T) {
	e := mustService(t)
	sigs := &sink{}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tokens, err := auth.NewTokens(key, "https://vitalgate.example.org:8443", "https://vitalgate.example.org:8443/fhir", auth.MaxTokenTTL, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	akey, _ := audit.GenerateKey(nil)
	signer, _ := audit.NewSigner("test/audit", akey)
	svc, err := auth.NewService(auth.ServiceConfig{Store: e.store, Tokens: tokens, Secrets: e.secrets,
		Failures: guard.NewFailures(100, time.Minute, time.Now), Audit: audit.NewLog(e.store, signer, "test/audit", "node-1", time.Now),
		TokenURLs: []string{tokenURL}, Signals: sigs})
	if err != nil {
		t.Fatal(err)
	}
	secret := e.addClient(vitalgate.Client{ID: "ehr", Role: vitalgate.RoleEHRSystem, Site: vitalgate.DefaultSite})
	cases := []struct {
		name string
		req  auth.TokenRequest
		kind detect.Kind // "" = no signal
	}{
		{"granted", basic("ehr", secret), ""},
		{"wrong secret", basic("ehr", "wrong-secret-value"), detect.KindAuthFailure},
		{"unknown client", basic("nobody", "x"), detect.KindAuthFailure},
		{"scope beyond the role", func() auth.TokenRequest { r := basic("ehr", secret); r.Scope = "system/AuditEvent.rs"; return r }(), detect.KindScopeEscalation},
	}
	for _, c := range cases {
		sigs.sigs = nil
		_, _ = svc.IssueToken(context.Background(), c.req)
		if c.kind == "" {
			if len(sigs.sigs) != 0 {
				t.Errorf("%s: signals %+v", c.name, sigs.sigs)
			}
			continue
		}
		if len(sigs.sigs) != 1 || sigs.sigs[0].Kind != c.kind || sigs.sigs[0].Source != "10.0.0.1" || sigs.sigs[0].Client != c.req.ClientID ||
			sigs.sigs[0].At.IsZero() {
			t.Errorf("%s: signals %+v, want one %s", c.name, sigs.sigs, c.kind)
		}
		if s := sigs.sigs[0]; s.Reason == c.req.ClientSecret || s.Subject != "" {
			t.Errorf("%s: the signal carries the secret", c.name)
		}
	}
}
