package node_test

import (
	"context"
	"crypto/tls"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/vitalgate/vitalgate/guard"
	"github.com/vitalgate/vitalgate/httpapi"
	"github.com/vitalgate/vitalgate/node"
)

// TestServeRecordsEffectiveConfig: every serve records what it applies, per node; a restart
// of the same node with another setting replaces the record.
func TestServeRecordsEffectiveConfig(t *testing.T) {
	n := mustInit(t)
	addr := freeAddr(t)
	for _, tc := range []struct {
		name     string
		tls12    bool
		syslog   string
		versions []string
		allow    string // --allow-networks; 10.0.0.0/8 shuts out the test's own 127.0.0.1
	}{
		{"defaults", false, "", []string{"TLS 1.3"}, ""},
		{"tls12 and syslog", true, "127.0.0.1:1", []string{"TLS 1.2", "TLS 1.3"}, ""},
		{"network allow-lists", false, "", []string{"TLS 1.3"}, "10.0.0.0/8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := httpapi.DefaultConfig()
			cfg.Addr, cfg.AllowTLS12 = addr, tc.tls12
			mllpAddr := freeAddr(t)
			ready := make(chan string, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			allow, _ := guard.ParseNetworks(tc.allow)
			models := guard.ModelNetworks{}
			if tc.allow != "" {
				_ = models.Set("VM-100=" + tc.allow)
			}
			go func() {
				done <- n.Serve(ctx, node.Options{HTTP: cfg, MLLPAddr: mllpAddr, SyslogAddr: tc.syslog, Ready: func(a string) { ready <- a },
					AllowNetworks: allow, ModelNetworks: models})
			}()
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("Serve: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("Serve never became ready")
			}
			if tc.allow != "" { // both listeners close the connection before TLS
				for _, a := range []string{addr, mllpAddr} {
					waitListening(t, a)
					c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", a, &tls.Config{InsecureSkipVerify: true}) // #nosec G402 -- whether a handshake happens at all
					if err == nil {
						c.Close()
						t.Errorf("%s: a TLS handshake from outside the allowed networks", a)
					}
				}
			}
			cs, err := n.Store.NodeConfigs(ctx)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 {
				t.Fatalf("%d records, want one for the one node: %+v", len(cs), cs)
			}
			c := cs[0]
			if !slices.Equal(c.TLS.Versions, tc.versions) {
				t.Errorf("TLS versions = %v, want %v", c.TLS.Versions, tc.versions)
			}
			has12Suite := slices.Contains(c.TLS.CipherSuites, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
			if has12Suite != tc.tls12 || !slices.Contains(c.TLS.CipherSuites, "TLS_AES_128_GCM_SHA256") {
				t.Errorf("cipher suites = %v", c.TLS.CipherSuites)
			}
			if c.Node == "" || c.Store != "sqlite" || c.Tokens.AccessTokenTTL <= 0 || c.Tokens.EmergencyTTL != cfg.EmergencyTTL ||
				c.Limits.HandshakeTimeout != cfg.HandshakeTimeout || c.Limits.RatePerCaller != cfg.RatePerCaller ||
				c.Audit.CheckpointInterval != node.AuditCheckpointInterval || c.Registry.CertValidity <= 0 {
				t.Errorf("record = %+v", c)
			}
			if c.Audit.SyslogAddr != tc.syslog || c.Audit.SyslogCustomCA {
				t.Errorf("syslog forwarding recorded as %+v, want %q", c.Audit, tc.syslog)
			}
			if c.Listeners[0].AllowNetworks != tc.allow || c.Listeners[1].AllowNetworks != tc.allow || c.Registry.ModelNetworks["VM-100"] != tc.allow {
				t.Errorf("allow-lists recorded as %+v and %v, want %q", c.Listeners, c.Registry.ModelNetworks, tc.allow)
			}
			if len(c.Routes) < 10 || len(c.Listeners) != 2 || c.Listeners[1].Addr != mllpAddr {
				t.Errorf("routes %d, listeners %+v", len(c.Routes), c.Listeners)
			}
		})
	}
}

// waitListening waits until addr accepts TCP connections (a bound on a hang, not a timing
// assertion).
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s never listened", addr)
}
