package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/pki"
	"github.com/vitalgate/vitalgate/registry"
)

// h2Client returns an HTTP/2 client that keeps its connection open between requests.
func (e *env) h2Client(cert *tls.Certificate) *http.Client {
	c := e.client(cert)
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	return c
}

// postObservation posts an Observation on c and reports the status, the protocol and
// whether the request went over an already open connection.
func (e *env) postObservation(t *testing.T, c *http.Client) (status int, proto string, reused bool) {
	t.Helper()
	body := mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-1"))
	req, _ := http.NewRequest("POST", e.url+"/fhir/Observation", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", reused
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Proto, reused
}

// TestOpenConnectionRecheckedPerRequest (issue 13 finding 13): an HTTP/2 connection kept
// open is re-authorized on every request: a certificate that expired, a revocation made on
// another node (within the staleness bound) and a certificate replaced by simplereenroll
// (after the overlap) are refused on the next request over the same connection.
func TestOpenConnectionRecheckedPerRequest(t *testing.T) {
	const bound = 2 * time.Second
	tests := []struct {
		name   string
		change func(t *testing.T, e *env, cert *tls.Certificate)
	}{
		{"certificate expired", func(t *testing.T, e *env, cert *tls.Certificate) {
			e.clock.Advance(cert.Leaf.NotAfter.Sub(e.clock.Now()) + time.Second)
		}},
		{"revoked on another node", func(t *testing.T, e *env, _ *tls.Certificate) {
			cfg := registry.DefaultConfig()
			cfg.Store, cfg.CA, cfg.Vault, cfg.Audit, cfg.Now, cfg.HashParams = e.store, e.ca, e.vault, e.audit, e.clock.Now, fastHash
			other, err := registry.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := other.Revoke(context.Background(), registry.Operator("tester"), "dev-1"); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(bound)
		}},
		{"replaced by simplereenroll", func(t *testing.T, e *env, cert *tls.Certificate) {
			key, _ := pki.GenerateDeviceKey(nil)
			csr, _ := pki.NewCSR("dev-1", key, nil)
			if r := e.do(e.client(cert), "POST", "/.well-known/est/simplereenroll", "application/pkcs10", pki.EncodeBase64(csr)); r.status != 200 {
				t.Fatalf("reenroll: status %d: %s", r.status, r.body)
			}
			e.clock.Advance(registry.DefaultReenrollOverlap)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := MustEnvRegistry(t, func(c *registry.Config) { c.MaxStaleness = bound })
			cert := e.enroll("dev-1", e.addDevice("dev-1", "pat-1"))
			kept := e.h2Client(cert)
			if status, proto, _ := e.postObservation(t, kept); status != 201 || proto != "HTTP/2.0" {
				t.Fatalf("before: status %d over %s, want 201 over HTTP/2.0", status, proto)
			}
			tt.change(t, e, cert)
			status, _, reused := e.postObservation(t, kept)
			if !reused {
				t.Fatal("the second request did not reuse the open connection")
			}
			if status != 401 {
				t.Fatalf("next request on the open connection: status %d, want 401", status)
			}
			if r := e.do(e.client(cert), "POST", "/fhir/Observation", "application/fhir+json",
				mustJSON(t, example(t, "Observation-heart-rate.json", "pat-1", "dev-1"))); r.err == nil && r.status != 401 {
				t.Fatalf("new connection: status %d, want a failed handshake or 401", r.status)
			}
		})
	}
}
