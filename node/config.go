package node

import (
	"context"
	"crypto/fips140"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/vitalgate/vitalgate"
	"github.com/vitalgate/vitalgate/auth"
	"github.com/vitalgate/vitalgate/backup"
	"github.com/vitalgate/vitalgate/evidence"
	"github.com/vitalgate/vitalgate/ingest"
	"github.com/vitalgate/vitalgate/postgres"
	"github.com/vitalgate/vitalgate/registry"
	"github.com/vitalgate/vitalgate/sqlite"
)

// AuditCheckpointInterval is how often a serving node signs an audit checkpoint.
const AuditCheckpointInterval = 2 * time.Second

// recordConfig records the effective configuration of this run in the store (one record per
// node, replaced at every start), for `vitalgate evidence report`. A failure is logged, not
// fatal: the report then shows the node's previous record with its date.
func (s *server) recordConfig(ctx context.Context) {
	if err := s.n.Store.RecordNodeConfig(ctx, s.effectiveConfig()); err != nil {
		s.log.Error("could not record the effective configuration for the evidence report", "error", err.Error())
	}
}

// effectiveConfig is what this run applies, read from the assembled services where they
// expose it (the TLS configuration, the route table, the token lifetime) and from the
// options otherwise.
func (s *server) effectiveConfig() vitalgate.NodeConfig {
	h := s.opt.HTTP
	c := vitalgate.NodeConfig{
		Node: s.name, RecordedAt: s.n.env.Now().UTC(), FIPS140: fips140.Enabled(), Store: storeDriver(s.n.Store),
		TLS: tlsSettings(s.http.TLSConfig(s.cert)),
		Tokens: vitalgate.NodeTokens{AccessTokenTTL: s.tokens.TTL(), EmergencyTTL: h.EmergencyTTL,
			ConsoleIdle: consoleIdle(s.opt.ConsoleIdle), ConsoleLifetime: auth.MaxSessionLifetime},
		Limits: vitalgate.NodeLimits{
			MaxBodyBytes: h.MaxBodyBytes, MaxBundleEntries: h.MaxBundleEntries, MaxJSONDepth: h.MaxJSONDepth,
			MaxHeaderBytes: h.MaxHeaderBytes, ReadHeaderTimeout: h.ReadHeaderTimeout, ReadTimeout: h.ReadTimeout,
			WriteTimeout: h.WriteTimeout, IdleTimeout: h.IdleTimeout, MaxConns: h.MaxConns, MaxConnsPerIP: h.MaxConnsPerIP,
			HandshakeTimeout: h.HandshakeTimeout, MaxHandshakes: h.MaxHandshakes, MaxHandshakesPerIP: h.MaxHandshakesPerIP,
			MaxInFlightPerCaller: h.MaxInFlightPerCaller, MaxInFlightWrites: h.MaxInFlightWrites,
			RatePerCaller: h.RatePerCaller, BurstPerCaller: h.BurstPerCaller, RatePerIP: h.RatePerIP, BurstPerIP: h.BurstPerIP,
			AuthFailuresPerMinute: h.AuthFailuresPerMinute, MaxBackdate: s.opt.MaxBackdate,
		},
		Audit: vitalgate.NodeAudit{CheckpointInterval: AuditCheckpointInterval, SyslogAddr: s.opt.SyslogAddr,
			SyslogCustomCA: s.opt.SyslogAddr != "" && s.opt.SyslogCA != ""},
	}
	if c.Limits.MaxBackdate == 0 {
		c.Limits.MaxBackdate = ingest.DefaultMaxBackdate
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		c.Version, c.GoVersion = bi.Main.Version, bi.GoVersion
	}
	rc := s.opt.Registry
	if rc.HashParams.Memory == 0 { // as newRegistry: not configured means the defaults
		rc = registry.DefaultConfig()
	}
	c.Registry = vitalgate.NodeRegistry{CertValidity: rc.CertValidity, ReenrollOverlap: rc.ReenrollOverlap, MaxStaleness: rc.MaxStaleness}
	for model, nets := range s.opt.ModelNetworks {
		if c.Registry.ModelNetworks == nil {
			c.Registry.ModelNetworks = map[string]string{}
		}
		c.Registry.ModelNetworks[model] = nets.String()
	}
	allow := s.opt.AllowNetworks.String()
	c.Detection = s.detectConfig()
	c.Listeners = append(c.Listeners, vitalgate.NodeListener{Name: "https", Addr: s.addr, Protocol: "HTTPS (" + c.TLS.MinVersion + "+)",
		ClientAuth: "per route: public, enrollment secret, device certificate, client credentials or bearer token", AllowNetworks: allow})
	if s.opt.MLLPAddr != "" {
		c.Listeners = append(c.Listeners, vitalgate.NodeListener{Name: "mllp", Addr: s.opt.MLLPAddr,
			Protocol: "HL7 v2 MLLP over TLS", ClientAuth: "device certificate required at the handshake, checked again per message", AllowNetworks: allow})
	}
	if s.opt.MetricsAddr != "" {
		c.Listeners = append(c.Listeners, vitalgate.NodeListener{Name: "metrics", Addr: s.opt.MetricsAddr,
			Protocol: "HTTP (Prometheus metrics)", ClientAuth: "none: loopback address only"})
	}
	for _, rt := range s.http.Routes() {
		c.Routes = append(c.Routes, vitalgate.NodeRoute{Method: rt.Method, Pattern: rt.Pattern, Auth: string(rt.Auth), Permission: string(rt.Permission)})
	}
	return c
}

// tlsSettings describes a listener's TLS configuration in the names of crypto/tls.
func tlsSettings(tc *tls.Config) vitalgate.NodeTLS {
	var t vitalgate.NodeTLS
	t.MinVersion = tls.VersionName(tc.MinVersion)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if v >= tc.MinVersion && (tc.MaxVersion == 0 || v <= tc.MaxVersion) {
			t.Versions = append(t.Versions, tls.VersionName(v))
		}
	}
	for _, cs := range tls.CipherSuites() {
		if slices.Contains(cs.SupportedVersions, tls.VersionTLS13) {
			t.CipherSuites = append(t.CipherSuites, cs.Name) // TLS 1.3 suites are not configurable in Go
		}
	}
	if tc.MinVersion <= tls.VersionTLS12 {
		for _, id := range tc.CipherSuites {
			t.CipherSuites = append(t.CipherSuites, tls.CipherSuiteName(id))
		}
	}
	for _, id := range tc.CurvePreferences {
		t.Curves = append(t.Curves, id.String())
	}
	switch tc.ClientAuth {
	case tls.RequestClientCert: // the API listener verifies in VerifyConnection (httpapi.Server.TLSConfig)
		t.ClientCerts = "verified when given: against the built-in CA and the device registry (required by every device route), or as the IDevID of a registered device of a model naming its maker's CA (enrollment only)"
	case tls.VerifyClientCertIfGiven:
		t.ClientCerts = "verified against the built-in CA and the device registry when given; required by every device route"
	case tls.RequireAndVerifyClientCert:
		t.ClientCerts = "required and verified against the built-in CA"
	default:
		t.ClientCerts = tc.ClientAuth.String()
	}
	return t
}

// storeDriver names the kind of store.
func storeDriver(st vitalgate.Store) string {
	switch st.(type) {
	case *sqlite.DB:
		return "sqlite"
	case *postgres.DB:
		return "postgres"
	}
	return "other"
}

// EvidenceDeployment is what `vitalgate evidence report` describes: this data dir (its
// certificates and the dates of its key files), its store, and its audit log's origin and
// verifier key.
func (n *Node) EvidenceDeployment() (evidence.Deployment, error) {
	v, err := ReadVerifier(filepath.Join(n.Dir, AuditPubFile))
	if err != nil {
		return evidence.Deployment{}, fmt.Errorf("audit verifier key: %w", err)
	}
	return evidence.Deployment{Dir: n.Dir, Store: n.Store, Origin: n.AuditOrigin(), Verifier: v, CryptoMode: n.Crypto.Mode(ProcessFIPSMode()), Files: evidence.DataFiles{
		CACert: CACertFile, ServerCert: ServerCertFile, KeysDir: KeysDir,
		Keys:         []string{CAKeyFile, ServerKeyFile, TokenKeyFile, AuditKeyFile, evidence.SigningKeyFile},
		BackupStatus: backup.StatusFile,
	}, Posture: n.evidencePosture()}, nil
}

// consoleIdle is the console's idle timeout as configured (0: the default).
func consoleIdle(d time.Duration) time.Duration {
	if d == 0 {
		return auth.DefaultIdleTimeout
	}
	return d
}
