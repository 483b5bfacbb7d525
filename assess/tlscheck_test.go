package assess_test

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/assess"
)

func TestCheckCertificates(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ca := MustCA(t, now.Add(-24*time.Hour))
	valid := leafOptions{notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour)}
	with := func(f func(*leafOptions)) leafOptions { o := valid; f(&o); return o }
	for _, tc := range []struct {
		name   string
		opts   leafOptions
		host   string
		roots  *x509.CertPool
		mutate func(*x509.Certificate)
		want   map[string]assess.Severity // findings above info that must appear (and no others)
	}{
		{name: "good", opts: valid, host: "127.0.0.1", roots: ca.Pool(), want: nil},
		{name: "expired", opts: with(func(o *leafOptions) { o.notBefore, o.notAfter = now.Add(-48*time.Hour), now.Add(-time.Hour) }),
			host: "127.0.0.1", roots: ca.Pool(), want: map[string]assess.Severity{"cert-expired": assess.High}},
		{name: "expiring in 10 days", opts: with(func(o *leafOptions) { o.notAfter = now.Add(10 * 24 * time.Hour) }),
			host: "127.0.0.1", roots: ca.Pool(), want: map[string]assess.Severity{"cert-expiring": assess.Medium}},
		{name: "not yet valid", opts: with(func(o *leafOptions) { o.notBefore = now.Add(time.Hour) }),
			host: "127.0.0.1", roots: ca.Pool(), want: map[string]assess.Severity{"cert-not-yet-valid": assess.High}},
		{name: "other host", opts: valid, host: "vitalgate.example.org", roots: ca.Pool(),
			want: map[string]assess.Severity{"cert-hostname": assess.High}},
		{name: "DNS name matches", opts: with(func(o *leafOptions) { o.dnsNames = []string{"vitalgate.example.org"} }),
			host: "vitalgate.example.org", roots: ca.Pool(), want: nil},
		{name: "untrusted", opts: valid, host: "127.0.0.1", roots: MustCA(t, now).Pool(),
			want: map[string]assess.Severity{"cert-untrusted": assess.High}},
		{name: "RSA 1024", opts: with(func(o *leafOptions) { o.key = MustRSAKey(t, 1024) }), host: "127.0.0.1", roots: ca.Pool(),
			want: map[string]assess.Severity{"cert-weak-key:leaf": assess.High}},
		{name: "RSA 2048", opts: with(func(o *leafOptions) { o.key = MustRSAKey(t, 2048) }), host: "127.0.0.1", roots: ca.Pool(), want: nil},
		// Go no longer signs with SHA-1, so the field is set on the parsed certificate:
		// the rule reads the algorithm, and verification then fails too.
		{name: "SHA-1 signature", opts: valid, host: "127.0.0.1", roots: ca.Pool(),
			mutate: func(c *x509.Certificate) { c.SignatureAlgorithm = x509.SHA1WithRSA },
			want:   map[string]assess.Severity{"cert-weak-signature:leaf": assess.High, "cert-untrusted": assess.High}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, leaf := ca.MustLeaf(t, tc.opts)
			chain := []*x509.Certificate{leaf, ca.cert}
			if tc.mutate != nil {
				c := *leaf
				tc.mutate(&c)
				chain[0] = &c
			}
			got := map[string]assess.Severity{}
			for _, f := range assess.CheckCertificates(chain, tc.host, tc.roots, now) {
				if f.Severity > assess.Info {
					got[f.ID] = f.Severity
				}
			}
			for id, sev := range tc.want {
				if got[id] != sev {
					t.Errorf("finding %s: got %v, want %s (all: %v)", id, got[id], sev, got)
				}
			}
			for id := range got {
				if _, ok := tc.want[id]; !ok {
					t.Errorf("unexpected finding %s (%s)", id, got[id])
				}
			}
		})
	}
}

func TestClassifySuite(t *testing.T) {
	for _, tc := range []struct {
		name string
		want assess.Severity
	}{
		{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", assess.Info},
		{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", assess.Info},
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", assess.Medium},
		{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", assess.Medium},
		{"TLS_RSA_WITH_AES_128_GCM_SHA256", assess.High},
		{"TLS_RSA_WITH_AES_256_CBC_SHA", assess.High},
		{"TLS_ECDHE_RSA_WITH_RC4_128_SHA", assess.High},
		{"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", assess.High},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := assess.ClassifySuite(tc.name)
			if got != tc.want || why == "" {
				t.Errorf("ClassifySuite = %s (%q), want %s", got, why, tc.want)
			}
		})
	}
}

// TestKnownRoutesCoverContract checks the route table against the public contract of
// DESIGN.md §3: every route listed there is probed.
func TestKnownRoutesCoverContract(t *testing.T) {
	want := []string{
		"GET /healthz", "GET /readyz", "GET /fhir/metadata", "GET /.well-known/smart-configuration",
		"GET /.well-known/est/cacerts", "POST /.well-known/est/simpleenroll", "POST /.well-known/est/simplereenroll",
		"POST /fhir/Observation", "POST /fhir", "POST /oauth2/token", "GET /fhir/Observation?", "GET /fhir/Observation/",
		"POST /fhir/Patient", "GET /fhir/Patient?", "GET /fhir/Patient/", "GET /fhir/Device/", "PUT /admin/devices/",
		"GET /fhir/AuditEvent", "GET /audit/checkpoint", "GET /audit/proof/inclusion", "GET /audit/proof/consistency",
	}
	for _, w := range want {
		found := false
		for _, r := range assess.KnownRoutes {
			if r.String() == w || strings.HasPrefix(r.String(), w) && strings.ContainsAny(w[len(w)-1:], "?/") {
				found = true
			}
		}
		if !found {
			t.Errorf("KnownRoutes lacks %s", w)
		}
	}
}
